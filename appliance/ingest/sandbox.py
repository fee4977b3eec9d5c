"""Sandbox: the parsers run in a child process with memory and time limits, so a hostile file
fails (out of memory, too slow, parser crashed) instead of taking the server down."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import msgspec

import appliance
from appliance.errors import ExtractError
from appliance.ingest.types import Extracted, Limits

_HEADER = struct.Struct("<Q")  # the length of each frame on the pipes
_READ = 1 << 20
_START_S = 60.0  # for the worker's imports, on a busy box (not the per-file limit)
_ORPHAN_CHECK_S = 0.2
_SAMPLE_S = 0.005  # how often a busy worker's memory is looked at (a few µs each)
# A reply holds at most max_unpacked_bytes characters of text (the worker checks), which with
# headings and msgpack's framing come to about twice that many bytes; a worker that says it
# sends more is not to be believed (a parser taken over by the file) and is not read.
_REPLY_SLACK = 16 * 2**20


class Stopped(Exception):
    """The worker was ended by close() (shutdown) in the middle of a file: not its fault."""


class _TooLong(Exception):
    """A frame longer than its reader accepts: not read, its sender is ended."""


class _Job(msgspec.Struct, array_like=True):
    name: str
    data: bytes
    limits: Limits


class _Reply(msgspec.Struct, array_like=True):
    extracted: Extracted | None = None
    error: str | None = None  # the file's fault, said for a person (an ExtractError)
    memory: bool = False  # a MemoryError: the limit was reached
    bug: str | None = None  # not the file's fault: the pipeline treats it as transient


class Sandbox:
    """extract() through one long-lived worker process, started on first use and again after
    it died or was killed; callers are serialized (the ingest thread is the only one)."""

    def __init__(self, memory_mb: int = 1024, timeout_s: float = 60.0) -> None:
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., Sandbox] | None = None
        self._base = 0  # the worker's address space when it started, in bytes
        self._closing = False

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs (for tests and diagnostics)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def extract(self, name: str, data: bytes, limits: Limits) -> Extracted:
        """What `appliance.ingest.extract.extract` returns, computed in the worker.

        Raises ExtractError for the file's faults (the parser's own message, or out of
        memory, too slow, crashed) and RuntimeError when the worker cannot be started.
        """
        job = msgspec.msgpack.encode(_Job(name, data, limits))
        most = 2 * limits.max_unpacked_bytes + _REPLY_SLACK
        with self._lock:
            proc = self._handed(job)
            peak = _Peak(proc.pid)
            deadline = time.monotonic() + self.timeout_s
            try:
                reply = _read_frame(_fd(proc.stdout), deadline, peak, most)
            except _TooLong:
                self._retire()
                raise ExtractError(
                    f"the parser sent more than {most / 2**20:g} MiB for this file (a hostile "
                    "file?); it was stopped; if the file is genuine, raise "
                    "documents.max_unpacked_mb; it is tried again when it changes"
                ) from None
            except TimeoutError:
                self._retire()
                raise ExtractError(
                    f"too slow (over {self.timeout_s:g} s while extracting); if "
                    "the file is genuine, raise documents.extract_timeout_s; it "
                    "is tried again when it changes"
                ) from None
            except EOFError:
                raise ExtractError(self._died(peak.bytes)) from None
            return self._outcome(msgspec.msgpack.decode(reply, type=_Reply))

    def _handed(self, job: bytes) -> subprocess.Popen[bytes]:
        """A worker that took the whole job. One that died before (killed while idle) is
        replaced once: it parses nothing before it has read all, so it is not the file's doing."""
        for _ in range(2):
            proc = self._worker()
            try:
                _write_frame(_fd(proc.stdin), job)
                return proc
            except BrokenPipeError:
                self._retire()
                if self._closing:
                    raise Stopped("the extraction worker was stopped (shutdown)") from None
        raise RuntimeError(
            "the extraction worker ended twice while given a file; the server log has its error"
        )

    def close(self) -> None:
        """Ends the worker (at shutdown), even in the middle of a file, whose extract() then
        raises Stopped; a later extract() starts a new worker."""
        self._closing = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()  # not waiting for the file at hand: it is read again next time
        with self._lock:
            self._retire()
            self._closing = False

    def _outcome(self, reply: _Reply) -> Extracted:
        if reply.extracted is not None:
            return reply.extracted
        if reply.memory:
            self._retire()  # its heap is in pieces: start afresh
            raise ExtractError(self._out_of_memory())
        if reply.bug is not None:
            raise RuntimeError(f"the extraction worker failed: {reply.bug}")
        raise ExtractError(reply.error or "not readable")

    def _out_of_memory(self) -> str:
        return (
            f"out of memory (over {self.memory_mb} MiB while extracting); if the file is "
            "genuine, raise documents.extract_memory_mb; it is tried again when it changes"
        )

    def _died(self, peak: int) -> str:
        proc, self._proc = self._proc, None
        assert proc is not None  # noqa: S101
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # it closed its end: it is exiting
        _end(proc)
        code = proc.returncode
        if self._closing:
            raise Stopped("the extraction worker was stopped (the server is shutting down)")
        # pdfium aborts (SIGABRT) where the limit refuses it memory, when Python would raise
        # MemoryError: an address space grown near the limit tells that from a crash
        if code == _OUT_OF_MEMORY or (code < 0 and peak - self._base > self.memory_mb * 2**19):
            return self._out_of_memory()
        what = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return f"the parser crashed ({what}) on this file; it is tried again when it changes"

    def start(self) -> None:
        """Starts the worker now (its imports take a moment) without waiting for it."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._spawn()

    def _worker(self) -> subprocess.Popen[bytes]:
        """The running worker, started (again) if need be, once it is ready."""
        if self._proc is None or self._proc.poll() is not None:
            self._spawn()
        proc = self._proc
        assert proc is not None  # noqa: S101
        if self._base:
            return proc
        try:
            (self._base,) = _HEADER.unpack(
                _read_frame(_fd(proc.stdout), time.monotonic() + _START_S, most=_HEADER.size)
            )
        except (TimeoutError, EOFError, _TooLong):
            self._retire()
            raise RuntimeError(
                "the extraction worker (python -m appliance.ingest.sandbox) did "
                "not start; the server log has its error"
            ) from None
        return proc

    def _spawn(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()  # its worker has ended
        # -P: nothing from the working directory; the package is found where it was imported
        package = str(Path(appliance.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [
                sys.executable,
                "-P",
                "-m",
                "appliance.ingest.sandbox",
                str(os.getpid()),
                str(self.memory_mb),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env={**os.environ, "PYTHONPATH": path},
        )
        self._base = 0  # until it says it is ready
        self._finalizer = weakref.finalize(self, _end, self._proc)  # no orphan if never closed

    def _retire(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)


_OUT_OF_MEMORY = 3  # the worker's exit status when the limit hit where Python could not reply


def _end(proc: subprocess.Popen[bytes]) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class _Peak:
    """The largest address space seen of a process, sampled while waiting for its reply (once
    it is dead, the kernel no longer tells; its rusage holds the server's RSS from the fork)."""

    def __init__(self, pid: int | str) -> None:
        self._statm = f"/proc/{pid}/statm"
        self.bytes = 0

    def __call__(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):  # ended in between
            with open(self._statm, encoding="ascii") as statm:
                size = int(statm.read().split()[0]) * resource.getpagesize()
            self.bytes = max(self.bytes, size)


def _fd(pipe: object) -> int:
    fileno: Callable[[], int] = pipe.fileno  # type: ignore[attr-defined]
    return fileno()


def _write_frame(fd: int, body: bytes) -> None:
    view = memoryview(_HEADER.pack(len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


def _read_frame(
    fd: int,
    deadline: float | None = None,
    waiting: Callable[[], None] = lambda: None,
    most: int | None = None,
) -> bytes:
    """One frame; TimeoutError past `deadline`, calling `waiting` every _SAMPLE_S till then;
    _TooLong, before reading it, if its header says it is longer than `most` bytes."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline, waiting))
    if most is not None and size > most:
        raise _TooLong(f"a frame of {size} bytes, over {most}")
    return _read_exact(fd, size, deadline, waiting)


def _read_exact(fd: int, n: int, deadline: float | None, waiting: Callable[[], None]) -> bytes:
    out = bytearray()
    # poll, not select: select() refuses descriptors past 1023, which a busy process (many
    # connections, files and databases open) reaches
    readable = select.poll()
    readable.register(fd, select.POLLIN)
    while len(out) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if not readable.poll(min(left, _SAMPLE_S) * 1000):
                waiting()
                continue
        block = os.read(fd, min(n - len(out), _READ))
        if not block:
            raise EOFError
        out += block
    return bytes(out)


# -- the worker process ------------------------------------------------------------------------


def _serve(parent: int, memory_mb: int) -> None:
    """Reads jobs until its input ends; imports only the extractors (no model, no network)."""
    from appliance.ingest.extract import extract

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # Ctrl-C or systemd's stop reach the whole group: the server ends the worker itself,
        # so that the file at hand is not taken for the culprit
        signal.signal(sig, signal.SIG_IGN)
    jobs, replies = os.dup(0), os.dup(1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # a parser that prints must not corrupt the replies
    threading.Thread(target=_orphan_guard, args=(parent,), daemon=True).start()
    base = _Peak("self")
    base()
    _limit_memory(base.bytes, memory_mb)
    _write_frame(replies, _HEADER.pack(base.bytes))  # ready
    while True:
        try:
            job = msgspec.msgpack.decode(_read_frame(jobs), type=_Job)
        except EOFError:
            return
        except MemoryError:  # the file itself does not fit in the limit
            os._exit(_OUT_OF_MEMORY)
        _write_frame(replies, _answer(extract, job))


def _answer(extract: Callable[[str, bytes, Limits], Extracted], job: _Job) -> bytes:
    try:
        extracted = extract(job.name, job.data, job.limits)
        # the server chunks and embeds all of it, in its own memory: a bomb stops here
        if sum(len(b.text) for b in extracted.blocks) > (most := job.limits.max_unpacked_bytes):
            raise ExtractError(
                f"the text of the file comes to more than {most / 2**20:g} MB (a "
                "bomb?); it was not read; if it is genuine, raise "
                "documents.max_unpacked_mb"
            )
        reply = _Reply(extracted=extracted)
    except ExtractError as exc:
        reply = _Reply(error=str(exc))
    except MemoryError:
        reply = _Reply(memory=True)
    except Exception as exc:
        reply = _Reply(bug=f"{type(exc).__name__}: {exc}")
    try:
        return msgspec.msgpack.encode(reply)
    except MemoryError:  # a result too large to send
        os._exit(_OUT_OF_MEMORY)


def _limit_memory(base: int, memory_mb: int) -> None:
    """The address space may grow by `memory_mb` beyond what the worker holds once started."""
    limit = base + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _orphan_guard(parent: int) -> None:
    """Ends the worker if the server died (even by SIGKILL) in the middle of a file."""
    while os.getppid() == parent:
        time.sleep(_ORPHAN_CHECK_S)
    os._exit(1)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
