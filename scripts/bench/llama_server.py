#!/usr/bin/env python3
"""llama.cpp's own `llama-server`, built once from the llama.cpp vendored in the llama-cpp-python
sdist the appliance uses, for benches that compare against it.

The build is the venv's: same llama.cpp commit, same portable CPU flags (GGML_NATIVE=OFF, as
scripts/setup builds llama-cpp-python), statically linked, no web UI download, no curl or
OpenSSL. Only the `llama-server` target is built (~10 minutes on 2 idle cores), into
~/.cache/appliance/llama-server/<version>/, and reused from there. `LLAMA_SERVER=path` uses a
binary you already have instead. Needs cmake and a C++17 compiler (Debian: cmake, g++).

    .venv/bin/python scripts/bench/llama_server.py          # build if needed, print the path

`serve()` runs it on 127.0.0.1 for a bench.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

VERSION = "0.3.36"  # llama-cpp-python's, as pinned in pyproject.toml
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
CACHE = Path.home() / ".cache" / "appliance" / "llama-server"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_APP=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)


def binary() -> Path:
    """`LLAMA_SERVER` if set, else the cached build (built now if missing)."""
    given = os.environ.get("LLAMA_SERVER")
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise SystemExit(f"LLAMA_SERVER={given}: no such file")
        return path
    built = CACHE / VERSION / "llama-server"
    if not built.is_file():
        build(built)
    return built


def sdist() -> Path:
    """The sdist: cached, left by pip in /tmp, or downloaded with the venv's pip."""
    cached = CACHE / SDIST
    if cached.is_file():
        return cached
    CACHE.mkdir(parents=True, exist_ok=True)
    for found in glob.glob(f"{tempfile.gettempdir()}/pip-unpack-*/{SDIST}"):
        shutil.copyfile(found, cached)
        return cached
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*pip, f"llama-cpp-python=={VERSION}", "-d", str(CACHE)], check=True)
    return cached


def build(target: Path) -> None:
    """Unpack vendor/llama.cpp and build the server target (`-j2`, or `LLAMA_SERVER_JOBS`)."""
    for tool in ("cmake", "c++"):
        if not shutil.which(tool):
            raise SystemExit(f"building llama-server needs `{tool}`: apt-get install cmake g++")
    work = CACHE / VERSION
    source = work / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    if not (source / "CMakeLists.txt").is_file():
        print(f"unpacking {SDIST} into {work}", file=sys.stderr)
        with tarfile.open(sdist()) as tar:
            prefix = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            tar.extractall(work, members=members, filter="data")
    build_dir = work / "build"
    jobs = os.environ.get("LLAMA_SERVER_JOBS", "2")
    print(f"building llama-server in {build_dir} (several minutes)", file=sys.stderr)
    subprocess.run(["cmake", "-S", str(source), "-B", str(build_dir), *CMAKE_FLAGS], check=True)
    subprocess.run(
        ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", jobs], check=True
    )
    shutil.copy2(build_dir / "bin" / "llama-server", target)


@contextlib.contextmanager
def serve(model: Path, slots: int, n_ctx: int, threads: int, log: Path) -> Iterator[str]:
    """`llama-server -np slots` on a free port of 127.0.0.1, its URL once it is ready. Each slot
    gets `n_ctx` tokens (with -np given the KV cache is not unified: -c is all slots' together);
    `threads` for generation and prompts alike; everything else as llama-server ships it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [str(binary()), "-m", str(model), "--no-webui", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "-np", str(slots), "-c", str(n_ctx * slots)]
    cmd += ["-t", str(threads), "-tb", str(threads)]
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        try:
            _ready(url, proc, log)
            yield url
        finally:
            proc.terminate()
            proc.wait()


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path, wait_s: float = 120) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health").status_code == 200:
                return
        if proc.poll() is not None:
            raise SystemExit(f"llama-server exited ({proc.returncode}); its log: {log}")
        time.sleep(0.1)
    raise SystemExit(f"llama-server was not ready in {wait_s:.0f} s; its log: {log}")


if __name__ == "__main__":
    print(binary())
