"""Reading a GGUF file's header: metadata, tensor table, and whether the file is whole."""

from __future__ import annotations

import math
import mmap
import re
import struct
from pathlib import Path
from typing import Any

import msgspec

from appliance.errors import ModelError

_MAGIC = b"GGUF"
_TOOLS = re.compile(r"\btools\b")  # a chat template that renders a list of tools names it
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
# Arrays longer than this (token lists, merges) are skipped rather than kept in memory.
_KEEP_ARRAY = 64

# ggml tensor type -> (elements per block, bytes per block); unknown types skip the size check.
_BLOCKS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
           8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
           13: (256, 176), 14: (256, 210), 15: (256, 292), 16: (256, 66), 17: (256, 74),
           18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110), 22: (256, 82),
           23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
           29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17)}  # fmt: skip

# llama_ftype values, as stored in general.file_type.
_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
               10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S",
               15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS",
               20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
               25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS",
               31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE"}  # fmt: skip


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What `appliance models` and `/v1/models` show about one GGUF file."""

    id: str
    path: str
    name: str
    architecture: str
    quantization: str
    parameters: int
    context_length: int
    size_bytes: int
    has_chat_template: bool
    # The chat template renders a list of tools (it names `tools`): the model was trained to
    # call functions.
    supports_tools: bool = False


class _Reader:
    def __init__(self, buf: mmap.mmap, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ModelError(f"{self.path}: the file ends inside its header; it is truncated")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise ModelError(f"{self.path}: the file ends inside its header; it is truncated")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        buf, pos, end = self.buf, self.pos, len(self.buf)
        for _ in range(count):
            if pos + 8 > end:
                break
            pos += 8 + struct.unpack_from("<Q", buf, pos)[0]
        else:
            if pos <= end:
                self.pos = pos
                return
        raise ModelError(f"{self.path}: the file ends inside its header; it is truncated")

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.take(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = self.take("<I"), self.take("<Q")
            if count > _KEEP_ARRAY and item in _SCALARS:
                self.pos += count * struct.calcsize(_SCALARS[item])
                return None
            if count > _KEEP_ARRAY and item == _STRING:  # a vocabulary: stepped over, not read
                self.skip_strings(count)
                return None
            values = [self.value(item) for _ in range(count)]
            return values if count <= _KEEP_ARRAY else None
        raise ModelError(f"{self.path}: unknown GGUF value type {kind}; the file is damaged")


class Header(msgspec.Struct, frozen=True, kw_only=True):
    """A GGUF file's header: version, metadata (arrays over 64 items left out), summary."""

    version: int
    metadata: dict[str, Any]
    info: ModelInfo


def names_tools(template: str) -> bool:
    """The chat template renders a list of tools: it speaks of `tools`."""
    return bool(_TOOLS.search(template))


def read_model_info(path: Path) -> ModelInfo:
    """Parse the header of `path`, or raise ModelError saying what is wrong with the file."""
    return read_header(path).info


def read_header(path: Path) -> Header:
    """The whole header of `path`, or ModelError saying what is wrong with the file."""
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist; check llm.model or llm.models_dir")
    size = path.stat().st_size
    if size < 24:
        raise ModelError(f"{path} is not a GGUF model file ({size} bytes); use a .gguf model")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != _MAGIC:
            raise ModelError(f"{path} is not a GGUF model file (wrong magic bytes); "
                             "convert it with llama.cpp's convert_hf_to_gguf.py")  # fmt: skip
        return _parse(_Reader(buf, path), path, size)


def _parse(r: _Reader, path: Path, size: int) -> Header:
    r.pos = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ModelError(f"{path}: GGUF version {version} is not supported (2 or 3 expected)")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    parameters, data_end = _tensors(r, n_tensors)
    align = int(meta.get("general.alignment", 32))
    data_start = math.ceil(r.pos / align) * align
    if data_start + data_end > size:
        raise ModelError(
            f"{path} is truncated: {size} bytes on disk, {data_start + data_end} expected; "
            "copy or download the file again"
        )
    arch = str(meta.get("general.architecture", "unknown"))
    info = ModelInfo(
        id=path.stem,
        path=str(path),
        name=str(meta.get("general.name", path.stem)),
        architecture=arch,
        quantization=_FILE_TYPES.get(int(meta.get("general.file_type", -1)), "unknown"),
        parameters=parameters,
        context_length=int(meta.get(f"{arch}.context_length", 0)),
        size_bytes=size,
        has_chat_template="tokenizer.chat_template" in meta,
        supports_tools=names_tools(str(meta.get("tokenizer.chat_template", ""))),
    )
    return Header(version=version, metadata=meta, info=info)


def _tensors(r: _Reader, n_tensors: int) -> tuple[int, int]:
    """Sum of tensor elements, and the end of the last tensor's data relative to the data start."""
    parameters = data_end = 0
    for _ in range(n_tensors):
        r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        kind, offset = r.take("<I"), r.take("<Q")
        elements = math.prod(dims)
        parameters += elements
        per_block, block_bytes = _BLOCKS.get(kind, (1, 0))
        data_end = max(data_end, offset + elements // per_block * block_bytes)
    return parameters, data_end
