"""Doctor checks of this machine against the llama.cpp build: CPU features, GPU offload."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import msgspec

from appliance.config import Settings
from appliance.llm.build import Build
from appliance.ops.doctor import Check, fail, guarded, ok, size, warn

# ggml's CPU feature names (llama_print_system_info) -> the /proc/cpuinfo flag providing each
X86_FLAGS = {
    "SSE3": "pni",
    "SSSE3": "ssse3",
    "AVX": "avx",
    "AVX_VNNI": "avx_vnni",
    "AVX2": "avx2",
    "F16C": "f16c",
    "FMA": "fma",
    "BMI2": "bmi2",
    "AVX512": "avx512f",
    "AVX512_VBMI": "avx512vbmi",
    "AVX512_VNNI": "avx512_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX_INT8": "amx_int8",
}
ARM_FLAGS = {
    "NEON": "asimd",
    "ARM_FMA": "asimd",
    "FP16_VA": "asimdhp",
    "DOTPROD": "asimddp",
    "MATMUL_INT8": "i8mm",
    "SVE": "sve",
    "SME": "sme",
    "SME2": "sme2",
}
GPU_BUILD = 'make a GPU build: LLAMA_CMAKE_ARGS="-DGGML_CUDA=on" scripts/setup (README: GPU)'
REBUILD = (
    "build it for this box: scripts/setup builds a portable wheel (GGML_NATIVE=OFF); a wheel "
    "built elsewhere with -march=native or AVX-512 does not run here"
)


class Cpu(msgspec.Struct, frozen=True):
    model: str
    flags: frozenset[str]


class Gpu(msgspec.Struct, frozen=True):
    """A GPU as nvidia-smi reports it."""

    name: str
    free_bytes: int
    total_bytes: int


def checks(settings: Settings | None) -> tuple[Build | None, list[Check]]:
    """The build (None when it cannot be loaded) and the checks of it."""
    try:
        build = probe()
    except RuntimeError as exc:
        return None, [fail("llama.cpp", str(exc), REBUILD)]
    layers = settings.llm.n_gpu_layers if settings is not None else 0
    return build, [
        guarded("cpu-features", lambda: cpu_features(build, read_cpu())),
        guarded("gpu", lambda: gpu(build, layers, nvidia_gpus())),
    ]


def probe() -> Build:
    """The build as a child process sees it: a library built for instructions this CPU lacks
    may die loading (SIGILL); the child dies, not the doctor."""
    command = [sys.executable, "-m", "appliance.llm.build"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)  # noqa: S603 - our own module
    except subprocess.TimeoutExpired:
        raise RuntimeError("loading llama-cpp-python took over 120 s; it hangs") from None
    if done.returncode == -signal.SIGILL:
        raise RuntimeError(
            "loading llama-cpp-python stopped with SIGILL (illegal instruction): it was built "
            "for CPU features this CPU lacks"
        )
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise RuntimeError(f"llama-cpp-python cannot be loaded: {' '.join(tail)}")
    return msgspec.json.decode(done.stdout, type=Build)


def read_cpu(path: Path = Path("/proc/cpuinfo")) -> Cpu:
    """This CPU's model and instruction-set flags (x86 `flags`, Arm `Features`)."""
    model, flags = platform.machine(), frozenset[str]()
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return Cpu(model, flags)
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Model", "Hardware") and model == platform.machine():
            model = value
        if key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return Cpu(model, flags)


def cpu_features(build: Build, cpu: Cpu) -> Check:
    table = ARM_FLAGS if platform.machine() in ("aarch64", "arm64") else X86_FLAGS
    built = [f for f, v in build.features.get("CPU", {}).items() if v == "1" and f in table]
    where = f"{cpu.model}, {os.cpu_count()} logical CPUs"
    if not cpu.flags:
        detail = f"built for {' '.join(built)}; this CPU's flags cannot be read (/proc/cpuinfo)"
        return warn("cpu-features", detail, "compare by hand: `grep flags /proc/cpuinfo`")
    if missing := [f for f in built if table[f] not in cpu.flags]:
        detail = (
            f"this llama.cpp was built for {' '.join(missing)}, which this CPU ({where}) "
            "lacks: it would stop with SIGILL (illegal instruction) at the first computation"
        )
        return fail("cpu-features", detail, REBUILD)
    unused = [f for f, flag in table.items() if flag in cpu.flags and f not in built]
    extra = f"; unused by this build: {' '.join(unused)}" if unused else ""
    return ok("cpu-features", f"built for {' '.join(built)}; this CPU has them ({where}){extra}")


def gpu(build: Build, n_gpu_layers: int, nvidia: list[Gpu] | None) -> Check:
    """The GPU backend compiled in, the devices it sees, and whether layers would go there."""
    seen = f"; nvidia-smi sees {_names(nvidia)}" if nvidia else ""
    if not build.gpu_offload:
        if n_gpu_layers:
            detail = f"CPU-only build: llm.n_gpu_layers = {n_gpu_layers} is ignored{seen}"
            return warn("gpu", detail, GPU_BUILD + ", or set llm.n_gpu_layers = 0")
        hint = ": a GPU build would use it (README: Models and GPU)" if nvidia else ""
        return ok("gpu", f"CPU-only build, llm.n_gpu_layers = 0{seen}{hint}")
    backends = ", ".join(k for k in build.features if k not in ("", "CPU")) or "GPU"
    devices = [d for d in build.devices if d.kind in ("gpu", "igpu")]
    if not devices:
        detail = f"a {backends} build, but it sees no GPU device{seen}"
        if not n_gpu_layers:
            return ok("gpu", f"{detail}; llm.n_gpu_layers = 0")
        action = (
            "check the driver (`nvidia-smi`) and that the appliance's user may open the "
            "device (/dev/nvidia*; systemd/appliance.service.d/gpu.conf.example)"
        )
        return warn("gpu", f"{detail}: llm.n_gpu_layers = {n_gpu_layers} offloads nothing", action)
    listed = ", ".join(
        _device(d.description or d.name, d.free_bytes, d.total_bytes) for d in devices
    )
    offload = {0: "nothing is offloaded (-1 offloads all layers)", -1: "all layers offloaded"}
    layers = offload.get(n_gpu_layers, f"{n_gpu_layers} layers offloaded")
    return ok("gpu", f"{backends} build, {listed}; llm.n_gpu_layers = {n_gpu_layers}: {layers}")


def nvidia_gpus() -> list[Gpu] | None:
    """The GPUs nvidia-smi lists, or None when it is not installed or fails."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return None
    query = ["--query-gpu=name,memory.free,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run([tool, *query], capture_output=True, text=True, timeout=20)  # noqa: S603 - a fixed query
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    found = []
    for line in done.stdout.strip().splitlines():
        name, free, total = (part.strip() for part in line.rsplit(",", 2))
        found.append(Gpu(name, int(free) * 2**20, int(total) * 2**20))
    return found


def _names(gpus: list[Gpu]) -> str:
    return ", ".join(_device(g.name, g.free_bytes, g.total_bytes) for g in gpus)


def _device(name: str, free: int, total: int) -> str:
    return f"{name} ({size(free)} free of {size(total)})"
