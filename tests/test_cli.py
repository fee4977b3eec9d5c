"""The command line as a person meets it: clear errors, no tracebacks, model listing."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest


def appliance(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_setting_in_file_fails_with_its_path(tmp_path: Path) -> None:
    toml = tmp_path / "appliance.toml"
    toml.write_text("[llm]\nn_ctx = 'lots'\n")
    done = appliance("--config", str(toml), "serve")
    assert done.returncode == 2
    assert "setting llm.n_ctx" in done.stderr
    assert str(toml) in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_environment_setting_fails_at_start() -> None:
    done = appliance("serve", APPLIANCE_LLM__N_CXT="4096")
    assert done.returncode == 2
    assert "unknown setting llm.n_cxt" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        (b"", "is not a GGUF model file"),
        (b"<html>not a model</html>" * 10, "is not a GGUF model file"),
        ("truncated", "is truncated"),
    ],
)
def test_bad_model_file_gives_a_clear_startup_error(
    tmp_path: Path, model_path: Path, content: bytes | str | None, expected: str
) -> None:
    bad = tmp_path / "broken.gguf"
    if content == "truncated":
        with model_path.open("rb") as src:
            bad.write_bytes(src.read(10_000_000))
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    done = appliance("serve", "--port", "0", APPLIANCE_LLM__MODEL=str(bad),
                     APPLIANCE_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
    assert done.returncode == 1
    assert str(bad) in done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_models_lists_metadata_of_bundled_and_dropped_files(
    tmp_path: Path, model_path: Path
) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(model_path, folder / "copy.gguf")
    (folder / "junk.gguf").write_text("junk")
    done = appliance("models", APPLIANCE_LLM__MODELS_DIR=str(folder))
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].split()[:6] == ["MODEL", "ARCH", "QUANT", "PARAMS", "CONTEXT", "SIZE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["SmolLM2-135M-Instruct.Q4_1"][1:5] == ["llama", "Q4_1", "134.5M", "8192"]
    assert rows["copy"][1:3] == ["llama", "Q4_1"]
    assert "junk.gguf is not a GGUF model file" in done.stderr


def test_config_show_prints_toml_that_loads_back(tmp_path: Path) -> None:
    done = appliance("config", "show", APPLIANCE_LLM__N_CTX="1024")
    assert done.returncode == 0
    toml = tmp_path / "shown.toml"
    toml.write_text(done.stdout)
    again = appliance("--config", str(toml), "config", "show")
    assert again.returncode == 0
    assert again.stdout == done.stdout
    assert "n_ctx = 1024" in done.stdout


def test_help_names_every_command() -> None:
    done = appliance("--help")
    for command in ("serve", "models", "config"):
        assert command in done.stdout
    serve = appliance("serve", "--help")
    assert "--host" in serve.stdout
    assert "--port" in serve.stdout


def gguf_without_template(path: Path) -> Path:
    """A minimal valid GGUF: one metadata key, no tensors, no chat template."""
    key, value = b"general.architecture", b"llama"
    header = (
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(key)) + key + struct.pack("<I", 8)
        + struct.pack("<Q", len(value)) + value
    )  # fmt: skip
    path.write_bytes(header.ljust(-(-len(header) // 32) * 32, b"\0"))  # padded to alignment
    return path


def test_a_model_without_chat_template_is_refused_at_start(tmp_path: Path) -> None:
    model = gguf_without_template(tmp_path / "base.gguf")
    done = appliance("serve", "--port", "0", APPLIANCE_LLM__MODEL=str(model),
                     APPLIANCE_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
    assert done.returncode == 1
    assert "base.gguf has no chat template" in done.stderr
    assert "Traceback" not in done.stderr


def test_unwritable_data_dir_is_a_clear_startup_error(tmp_path: Path) -> None:
    blocker = tmp_path / "occupied"
    blocker.write_text("a file where the data folder should be")
    done = appliance("serve", "--port", "0", APPLIANCE_DATA_DIR=str(blocker / "data"))
    assert done.returncode == 1
    assert "cannot open the database" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_taken_port_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = appliance("serve", "--port", str(port), APPLIANCE_DATA_DIR=str(tmp_path))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_users_and_keys_on_the_command_line(tmp_path: Path) -> None:
    env = {"APPLIANCE_DATA_DIR": str(tmp_path)}
    added = subprocess.run([sys.executable, "-m", "appliance", "users", "add", "ann", "--admin"],
                           input="correct horse battery\n", text=True, capture_output=True,
                           env={**os.environ, **env}, timeout=60, check=False)  # fmt: skip
    assert added.returncode == 0, added.stderr
    key = appliance("keys", "create", "ann", **env)
    assert key.stdout.startswith("apl_")
    assert "shown only now" in key.stderr
    listed = appliance("keys", "list", "ann", **env)
    assert key.stdout.strip() not in listed.stdout  # only a prefix is ever shown again
    assert appliance("users", "disable", "ann", **env).returncode == 0
    assert "disabled" in appliance("users", "list", **env).stdout
    missing = appliance("keys", "create", "nobody", **env)
    assert missing.returncode == 1
    assert "no user named 'nobody'" in missing.stderr
