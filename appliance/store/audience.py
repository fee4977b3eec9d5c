"""Who may see a document: its audience, as stored beside it and its chunks, and the reader
a search or a view is made for. Pure values, no I/O.

An audience is one string, the same in the catalog (SQL) and on each chunk's vector (Chroma
metadata), so that both retrievers filter by equality before they rank: `*` is everyone, any
other value the groups that may see it, case-folded, sorted, one per line (`""`: no group,
admins only). Few distinct audiences exist (one per `.access` file or POSIX group), so a
reader's filter is the list of those it may see."""

from __future__ import annotations

from collections.abc import Collection, Iterable

import msgspec

EVERYONE = "*"
ADMINS_ONLY = ""


def audience_of(groups: Iterable[str] | None) -> str:
    """The audience of these groups (None: everyone; `everyone` among them: everyone too)."""
    if groups is None:
        return EVERYONE
    names = sorted({g.strip().casefold() for g in groups if g.strip()})
    return EVERYONE if "everyone" in names else "\n".join(names)


def groups_in(audience: str) -> list[str]:
    """The groups an audience names ([] for everyone or admins only)."""
    return [] if audience == EVERYONE else [g for g in audience.split("\n") if g]


class Reader(msgspec.Struct, frozen=True):
    """Whom a search, a listing or a document view is for: an admin sees every document,
    anyone else those of everyone and of their groups (case-folded)."""

    groups: frozenset[str] = frozenset()
    admin: bool = False

    def may_see(self, audience: str) -> bool:
        return (
            self.admin
            or audience == EVERYONE
            or not self.groups.isdisjoint(groups_in(audience))
        )

    def allowed(self, audiences: Collection[str]) -> list[str] | None:
        """The audiences among `audiences` (those the index holds) this reader may see, for a
        filter; None when they are all of them (no filter needed)."""
        seen = sorted(a for a in audiences if self.may_see(a))
        return None if len(seen) == len(audiences) else seen


EVERYTHING = Reader(admin=True)  # the command line and the evals: no filter
