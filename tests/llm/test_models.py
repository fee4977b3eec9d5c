"""The models on offer, as `appliance models` and the Models page list them: the bundled one,
each GGUF in models_dir by file name, what their headers say, and why one cannot be served."""

from __future__ import annotations

from pathlib import Path

from appliance.llm.gguf import ModelInfo
from appliance.llm.models import BUNDLED_FILE, ModelEntry, offered
from tests.conftest import llm_settings
from tests.llm.model_files import copy_of, header_only, truncated_copy

TOOLS_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\nYou may call: ' + tools | tojson }}{% endif %}"
    "{% for m in messages %}{{ m['content'] }}{% endfor %}"
)


def by_name(entries: list[ModelEntry]) -> dict[str, ModelEntry]:
    return {e.name: e for e in entries}


def info_of(entry: ModelEntry) -> ModelInfo:
    assert entry.info is not None, entry.error
    return entry.info


def test_the_bundled_model_and_each_file_of_the_folder_are_listed(
    tmp_path: Path, model_path: Path
) -> None:
    copy_of(model_path, tmp_path / "second.gguf")
    (tmp_path / "notes.txt").write_text("not a model")
    entries = offered(llm_settings(models_dir=str(tmp_path)))
    assert [e.name for e in entries] == [BUNDLED_FILE, "second.gguf"]
    bundled, second = entries
    assert (bundled.bundled, bundled.configured, bundled.error) == (True, True, None)
    assert info_of(bundled).id == "SmolLM2-135M-Instruct.Q4_1"
    info = info_of(second)
    assert (info.id, info.architecture, info.quantization) == ("second", "llama", "Q4_1")
    assert info.context_length == 8192
    assert info.size_bytes == model_path.stat().st_size
    assert (second.bundled, second.configured, second.error) == (False, False, None)


def test_the_configured_model_is_listed_first(tmp_path: Path, model_path: Path) -> None:
    copy_of(model_path, tmp_path / "chosen.gguf")
    entries = offered(llm_settings(models_dir=str(tmp_path), model="chosen"))
    assert [(e.name, e.configured) for e in entries] == [
        ("chosen.gguf", True),
        (BUNDLED_FILE, False),
    ]


def test_a_broken_file_is_listed_with_what_is_wrong(tmp_path: Path, model_path: Path) -> None:
    truncated_copy(model_path, tmp_path / "cut.gguf")
    (tmp_path / "junk.gguf").write_text("junk")
    entries = by_name(offered(llm_settings(models_dir=str(tmp_path))))
    assert entries["cut.gguf"].info is None
    assert "cut.gguf is truncated" in (entries["cut.gguf"].error or "")
    assert "junk.gguf is not a GGUF model file" in (entries["junk.gguf"].error or "")


def test_tools_are_read_from_the_chat_template(tmp_path: Path) -> None:
    header_only(tmp_path / "caller.gguf", TOOLS_TEMPLATE)
    header_only(tmp_path / "plain.gguf", "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    entries = by_name(offered(llm_settings(models_dir=str(tmp_path))))
    assert info_of(entries["caller.gguf"]).supports_tools
    assert not info_of(entries["plain.gguf"]).supports_tools
    assert not info_of(entries[BUNDLED_FILE]).supports_tools  # SmolLM2's template has none
    # a configured template is the one used: its tools count
    again = by_name(offered(llm_settings(models_dir=str(tmp_path), chat_template=TOOLS_TEMPLATE)))
    assert info_of(again["plain.gguf"]).supports_tools


def test_a_model_without_a_chat_template_cannot_be_served(tmp_path: Path) -> None:
    path = tmp_path / "base.gguf"
    header_only(path, None)
    entry = by_name(offered(llm_settings(models_dir=str(tmp_path))))["base.gguf"]
    assert info_of(entry).architecture == "llama"
    assert "has no chat template" in (entry.error or "")
    fixed = offered(llm_settings(models_dir=str(tmp_path), chat_template=TOOLS_TEMPLATE))
    assert by_name(fixed)["base.gguf"].error is None


def test_a_second_file_of_a_name_already_listed_is_refused(
    tmp_path: Path, model_path: Path
) -> None:
    copy_of(model_path, tmp_path / BUNDLED_FILE)  # the bundled model's name, another file
    entries = offered(llm_settings(models_dir=str(tmp_path)))
    assert [e.name for e in entries] == [BUNDLED_FILE, BUNDLED_FILE]
    assert entries[0].error is None
    assert "another model on offer has its name" in (entries[1].error or "")
