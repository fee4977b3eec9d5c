"""The Redactor protocol and what it finds: entities with a type, a span and a score."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec


class Entity(msgspec.Struct, frozen=True):
    type: str
    start: int
    end: int
    score: float


# Gives the placeholder for an entity: (type, original text) -> e.g. "<PERSON_1>".
Assign = Callable[[str, str], str]


class Redactor(Protocol):
    def analyze(self, text: str) -> list[Entity]:
        """Entities found in `text`, without overlaps, in order of their start."""
        ...

    def redact(self, text: str, entities: list[Entity]) -> str:
        """`text` with each entity replaced by its type, e.g. `<EMAIL_ADDRESS>`."""
        ...

    def pseudonymize(self, text: str, entities: list[Entity], assign: Assign) -> str:
        """`text` with each entity replaced by the placeholder `assign` gives it."""
        ...


# Found by the language model's guess rather than a checked pattern: on an overlap, a pattern
# (a phone number, an address) wins over a "date" or "person" seen in part of it.
_GUESSED = frozenset({"PERSON", "LOCATION", "DATE_TIME", "NRP", "ORGANIZATION"})


def without_overlaps(entities: list[Entity]) -> list[Entity]:
    """Where two entities overlap: a pattern match over a guess, then the higher score, then
    the longer one wins."""
    ranked = sorted(entities, key=lambda e: (e.type in _GUESSED, -e.score, e.start - e.end))
    kept: list[Entity] = []
    for entity in ranked:
        if all(entity.end <= k.start or entity.start >= k.end for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e.start)


def replace(text: str, entities: list[Entity], value: Callable[[Entity], str]) -> str:
    """Replaces non-overlapping entities (sorted by start) with `value(entity)`."""
    out, at = [], 0
    for entity in entities:
        out += [text[at : entity.start], value(entity)]
        at = entity.end
    return "".join([*out, text[at:]])
