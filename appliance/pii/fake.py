"""A regex Redactor for the unit tier: emails, phone and card numbers; same contract as Presidio."""

from __future__ import annotations

import re

from appliance.pii.redactor import Assign, Entity, replace, without_overlaps

_PATTERNS = {
    "EMAIL_ADDRESS": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"),
    "CREDIT_CARD": re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b"),
    "PHONE_NUMBER": re.compile(r"\+\d{1,3}(?:[ -]?\d{2,4}){2,4}\b"),
}


class RegexRedactor:
    def analyze(self, text: str) -> list[Entity]:
        return without_overlaps([Entity(kind, m.start(), m.end(), 0.9)
                                 for kind, pattern in _PATTERNS.items()
                                 for m in pattern.finditer(text)])  # fmt: skip

    def redact(self, text: str, entities: list[Entity]) -> str:
        return replace(text, entities, lambda e: f"<{e.type}>")

    def pseudonymize(self, text: str, entities: list[Entity], assign: Assign) -> str:
        return replace(text, entities, lambda e: assign(e.type, text[e.start : e.end]))
