"""The watched folder as the index sees it: which paths count, walked without leaving it."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Literal

_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp", "~")
Kind = Literal["file", "folder", "missing", "other"]
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in opens at once instead of blocking the ingest thread
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class Refused(Exception):
    """The path, as found when opened, is not a regular file inside the folder."""


class TooLarge(Exception):
    """The file holds more than the bytes a caller would read."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size  # at least this many bytes


def ignored(path: str) -> bool:
    """Hidden files, Office lock files and partial downloads are never indexed."""
    return any(
        part.startswith((".", "~$")) or part.endswith(_IGNORED_SUFFIXES) for part in path.split("/")
    )


def log_name(path: str) -> str:
    """How a log line names a document: by type and collection, never by its file name, which
    may hold a person's name (the Documents page and `appliance documents` show the path)."""
    kind = PurePosixPath(path).suffix.lower() or "extension-less"
    where = f"in {collection_of(path)}/" if "/" in path else "at the top of the folder"
    return f"a {kind} file {where}"


def collection_of(path: str) -> str:
    """A document's collection: its top-level subfolder ("" for files at the top)."""
    return path.split("/", 1)[0] if "/" in path else ""


def open_inside(root: Path, path: str) -> int:
    """A descriptor of the regular file at relative `path` under `root`, opened one folder at
    a time from `root` (openat) without following any link, so that a link or a FIFO swapped in
    after a check is refused here, and nothing outside the folder is ever opened.

    Raises Refused (a link, a FIFO, a device, "..") or OSError (gone, unreadable).
    """
    parts = path.split("/")
    if not path or "\0" in path or any(p in ("", ".", "..") for p in parts):
        raise Refused(f"{path!r} is not a path inside the watched folder")
    folder = os.open(root, _DIR)  # the root itself may be a link: the operator's choice
    try:
        for part in parts[:-1]:
            _check(part, folder, stat.S_ISDIR, "a folder")
            below = _open_at(part, _DIR | os.O_NOFOLLOW, folder)
            os.close(folder)
            folder = below
        _check(parts[-1], folder, stat.S_ISREG, "a regular file")
        fd = _open_at(parts[-1], _FILE, folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused("it is not a regular file (a FIFO, a device or a socket); it was not read")
    return fd


def read_capped(fd: int, cap: int) -> tuple[bytes, os.stat_result]:
    """All bytes of open regular file `fd` (closed after) and its stat; TooLarge past `cap`
    bytes, having read at most cap + 1 of them (the file may grow after the stat)."""
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(fd)
        if st.st_size > cap:
            raise TooLarge(st.st_size)
        data = file.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(len(data))
    return data, st


def _check(name: str, folder: int, is_kind: Callable[[int], bool], kind: str) -> None:
    """Says why before opening: a link (never followed) or not the kind of thing expected."""
    mode = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode
    if stat.S_ISLNK(mode):
        raise Refused(f"{name!r} is a symbolic link; links are not followed")
    if not is_kind(mode):
        raise Refused(f"{name!r} is not {kind} (a FIFO, a device or a socket?); it was not read")


def _open_at(name: str, flags: int, folder: int) -> int:
    try:
        return os.open(name, flags, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a link since _check
            raise Refused(f"{name!r} became a symbolic link; links are not followed") from None
        raise


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
            dirnames[:] = sorted(
                d for d in dirnames if not ignored(d) and not (here / d).is_symlink()
            )
            for name in sorted(filenames):
                if not ignored(name):
                    yield from self._stat((here / name).relative_to(self.root).as_posix())

    def read(self, path: str, cap: int) -> tuple[bytes, os.stat_result]:
        """The bytes of regular file `path` as opened now (see open_inside), at most `cap`."""
        return read_capped(open_inside(self.root, path), cap)

    def _stat(self, path: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            st = (self.root / path).lstat()
        except OSError:
            return  # gone between listing and stat: its event or the next pass handles it
        if stat.S_ISREG(st.st_mode):  # not a link, a FIFO or a device
            yield path, st
