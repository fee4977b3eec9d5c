"""`appliance ingest` that kills itself with SIGKILL at a chosen write (for test_crash.py):
python -m tests.ingest.crash_run {index|catalog} METHOD NTH {before|after}"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from appliance.cli import main
from appliance.store.catalog import Catalog
from appliance.store.chroma import ChromaIndex


def die_at(cls: type, name: str, nth: int, after: bool) -> None:
    original: Callable[..., Any] = getattr(cls, name)
    calls = 0

    def wrapper(self: object, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == nth and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(self, *args, **kwargs)
        if calls == nth and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(cls, name, wrapper)


if __name__ == "__main__":
    target, method, nth, when = sys.argv[1:5]
    die_at({"index": ChromaIndex, "catalog": Catalog}[target], method, int(nth), when == "after")
    sys.exit(main(["ingest"]))
