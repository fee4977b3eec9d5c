"""The Redactor contract (Presidio and the regex fake), then Presidio's own strengths: every
kind of entity, dates tuned, custom patterns, and no network."""

from __future__ import annotations

import itertools
import socket

import msgspec
import pytest

from appliance.config import Settings
from appliance.pii.fake import RegexRedactor
from appliance.pii.redactor import Redactor
from appliance.wiring import build_redactor

SAMPLE = "Write to anna.berg@example.org or call +44 20 7946 0958 about card 4111 1111 1111 1111."


@pytest.fixture(params=["presidio", "fake"])
def any_redactor(request: pytest.FixtureRequest) -> Redactor:
    if request.param == "fake":
        return RegexRedactor()
    real: Redactor = request.getfixturevalue("redactor")
    return real


def found(redactor: Redactor, text: str) -> dict[str, str]:
    return {text[e.start : e.end]: e.type for e in redactor.analyze(text)}


def test_contract_finds_redacts_and_pseudonymizes(any_redactor: Redactor) -> None:
    entities = any_redactor.analyze(SAMPLE)
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD"} <= {e.type for e in entities}
    assert [e.start for e in entities] == sorted(e.start for e in entities)
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))
    redacted = any_redactor.redact(SAMPLE, entities)
    assert "anna.berg" not in redacted
    assert "<EMAIL_ADDRESS>" in redacted
    names: dict[str, str] = {}
    masked = any_redactor.pseudonymize(SAMPLE + " Again: anna.berg@example.org", [
        *entities, *any_redactor.analyze(" " * (len(SAMPLE) + 8) + "anna.berg@example.org")],
        lambda kind, value: names.setdefault(value, f"<{kind}_{len(names) + 1}>"))  # fmt: skip
    assert masked.count("<EMAIL_ADDRESS_1>") == 2  # the same value, the same placeholder
    assert "anna.berg" not in masked


def test_contract_clean_text_has_nothing(any_redactor: Redactor) -> None:
    text = "Summarise the quarterly report and book the meeting room for next week."
    assert any_redactor.analyze(text) == []
    assert any_redactor.redact(text, []) == text


@pytest.mark.parametrize(("text", "value", "kind"), [
    ("Please ask Maria Garcia about it.", "Maria Garcia", "PERSON"),
    ("My SSN is 536-22-8726.", "536-22-8726", "US_SSN"),
    ("Pay to DE89 3704 0044 0532 0130 00 today.", "DE89 3704 0044 0532 0130 00", "IBAN_CODE"),
    ("The server is at 10.20.30.40 now.", "10.20.30.40", "IP_ADDRESS"),
    ("She moved to Lisbon last year.", "Lisbon", "LOCATION"),
    ("Send it to 221B Baker Street please.", "221B Baker Street", "STREET_ADDRESS"),
    ("Er wohnt in der Hauptstraße 5 seit Jahren.", "Hauptstraße 5", "STREET_ADDRESS"),
    ("Call +49 30 901820 after lunch.", "+49 30 901820", "PHONE_NUMBER"),
    ("Born on 12 March 1984 in a small town.", "12 March 1984", "DATE_TIME"),
])  # fmt: skip
def test_presidio_finds_each_kind(redactor: Redactor, text: str, value: str, kind: str) -> None:
    assert found(redactor, text).get(value) == kind


def test_vague_dates_are_not_personal_data(redactor: Redactor) -> None:
    text = "Send the figures quarterly, and again next week, on Monday or at the end of May."
    assert "DATE_TIME" not in found(redactor, text).values()


def test_custom_patterns_come_from_the_settings() -> None:
    custom = [{"name": "EMPLOYEE_ID", "pattern": r"\bEMP-\d{6}\b", "score": 0.9}]
    settings = msgspec.convert({"pii": {"custom": custom}}, Settings)
    assert found(build_redactor(settings), "Badge EMP-004211 expired.") == {
        "EMP-004211": "EMPLOYEE_ID"}  # fmt: skip


def test_nothing_is_fetched_from_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        calls.append(address)
        raise OSError("no network in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    fresh = build_redactor(msgspec.convert({}, Settings))
    assert found(fresh, "Mail bob@corp.example.com today.") == {
        "bob@corp.example.com": "EMAIL_ADDRESS"}  # fmt: skip
    assert calls == []
