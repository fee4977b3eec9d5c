"""The access log's request lines: the routes kept, what a client put in them replaced by
placeholders (by pattern: this runs for every request, so no Presidio)."""

from __future__ import annotations

import re

# Routes whose segments carry a user's, a document's or a client's words: a user name, a
# document path (which may name a person), an id a client typed. Ids of the server's own
# format (32 hex digits, numbers) are kept: they name nothing and tie a line to the audit log.
_USER = re.compile(r"/api/users/[^/]+(?P<tail>/.*)?")
_DOCUMENT = re.compile(r"/api/documents/(?P<kind>file|text)/.*")
_CONVERSATION = re.compile(r"/api/conversations/(?P<id>[^/]+)(?P<tail>/.*)?")
_KEY = re.compile(r"/api/keys/(?P<id>[^/]+)(?P<tail>/.*)?")
_OWN_ID = re.compile(r"[0-9a-f]{32}|export|\d{1,18}")
# A segment of any other path is kept only as the app names its routes and files (lowercase
# words, digits, dots, dashes): what else a client sends (a name, an address, %-escapes) is not.
_PLAIN_SEGMENT = re.compile(r"[a-z0-9._-]{1,40}")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


def request_target(target: str) -> str:
    """`target` (path and query, as uvicorn logs it) with client-chosen text replaced: known
    routes' parameters by `{name}`, `{path}`, `{id}`; other unusual segments by `{…}`; every
    query value by `…` (its key kept when it looks like one)."""
    path, mark, query = target.partition("?")
    return _path(path) + (f"?{_query(query)}" if mark else "")


def _path(path: str) -> str:
    if match := _DOCUMENT.fullmatch(path):
        return f"/api/documents/{match['kind']}/{{path}}"
    if match := _USER.fullmatch(path):
        return "/api/users/{name}" + _segments(match["tail"] or "")
    for route, match in (
        ("conversations", _CONVERSATION.fullmatch(path)),
        ("keys", _KEY.fullmatch(path)),
    ):
        if match:
            own = _OWN_ID.fullmatch(match["id"]) is not None
            return f"/api/{route}/{match['id'] if own else '{id}'}{_segments(match['tail'] or '')}"
    return _segments(path)


def _segments(path: str) -> str:
    parts = path.split("/")
    return "/".join(p if not p or _PLAIN_SEGMENT.fullmatch(p) else "{…}" for p in parts)


def _query(query: str) -> str:
    keys = [part.partition("=")[0] for part in query.split("&") if part]
    return "&".join(f"{k if _PLAIN_KEY.fullmatch(k) else '{…}'}=…" for k in keys)
