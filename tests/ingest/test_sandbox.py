"""Extraction in the child process, on real files through the real pipeline: a PDF bomb runs
out of memory, a slow file out of time, a parser killed by a signal is a crash; each file ends
failed with the reason, is not read again until it changes, and the next file is indexed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from appliance.embed.embedder import Embedder
from appliance.errors import ExtractError
from appliance.ingest.sandbox import Sandbox
from appliance.ingest.types import Limits
from appliance.ingest.watch import FolderWatcher
from tests.ingest.samples import docx_bytes, pdf_bomb, pdf_bytes
from tests.ingest.test_watch import wait_for
from tests.ingest.world import World, assert_index_equals_folder, make_world

REPO = Path(__file__).resolve().parents[2]


def big_markdown() -> str:
    """~8 MB of Markdown: seconds of parsing for markdown-it, in pure Python."""
    words = ["leave", "travel", "badge", "payroll", "laptop", "policy", "manager", "office"]
    return "\n\n".join(
        f"## Section {n}\n\n" + " ".join(words[(n + i) % 8] for i in range(80))
        for n in range(15_000)
    )


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of process `pid`, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def worker_pid(sandbox: Sandbox) -> int:
    pid = sandbox.pid
    assert pid is not None, "the extraction worker is not running"
    return pid


def sync_in_background(world: World, path: str) -> tuple[threading.Thread, dict[str, str]]:
    result: dict[str, str] = {}
    thread = threading.Thread(
        target=lambda: result.update(outcome=world.pipeline.sync_safely(path))
    )
    thread.start()
    return thread, result


def busy_with_big_file(
    world: World, sandbox: Sandbox
) -> tuple[int, threading.Thread, dict[str, str]]:
    """Starts syncing big.md on a thread; returns once the worker is parsing it."""
    world.write("warm.md", "# Warm\n\nStarts the worker.")
    assert world.pipeline.sync("warm.md") == "indexed"
    pid = worker_pid(sandbox)
    before = cpu_ticks(pid)
    world.write("big.md", big_markdown())
    thread, result = sync_in_background(world, "big.md")
    wait_for("the worker parsing big.md", lambda: cpu_ticks(pid) > before + 20)
    return pid, thread, result


def ended(thread: threading.Thread) -> None:
    thread.join(timeout=120)
    assert not thread.is_alive(), "the sync never returned"


def test_a_pdf_bomb_runs_out_of_memory_and_is_not_read_again_until_it_changes(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    world = make_world(tmp_path, onnx_embedder, sandbox=Sandbox(memory_mb=128))
    world.write("bomb.pdf", pdf_bomb(512 * 2**20))  # 1.5 MB on disk
    world.write("good.md", "# Good\n\nIndexed after the bomb.")
    done = world.pipeline.reconcile()
    assert world.status() == {"bomb.pdf": "failed", "good.md": "indexed"}
    assert done.failed == 1
    bomb = world.doc("bomb.pdf")
    assert "out of memory (over 128 MiB while extracting)" in (bomb.error or ""), bomb.error
    assert "documents.extract_memory_mb" in (bomb.error or "")
    assert_index_equals_folder(world)
    world.pipeline.close()
    world.db.close()
    again = make_world(tmp_path, onnx_embedder, sandbox=Sandbox(memory_mb=128))  # a restart
    assert again.pipeline.reconcile().files_total == 0  # no restart loop
    assert again.doc("bomb.pdf").indexed_at == bomb.indexed_at
    again.write("bomb.pdf", pdf_bytes(["Fixed: a normal report now."]))
    again.pipeline.reconcile()
    assert again.status() == {"bomb.pdf": "indexed", "good.md": "indexed"}


def test_a_file_whose_text_inflates_past_the_unpacked_limit_fails(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    world = make_world(tmp_path, onnx_embedder, limits=Limits(max_unpacked_bytes=2**20))
    world.write("inflates.pdf", pdf_bomb(4 * 2**20))  # 3 MB of text from 11 kB
    assert world.pipeline.sync("inflates.pdf") == "failed"
    error = world.doc("inflates.pdf").error or ""
    assert "the text of the file comes to more than 1 MB" in error, error
    assert world.catalog.owners() == {}


def test_a_file_too_slow_to_parse_fails_and_the_worker_is_replaced(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    sandbox = Sandbox(timeout_s=0.5)
    world = make_world(tmp_path, onnx_embedder, sandbox=sandbox)
    world.write("big.md", big_markdown())
    assert world.pipeline.sync("big.md") == "failed"
    error = world.doc("big.md").error or ""
    assert "too slow (over 0.5 s while extracting)" in error, error
    assert "documents.extract_timeout_s" in error
    assert sandbox.pid is None  # killed, not left parsing
    world.write("next.txt", "The next file is read by a new worker.")
    assert world.pipeline.sync("next.txt") == "indexed"
    assert world.pipeline.reconcile().files_total == 0  # the slow file is not tried again


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_a_parser_killed_by_a_signal_fails_the_file_and_the_next_one_is_indexed(
    tmp_path: Path, onnx_embedder: Embedder, sig: signal.Signals
) -> None:
    sandbox = Sandbox()
    world = make_world(tmp_path, onnx_embedder, sandbox=sandbox)
    pid, thread, result = busy_with_big_file(world, sandbox)
    os.kill(pid, sig)
    ended(thread)
    assert result["outcome"] == "failed"
    error = world.doc("big.md").error or ""
    assert f"the parser crashed (signal {sig.name})" in error, error
    world.write("after.md", "# After\n\nIndexed by a new worker.")
    assert world.pipeline.sync("after.md") == "indexed"
    assert worker_pid(sandbox) != pid
    assert world.pipeline.reconcile().files_total == 0  # the crashing file is not read again
    assert_index_equals_folder(world)


def test_a_crash_does_not_stop_the_watcher(tmp_path: Path, onnx_embedder: Embedder) -> None:
    sandbox = Sandbox(memory_mb=128)
    world = make_world(tmp_path, onnx_embedder, sandbox=sandbox)
    watcher = FolderWatcher(world.pipeline, 0.2)
    watcher.start()
    try:
        world.write("bomb.pdf", pdf_bomb(512 * 2**20))
        wait_for("the bomb failed", lambda: world.status().get("bomb.pdf") == "failed")
        world.write("later.md", "# Later\n\nStill watched.")
        wait_for("later indexed", lambda: world.status().get("later.md") == "indexed")
    finally:
        watcher.stop()


def test_shutdown_in_the_middle_of_a_file_leaves_it_pending(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    sandbox = Sandbox()
    world = make_world(tmp_path, onnx_embedder, sandbox=sandbox)
    pid, thread, result = busy_with_big_file(world, sandbox)
    world.pipeline.close()
    ended(thread)
    assert result["outcome"] == "stopped"
    assert world.status()["big.md"] == "pending"  # read again at the next start, not failed
    assert gone(pid)


def test_the_worker_ends_with_the_watcher(tmp_path: Path, onnx_embedder: Embedder) -> None:
    sandbox = Sandbox()
    world = make_world(tmp_path, onnx_embedder, sandbox=sandbox)
    world.write("a.md", "# A\n\nRead by the worker.")
    watcher = FolderWatcher(world.pipeline, 0.2)
    watcher.start()
    wait_for("a.md indexed", lambda: world.status().get("a.md") == "indexed")
    pid = worker_pid(sandbox)
    watcher.stop()
    assert gone(pid)


SERVER_KILLED = """
import sys
from appliance.ingest.sandbox import Sandbox
from appliance.ingest.types import Limits
sandbox = Sandbox()
sandbox.extract("warm.md", b"# Warm", Limits())
print(sandbox.pid, flush=True)
sandbox.extract("big.md", sys.stdin.buffer.read(), Limits())
"""


def test_the_worker_ends_when_the_server_is_killed_in_the_middle_of_a_file() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER_KILLED],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    assert server.stdin is not None
    pid = int(server.stdout.readline())
    before = cpu_ticks(pid)
    server.stdin.write(big_markdown().encode())
    server.stdin.close()
    wait_for("the worker parsing", lambda: cpu_ticks(pid) > before + 20)
    server.kill()  # SIGKILL: no shutdown code runs
    server.wait()
    server.stdout.close()
    wait_for("the worker ended", lambda: gone(pid))


def test_the_worker_loads_only_the_parsers(tmp_path: Path) -> None:
    sandbox = Sandbox()
    samples = {
        "a.pdf": pdf_bytes(["Page."]),
        "a.docx": docx_bytes([("Normal", "Word.")]),
        "a.html": b"<p>Web.</p>",
        "a.md": b"# Mark",
        "a.csv": b"a,b\n1,2\n",
        "a.txt": b"Text.",
    }
    for name, data in samples.items():
        assert sandbox.extract(name, data, Limits()).blocks, name
    maps = Path(f"/proc/{worker_pid(sandbox)}/maps").read_text()
    sandbox.close()
    assert "pdfium" in maps  # the check can see a library when it is there
    for heavy in ("onnxruntime", "torch", "chromadb", "llama", "tokenizers", "spacy"):
        assert heavy not in maps, heavy


def test_without_watching_the_worker_ends_after_the_start_up_pass(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    sandbox = Sandbox()
    world = make_world(tmp_path, onnx_embedder, sandbox=sandbox)
    world.write("a.md", "# A\n\nRead once at start.")
    watcher = FolderWatcher(world.pipeline, 0.2, watch=False)
    watcher.start()
    assert watcher.idle.wait(60)
    assert world.status() == {"a.md": "indexed"}
    assert sandbox.pid is None  # its memory is given back while nothing is left to read
    watcher.stop()


# Loaded by the worker (PYTHONPATH): a parser taken over by "hostile.txt" writes to the reply
# pipe itself, a header that claims a reply of 1 GiB, and ends.
HOSTILE_PARSER = """
import os, stat, struct
import appliance.ingest.extract as module

