"""Redaction on request (`/api/redact`): its size cap and per-user limits, then the redactor."""

from __future__ import annotations

from appliance.accounts.limits import ChatLimits
from appliance.errors import TooLarge
from appliance.pii.redactor import Entity, Redactor


class Redaction:
    def __init__(self, redactor: Redactor, limits: ChatLimits, max_chars: int) -> None:
        self._redactor = redactor
        self._limits = limits
        self._max_chars = max_chars

    def redact(self, user: int, text: str) -> tuple[str, list[Entity]]:
        """The text with personal data replaced, and what was found where (Presidio: ~40 ms a
        thousand characters, so call it on a thread). 413 past `limits.redact_max_chars`,
        429 past the user's redactions a minute or at once."""
        if len(text) > self._max_chars:
            raise TooLarge(
                f"the text has {len(text):,} characters; at most {self._max_chars:,} "
                "(limits.redact_max_chars): send it in parts, or raise the setting"
            )
        with self._limits.request(user):
            entities = self._redactor.analyze(text)
            return self._redactor.redact(text, entities), entities
