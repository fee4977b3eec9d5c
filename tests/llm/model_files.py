"""GGUF files for the tests of choosing a model: copies of the bundled one under other names,
one llama.cpp cannot load, one cut short, and a header-only file with a chat template."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path


def copy_of(model: Path, target: Path) -> Path:
    """The same weights under another file name (so another model id)."""
    shutil.copyfile(model, target)
    return target


def unloadable_copy(model: Path, target: Path) -> Path:
    """A copy whose header reads well but names an architecture llama.cpp does not know: the
    page lists it, and loading it fails in llama.cpp."""
    data = bytearray(model.read_bytes())
    field = _string(b"general.architecture") + struct.pack("<I", 8) + _string(b"llama")
    at = data.find(field)
    assert at > 0, "the bundled model's architecture is not llama"
    data[at + len(field) - 1] = ord("x")  # "llamx"
    target.write_bytes(bytes(data))
    return target


def truncated_copy(model: Path, target: Path) -> Path:
    """The first half of the file: the header says more data than there is."""
    with model.open("rb") as src:
        target.write_bytes(src.read(model.stat().st_size // 2))
    return target


def header_only(target: Path, template: str | None) -> Path:
    """A GGUF of no tensors whose metadata holds a chat template (None: none), enough to be
    listed."""
    meta = [(b"general.architecture", "llama")]
    if template is not None:
        meta.append((b"tokenizer.chat_template", template))
    body = b"".join(_string(k) + struct.pack("<I", 8) + _string(v.encode()) for k, v in meta)
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta)) + body
    target.write_bytes(header + bytes(-len(header) % 32))  # the data starts aligned
    return target


def _string(value: bytes) -> bytes:
    return struct.pack("<Q", len(value)) + value
