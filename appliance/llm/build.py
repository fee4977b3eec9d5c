"""What the installed llama.cpp build was compiled for: CPU features, GPU offload, devices.

Read from the loaded library alone (no model is loaded), for `appliance doctor`."""

from __future__ import annotations

import ctypes
from typing import Any

import msgspec

_KINDS = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel", 4: "meta"}  # enum ggml_backend_dev_type


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A device a ggml backend of this build sees (the CPU is one)."""

    name: str
    description: str
    kind: str  # cpu, gpu, igpu, accel
    free_bytes: int
    total_bytes: int


class Build(msgspec.Struct, frozen=True, kw_only=True):
    system_info: str  # llama_print_system_info(), as llama.cpp prints it
    # backend -> feature -> value, e.g. {"CPU": {"AVX2": "1", "AVX512": "1"}}
    features: dict[str, dict[str, str]]
    gpu_offload: bool  # a GPU backend is compiled in
    devices: list[Device]


def probe() -> Build:
    """The build's features and devices; imports llama_cpp (loads the library, ~0.1 s)."""
    import llama_cpp

    info = bytes(llama_cpp.llama_print_system_info()).decode("utf-8", "replace")
    return Build(
        system_info=info.strip(" |"),
        features=parse_system_info(info),
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        devices=_devices(llama_cpp.llama_cpp._lib),
    )


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """`CUDA : ARCHS = 890 | CPU : SSE3 = 1 | AVX2 = 1 |` -> {"CUDA": {...}, "CPU": {...}}."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for item in text.split("|"):
        backend, sep, rest = item.partition(" : ")
        if sep:
            current = sections.setdefault(backend.strip(), {})
            item = rest
        name, _, value = item.partition("=")
        if name.strip():
            current[name.strip()] = value.strip()
    return {name: values for name, values in sections.items() if name or values}


def _devices(lib: Any) -> list[Device]:
    """Every device of every backend compiled in (ggml_backend_dev_*); none when the library
    does not export those functions."""
    try:
        count, get = lib.ggml_backend_dev_count, lib.ggml_backend_dev_get
        name, description = lib.ggml_backend_dev_name, lib.ggml_backend_dev_description
        memory, kind = lib.ggml_backend_dev_memory, lib.ggml_backend_dev_type
    except AttributeError:
        return []
    count.restype, get.restype, get.argtypes = ctypes.c_size_t, ctypes.c_void_p, [ctypes.c_size_t]
    for fn in (name, description):
        fn.restype, fn.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
    kind.restype, kind.argtypes = ctypes.c_int, [ctypes.c_void_p]
    memory.restype = None
    size_p = ctypes.POINTER(ctypes.c_size_t)
    memory.argtypes = [ctypes.c_void_p, size_p, size_p]
    found = []
    for index in range(count()):
        dev = get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.append(
            Device(
                name=(name(dev) or b"").decode(),
                description=(description(dev) or b"").decode(),
                kind=_KINDS.get(kind(dev), "?"),
                free_bytes=free.value,
                total_bytes=total.value,
            )
        )
    return found


if __name__ == "__main__":  # python -m appliance.llm.build: the probe as JSON, for a parent
    import sys

    sys.stdout.buffer.write(msgspec.json.encode(probe()))
