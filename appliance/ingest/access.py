"""A document's audience from the watched folder: the `.access` file nearest above it (its
folder's, else the one of the folder above, up to the watched folder itself), or the file's
POSIX group (`documents.access = "posix"`). Without either: everyone.

An `.access` file is plain text, one group name a line (`everyone` for all); blank lines and
lines starting with `#` are skipped. One that cannot be read (a link, too large, not UTF-8,
unreadable) gives admins only, never everyone: a mistake must not open a folder."""

from __future__ import annotations

import grp
import logging
import os
from pathlib import Path, PurePosixPath
from typing import Literal

from appliance.ingest.folder import Refused, TooLarge, open_inside, read_capped
from appliance.store.audience import ADMINS_ONLY, EVERYONE, audience_of

log = logging.getLogger(__name__)
ACCESS_FILE = ".access"
_MAX_BYTES = 64 * 1024  # a list of group names; more is a mistake
Mode = Literal["file", "posix"]


def is_access_file(path: str) -> bool:
    return PurePosixPath(path).name == ACCESS_FILE


class AccessRules:
    """Reads `.access` files once and keeps them until `forget` (a change of one, a pass)."""

    def __init__(self, root: Path, mode: Mode = "file") -> None:
        self.root, self.mode = root, mode
        self._rules: dict[str, str | None] = {}  # folder -> its .access' audience, None: none

    def audience(self, path: str, st: os.stat_result | None = None) -> str:
        """The audience of the document at relative `path` (`st`: its stat, if at hand)."""
        if self.mode == "posix":
            return audience_of([_group_name((st or (self.root / path).lstat()).st_gid)])
        folder = PurePosixPath(path).parent
        while True:
            here = "" if str(folder) == "." else folder.as_posix()
            found = self._folder_rule(here)
            if found is not None:
                return found
            if not here:
                return EVERYONE
            folder = folder.parent

    def forget(self, folder: str | None = None) -> None:
        """Drops what was read of `folder`'s `.access` (None: of every folder)."""
        if folder is None:
            self._rules.clear()
        else:
            self._rules.pop(folder, None)

    def _folder_rule(self, folder: str) -> str | None:
        if folder not in self._rules:
            self._rules[folder] = self._read(f"{folder}/{ACCESS_FILE}" if folder else ACCESS_FILE)
        return self._rules[folder]

    def _read(self, path: str) -> str | None:
        if not os.path.lexists(self.root / path):
            return None
        try:
            data, _ = read_capped(open_inside(self.root, path), _MAX_BYTES)
            text = data.decode("utf-8")
        except (Refused, TooLarge, OSError, UnicodeDecodeError) as exc:
            reason = {
                TooLarge: f"it is over {_MAX_BYTES // 1024} KiB",
                UnicodeDecodeError: "it is not UTF-8 text",
            }.get(type(exc), str(exc))
            log.warning(
                "%s cannot be read (%s): the documents under it are shown to admins only "
                "until it is fixed (one group name a line, or `everyone`)", path, reason
            )  # fmt: skip
            return ADMINS_ONLY
        lines = (line.strip() for line in text.splitlines())
        return audience_of(line for line in lines if line and not line.startswith("#"))


def _group_name(gid: int) -> str:
    """The name of a POSIX group (the box's own group list; no name: its number)."""
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