real = module.extract

def extract(name, data, limits):
    if name != "hostile.txt":
        return real(name, data, limits)
    for fd in map(int, os.listdir("/proc/self/fd")):
        flags = ""
        if fd > 2 and os.path.exists(f"/proc/self/fdinfo/{fd}"):
            with open(f"/proc/self/fdinfo/{fd}") as info:
                flags = info.read().split("flags:")[1].split()[0]
        if flags and stat.S_ISFIFO(os.fstat(fd).st_mode) and int(flags, 8) & os.O_WRONLY:
            os.write(fd, struct.pack("<Q", 2**30) + b"x" * 4096)
    os._exit(0)

module.extract = extract
"""


def test_a_worker_that_claims_a_huge_reply_is_not_read_and_is_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sitecustomize.py").write_text(HOSTILE_PARSER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sandbox = Sandbox()
    limits = Limits(max_unpacked_bytes=2**20)
    with pytest.raises(ExtractError) as failed:
        sandbox.extract("hostile.txt", b"anything", limits)
    assert "the parser sent more than 18 MiB for this file" in str(failed.value)
    assert "documents.max_unpacked_mb" in str(failed.value)
    assert sandbox.pid is None  # ended, not read from again
    text = sandbox.extract("fine.txt", b"A genuine file, read by a new worker.", limits)
    assert "genuine" in text.blocks[0].text
    sandbox.close()
