"""The watched folder as the index sees it: which paths count, walked without leaving it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", "~")
Kind = Literal["file", "folder", "missing", "other"]


def ignored(path: str) -> bool:
    """Hidden files, Office lock files and partial downloads are never indexed."""
    return any(part.startswith((".", "~$")) or part.endswith(_IGNORED_SUFFIXES)
               for part in path.split("/"))  # fmt: skip


def collection_of(path: str) -> str:
    """A document's collection: its top-level subfolder ("" for files at the top)."""
    return path.split("/", 1)[0] if "/" in path else ""


def inside(path: str, folder: str) -> bool:
    """Whether relative `path` is `folder` or under it ("" is the whole watched folder)."""
    return not folder or path == folder or path.startswith(folder.rstrip("/") + "/")


class WatchedFolder:
    """Paths are relative and "/"-separated. Symbolic links are not followed: a link could
    bring any file of the box (a key, a config) into what chat can quote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = root.resolve()

    def kind(self, path: str) -> Kind:
        full = self.root / path
        if not os.path.lexists(full):
            return "missing"
        if full.resolve() != self._real_root / path:  # a link somewhere along the path
            return "other"
        if full.is_dir():
            return "folder"
        return "file" if full.is_file() else "other"

    def walk(self, under: str = "") -> Iterator[tuple[str, os.stat_result]]:
        """Every regular file at or under `under` that is not ignored, with its stat."""
        kind = self.kind(under) if under else "folder"
        if kind == "file" and not ignored(under):
            yield from self._stat(under)
        if kind != "folder":
            return
        for dirpath, dirnames, filenames in os.walk(self.root / under):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames
                                 if not ignored(d) and not (here / d).is_symlink())  # fmt: skip
            for name in sorted(filenames):
                if not ignored(name) and not (here / name).is_symlink():
                    yield from self._stat((here / name).relative_to(self.root).as_posix())

    def _stat(self, path: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            st = (self.root / path).stat()
        except OSError:
            return  # gone between listing and stat: its event or the next pass handles it
        yield path, st
