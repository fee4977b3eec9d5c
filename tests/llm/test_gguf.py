"""GGUF header reading on the real bundled model, and clear errors for bad files."""

from pathlib import Path

import pytest

from appliance.errors import ModelError
from appliance.llm.gguf import read_model_info


def test_reads_the_bundled_model(model_path: Path) -> None:
    info = read_model_info(model_path)
    assert info.architecture == "llama"
    assert info.quantization == "Q4_1"
    assert 130e6 < info.parameters < 140e6
    assert info.context_length == 8192
    assert info.size_bytes == model_path.stat().st_size
    assert info.has_chat_template


def test_truncated_file_is_named_and_called_truncated(model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with model_path.open("rb") as src:
        cut.write_bytes(src.read(model_path.stat().st_size // 2))
    with pytest.raises(ModelError, match=r"cut\.gguf is truncated"):
        read_model_info(cut)


def test_header_cut_short_is_truncated(model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "head.gguf"
    with model_path.open("rb") as src:
        cut.write_bytes(src.read(4096))
    with pytest.raises(ModelError, match="truncated"):
        read_model_info(cut)


def test_non_gguf_file(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.gguf"
    bogus.write_text("these are not weights\n" * 10)
    with pytest.raises(ModelError, match=r"notes\.gguf is not a GGUF model file"):
        read_model_info(bogus)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"missing\.gguf does not exist"):
        read_model_info(tmp_path / "missing.gguf")
