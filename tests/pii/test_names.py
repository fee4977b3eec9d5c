"""What spaCy's small model misses and our recognizers find: e-mails at internal domains, names
after cue words, the appliance's own account names; and the capitalised words left alone."""

from __future__ import annotations

import msgspec
import pytest

from appliance.config import PII_ENTITIES, Settings
from appliance.pii.names import directory_patterns, listed
from appliance.pii.presidio import PresidioRedactor
from appliance.pii.redactor import Redactor

ACCOUNTS = ["ingrid.solberg", "Tomasz Nowak", "zygmunt", "admin"]


@pytest.fixture(scope="module")
def with_directory() -> PresidioRedactor:
    return PresidioRedactor("en", 0.4, PII_ENTITIES, known_names=lambda: ACCOUNTS)


def found(redactor: Redactor, text: str) -> dict[str, str]:
    return {text[e.start : e.end]: e.type for e in redactor.analyze(text)}


@pytest.mark.parametrize(
    "address",
    [
        "ingrid.solberg@finance.corp",
        "tomasz.nowak@it.internal",
        "reports@appliance.local",
        "qa-bot@staging.example",
        "facilities@office.lan",
        "oncall+db@ops.hq.acme.corp",
        "jonas.eriksen@example",
    ],
)
def test_an_email_at_an_internal_domain_is_gone(redactor: Redactor, address: str) -> None:
    text = f"Write to {address}. It is urgent."
    redacted = redactor.redact(text, redactor.analyze(text))
    assert address not in redacted
    assert redacted == "Write to <EMAIL_ADDRESS>. It is urgent."


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ask Ingrid Solberg whether the audit dates can move.", "Ingrid Solberg"),
        ("Summarise the complaint from Beatriz Moreno about the delivery.", "Beatriz Moreno"),
        ("We need the visa of Oluwaseun Adeyemi for the registration.", "Oluwaseun Adeyemi"),
        ("Tell Amara Okonkwo that her badge is ready.", "Amara Okonkwo"),
        ("please ask Pieter de Vries to sign off the notes", "Pieter de Vries"),
        ("Marco Bianchi's contract ends soon.", "Marco Bianchi"),
        ("Hi Siobhan, could you resend the rota?", "Siobhan"),
        ("Contact Kwame if the payment fails.", "Kwame"),
        ("Ask Nkechi Eze whether the venue has a projector.", "Nkechi Eze"),
        ("Hello Keiko, the room is booked.", "Keiko"),
        ("Dear Mr Haugen, your request has been received.", "Haugen"),
        ("The grievance from Yasmin Karimi needs an answer.", "Yasmin Karimi"),
    ],
)
def test_a_name_after_a_cue_word_is_found(redactor: Redactor, text: str, name: str) -> None:
    assert found(redactor, text).get(name) == "PERSON"


@pytest.mark.parametrize(
    "text",
    [
        "Ask HR on Monday whether the new contract template is approved.",
        "Contact Support if the VPN client crashes again.",
        "Forward the request to Facilities Management by Monday.",
        "Ask the Project Manager for the updated Gantt chart.",
        "Hi Team, the party is on the first Friday of the month.",
        "Will Finance approve the budget in May?",
        "The Chase Bank statement is in the Finance folder.",
        "Tell Marketing the Spring Campaign slides need the new logo.",
        "Thanks for Excel, it saved me an hour.",
        "We send the invoices for French customers by post.",
        "Ask Grace Period questions in the Billing channel.",
        "Hi Everyone, the Town Hall starts at ten.",
        "Hi Guys, the Coffee Machine on floor two is fixed.",
        "Dear Hiring Manager, please find my application attached.",
    ],
)
def test_capitalised_words_that_are_no_names_stay(redactor: Redactor, text: str) -> None:
    assert redactor.analyze(text) == []


def test_an_account_name_is_found_in_any_case_and_context(with_directory: Redactor) -> None:
    text = "what did ingrid solberg say? zygmunt wrote to Tomasz.Nowak and Zygmunt agreed."
    assert found(with_directory, text) == {
        "ingrid solberg": "PERSON",
        "Tomasz.Nowak": "PERSON",
        "Zygmunt": "PERSON",
    }


def test_a_role_account_and_an_account_in_an_email_stay_what_they_are(
    with_directory: Redactor,
) -> None:
    text = "The admin mailed ingrid.solberg@finance.corp about it."
    assert found(with_directory, text) == {"ingrid.solberg@finance.corp": "EMAIL_ADDRESS"}


def test_account_names_are_read_again_after_the_refresh() -> None:
    reads: list[list[str]] = [["Zygmunt"], ["Zygmunt", "Wojciech Bąk"]]
    calls: list[int] = []

    def known() -> list[str]:
        calls.append(1)
        return reads[min(len(calls), 2) - 1]

    text = "Zygmunt and wojciech bąk met."
    cached = PresidioRedactor("en", 0.4, ["PERSON"], known_names=known, refresh_s=3600)
    assert "wojciech bąk" not in found(cached, text)
    assert "wojciech bąk" not in found(cached, text)
    assert len(calls) == 1
    fresh = PresidioRedactor("en", 0.4, ["PERSON"], known_names=known, refresh_s=0)
    assert found(fresh, text) == {"Zygmunt": "PERSON", "wojciech bąk": "PERSON"}


def test_directory_patterns_skip_short_names_and_roles() -> None:
    patterns = directory_patterns(["al", "root", "Support", "  ", "grete"])
    assert [p.pattern for p in patterns] == [r"(?<![\w.])(?:Grete)(?![\w@])"]


def test_the_name_lists_leave_out_common_words() -> None:
    given, surnames = listed("given_names"), listed("surnames")
    assert len(given) > 10_000
    assert len(surnames) > 10_000
    assert {"Ingrid", "Kwame", "Siobhan", "Priya"} <= given
    assert {"Brooks", "Okonkwo", "Costa"} <= surnames
    assert not {"Will", "May", "Monday", "June", "Madam", "Sir", "Team"} & given


def test_the_default_settings_build_a_redactor_without_a_directory() -> None:
    from appliance.wiring import build_redactor

    assert found(build_redactor(msgspec.convert({}, Settings)), "zygmunt called.") == {}


def test_unreadable_account_names_leave_the_other_recognizers_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reads: list[int] = []

    def known() -> list[str]:
        reads.append(1)
        if len(reads) == 1:
            raise OSError("database is closed")
        return ["Zygmunt"]

    redactor = PresidioRedactor("en", 0.4, PII_ENTITIES, known_names=known, refresh_s=0)
    text = "Zygmunt wrote from z@lab.corp."
    assert found(redactor, text) == {"z@lab.corp": "EMAIL_ADDRESS"}
    assert "could not be read (OSError)" in caplog.text
    assert found(redactor, text) == {"Zygmunt": "PERSON", "z@lab.corp": "EMAIL_ADDRESS"}
