"""Presidio recognizers for what spaCy's small model misses: e-mail addresses at any domain,
people's names by lists of given names and surnames and the words before them, and the names
of the appliance's own accounts."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

log = logging.getLogger(__name__)

# Presidio's own recognizer wants a public suffix; an intranet's addresses are at `.corp`,
# `.internal`, `.lan`, `.local` or `.example`, or at a bare host of such a name.
_EMAIL = (
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@(?:(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*"
    r"|(?:localhost|local|internal|corp|lan|home|intranet|example|test))\b"
)

_UPPER, _LOWER = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_WORD = rf"[{_UPPER}][{_LOWER}]+(?:['-][{_UPPER}{_LOWER}][{_LOWER}]+)?"  # Müller, Al-Sayed
_PARTICLE = r"(?:de|da|di|du|van|von|der|den|ter|le|la|al|bin|ibn|dos|del)"
# A capitalised word, then surnames, each perhaps after particles: "Pieter de Vries".
_NAME = re.compile(rf"\b({_WORD})((?:[^\S\n]+(?:{_PARTICLE}[^\S\n]+)*{_WORD})*)")
_START = re.compile(rf"\b[{_UPPER}]")
# Words after which a lone given name is someone ("ask Sven", "Hi Siobhan"); after a mere
# preposition ("from Mette") only a name that is no English word: not "for Excel", "to Victoria".
_CUE = re.compile(
    r"(?:\b(?P<honorific>Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?|"
    r"\b(?i:(?P<person>(?P<greeting>dear|hi|hello|hey)|ask|tell|b?cc|thanks|thank|ping|call"
    r"|e?mail|contact|remind|let|invite|meet)|(?P<preposition>from|of|with|to|by|for|and|or)))"
    r"[\s,:]*$"
)
# Suffix, then what may have stood in its place: "guys" is "guy", "hiring" "hire".
_INFLECTIONS = (("ies", "y"), ("es", "", "e"), ("s", ""), ("ing", "", "e"), ("ed", "", "e"))
_POSSESSIVE = ("'s", "\N{RIGHT SINGLE QUOTATION MARK}s")
GIVEN_NAME_SCORE = 0.6  # a known given name after a cue word, or before "'s"
FULL_NAME_SCORE = 0.75  # a known given name and a surname
LISTED_NAME_SCORE = 0.9  # a known given name and known surnames: over spaCy's "place" (0.85)
HONORIFIC_SCORE = 0.85  # a word after "Mr", "Ms", "Dr"
DIRECTORY_SCORE = 0.95  # an account of this appliance
# Account names that are roles, not people: never redacted by themselves.
_ROLE_ACCOUNT = re.compile(
    r"(?i:admin|administrator|root|test|guest|user|demo|support|service|system|operator|info"
    r"|office|it|hr)"
)


def email_recognizer(language: str) -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="EMAIL_ADDRESS",
        supported_language=language,
        name="EmailAnyDomain",
        patterns=[Pattern("e-mail at any domain", _EMAIL, 0.9)],
    )


@cache
def listed(kind: str) -> frozenset[str]:
    """`given_names` or `surnames`: the lists shipped beside this module (from Faker's person
    providers, see their headers)."""
    lines = (Path(__file__).parent / f"{kind}.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


class NameCues(EntityRecognizer):
    """PERSON where a known given name is followed by surnames ("Beatriz Moreno", "Pieter de
    Vries"), or stands alone after a cue word ("ask Sven") or before "'s"; spaCy's small model
    takes such names for organisations or misses them. `words`: English words (lower case);
    one of them counts as a surname only if listed as one ("Brooks", not "Bank")."""

    def __init__(self, language: str, words: frozenset[str]) -> None:
        super().__init__(
            supported_entities=["PERSON"], name="NameCues", supported_language=language
        )
        self._given, self._surnames, self._words = listed("given_names"), listed("surnames"), words

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        # Where spaCy's proper nouns start: "for French customers" has no name.
        nouns = None if nlp_artifacts is None else _proper_nouns(nlp_artifacts)
        found, after = [], 0
        for word in _START.finditer(text):
            match = None if word.start() < after else _NAME.match(text, word.start())
            name = None if match is None else self._name(text, match, nouns)
            if match is not None and name is not None:
                found.append(RecognizerResult("PERSON", match.start(), *name))
                after = name[0]
        return found

    def _name(
        self, text: str, match: re.Match[str], nouns: set[int] | None
    ) -> tuple[int, float] | None:
        """The end and score of the name `match` starts, if it is one."""
        first, end, cue = match[1], self._surnames_end(match), _cue(text, match.start())
        if (
            cue is not None
            and cue["honorific"]
            and (first.lower() not in self._words or end > match.end(1))
        ):
            return end, HONORIFIC_SCORE  # "Mr Haugen"
        if match[2] and end == match.end(1):
            return None  # a term: "Grace Period", "Victoria Station", "Hiring Manager"
        if first in self._given:
            if end > match.end(1):
                return end, self._full_score(match, end)
        elif self._common(first) or cue is None:
            return None
        elif _surname_follows(match, self._surnames):
            return end, FULL_NAME_SCORE  # "ask Nkechi Eze"
        alone = self._alone(text, match, cue, nouns)
        return (match.end(1), GIVEN_NAME_SCORE) if alone else None

    def _surnames_end(self, match: re.Match[str]) -> int:
        """Where the surnames after the first word end: before the first English word that is
        no surname ("Jira Cloud")."""
        end = match.end(1)
        for part in re.finditer(_WORD, match[2]):
            word = part[0]
            if word not in self._surnames and self._common(word):
                break
            end = match.start(2) + part.end()
        return end

    def _common(self, word: str) -> bool:
        """An English word, perhaps inflected ("Guys", "Hiring"): the index has lemmas only."""
        lower = word.lower()
        return any(form in self._words for form in _lemmas(lower))

    def _full_score(self, match: re.Match[str], end: int) -> float:
        """Higher than spaCy's guess of a place where every part is a listed name."""
        parts = re.findall(_WORD, match.string[match.end(1) : end])
        return LISTED_NAME_SCORE if all(p in self._surnames for p in parts) else FULL_NAME_SCORE

    def _alone(
        self, text: str, match: re.Match[str], cue: re.Match[str] | None, nouns: set[int] | None
    ) -> bool:
        """A one-word name: a proper noun to spaCy, before "'s" or after a cue; a word that is
        no listed given name only after a greeting ("Hello Keiko"), and after a mere
        preposition none that is an English word ("for Excel")."""
        if nouns is not None and match.start() not in nouns:
            return False
        word, listed = match[1], match[1] in self._given
        if listed and text.startswith(_POSSESSIVE, match.end(1)):
            return True
        if cue is None or (not listed and cue["greeting"] is None):
            return False
        return cue["person"] is not None or word.lower() not in self._words


def _lemmas(word: str) -> list[str]:
    forms = [word]
    for suffix, *endings in _INFLECTIONS:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            forms += [word[: -len(suffix)] + ending for ending in endings]
    return forms


def _cue(text: str, start: int) -> re.Match[str] | None:
    return _CUE.search(text, max(0, start - 20), start)


def _surname_follows(match: re.Match[str], surnames: frozenset[str]) -> bool:
    surname = re.match(rf"[^\S\n]+({_WORD})", match[2])
    return surname is not None and surname[1] in surnames


def _proper_nouns(artifacts: NlpArtifacts) -> set[int]:
    return {token.idx for token in artifacts.tokens if token.pos_ == "PROPN"}


class Directory(EntityRecognizer):
    """PERSON for the names of the appliance's accounts, read from `known_names` at most every
    `refresh_s` seconds. A name of several parts ("ingrid.solberg", "Ingrid Solberg") is found
    in any case and with any separator; a one-word name only capitalised, and role accounts
    ("admin") never."""

    def __init__(
        self, language: str, known_names: Callable[[], Iterable[str]], refresh_s: float
    ) -> None:
        super().__init__(
            supported_entities=["PERSON"], name="Directory", supported_language=language
        )
        self._known_names = known_names
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._patterns: list[re.Pattern[str]] = []

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [
            RecognizerResult("PERSON", m.start(), m.end(), DIRECTORY_SCORE)
            for pattern in self._current()
            for m in pattern.finditer(text)
        ]

    def _current(self) -> list[re.Pattern[str]]:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self._refresh_s:
                self._read_at = now
                try:
                    self._patterns = directory_patterns(self._known_names())
                except Exception as exc:  # the other recognizers still run; the last list stays
                    log.warning(
                        "the account names could not be read (%s); retrying in %.0f s",
                        type(exc).__name__,
                        self._refresh_s,
                    )
            return self._patterns


def directory_patterns(names: Iterable[str]) -> list[re.Pattern[str]]:
    """One pattern for the several-part names (any case), one for the one-word names."""
    full, single = set(), set()
    for name in names:
        parts = [p for p in re.split(r"[\s._-]+", name.strip()) if p]
        if len(parts) > 1:
            full.add(r"[\s._-]+".join(re.escape(p) for p in parts))
        elif parts and len(parts[0]) > 2 and not _ROLE_ACCOUNT.fullmatch(parts[0]):
            single.add(re.escape(parts[0][0].upper() + parts[0][1:]))
    patterns = []
    if full:
        alternatives = "|".join(sorted(full, key=len, reverse=True))
        patterns.append(re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w@])", re.IGNORECASE))
    if single:
        alternatives = "|".join(sorted(single, key=len, reverse=True))
        patterns.append(re.compile(rf"(?<![\w.])(?:{alternatives})(?![\w@])"))
    return patterns
