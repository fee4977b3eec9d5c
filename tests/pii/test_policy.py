"""The policy at each point: what the model sees, what is stored, what the owner is shown."""

from __future__ import annotations

import pytest

from appliance.config import PII_ENTITIES
from appliance.pii.policy import Policy, Privacy
from appliance.pii.pseudonyms import Pseudonyms, Restorer
from appliance.pii.redactor import Redactor

MESSAGE = "I am Maria Garcia, mail maria.garcia@example.com about my card 4111 1111 1111 1111."
RAW = ("Maria Garcia", "maria.garcia@example.com", "4111 1111 1111 1111")


def privacy(redactor: Redactor, prompts: str = "off", output: str = "off",
            documents: str = "off") -> Privacy:  # fmt: skip
    return Privacy(redactor, Policy(prompts=prompts, documents=documents, output=output),  # type: ignore[arg-type]
                   PII_ENTITIES)  # fmt: skip


def no_raw(text: str) -> bool:
    return not any(value in text for value in RAW)


@pytest.mark.parametrize("prompts", ["off", "redact", "pseudonymize"])
def test_what_is_stored_never_holds_personal_data(redactor: Redactor, prompts: str) -> None:
    p = privacy(redactor, prompts)
    prepared = p.prepare("c1", MESSAGE)
    assert no_raw(prepared.stored_text)
    assert "<PERSON_1>" in prepared.stored_text
    assert {e.type for e in prepared.entities} >= {"PERSON", "EMAIL_ADDRESS", "CREDIT_CARD"}
    model = prepared.model_text
    if prompts == "off":
        assert model == MESSAGE
    elif prompts == "redact":
        assert no_raw(model)
        assert "<PERSON>" in model
    else:
        assert model == prepared.stored_text


def test_pseudonyms_are_stable_in_a_conversation_and_private_to_it(redactor: Redactor) -> None:
    p = privacy(redactor, "pseudonymize")
    first = p.prepare("c1", "Ask Maria Garcia.").model_text
    second = p.prepare("c1", "Did Maria Garcia reply? Also ask John Miller.").model_text
    assert "<PERSON_1>" in first
    assert "<PERSON_1>" in second
    assert "<PERSON_2>" in second
    other = privacy(redactor, "pseudonymize")
    assert other.shown("c1", second)[0] == second  # another mapping cannot restore them
    shown, spans = p.shown("c1", second)
    assert shown == "Did Maria Garcia reply? Also ask John Miller."
    assert [(s.type, shown[s.start : s.end]) for s in spans] == [
        ("PERSON", "Maria Garcia"), ("PERSON", "John Miller")]  # fmt: skip
    p.forget("c1")
    assert p.shown("c1", second)[0] == second


def test_the_answer_is_restored_for_its_owner_even_split_across_tokens(redactor: Redactor) -> None:
    p = privacy(redactor, "pseudonymize")
    p.prepare("c1", "Write to Maria Garcia.")
    shown = p.answer_filter("c1")
    pieces = ["Dear <", "PER", "SON_1", ">, thanks", ". Regards, <PERSON_9>", " and <b"]
    out = "".join(shown.feed(piece) for piece in pieces) + shown.flush()
    assert out == "Dear Maria Garcia, thanks. Regards, <PERSON_9> and <b"


def test_output_redaction_works_by_sentence(redactor: Redactor) -> None:
    p = privacy(redactor, output="redact")
    shown = p.answer_filter("c1")
    first = shown.feed("Contact John Miller at john.miller@example.com. ")
    assert "john.miller@" not in first
    assert first.endswith(".")
    assert shown.feed("His number is") == ""  # held until the sentence ends
    rest = shown.feed(" +44 20 7946 0958.") + shown.flush()
    assert "7946" not in rest


def test_earlier_turns_reach_the_model_as_the_policy_says(redactor: Redactor) -> None:
    for prompts, expected in (("off", "Ask Maria Garcia."), ("redact", "Ask <PERSON>."),
                              ("pseudonymize", "Ask <PERSON_1>.")):  # fmt: skip
        p = privacy(redactor, prompts)
        stored = p.prepare("c1", "Ask Maria Garcia.").stored_text
        assert p.for_model("c1", stored) == expected


def test_documents_are_redacted_only_when_asked(redactor: Redactor) -> None:
    text = "Contact Maria Garcia (maria.garcia@example.com) for leave requests."
    assert privacy(redactor).document_text(text) == text
    assert no_raw(privacy(redactor, documents="redact").document_text(text))


def test_restorer_lets_a_lone_angle_bracket_through() -> None:
    names = Pseudonyms()
    names.assign("PERSON", "Ann")
    restorer = Restorer(names)
    assert restorer.feed("a < b and <PERSON_1> and <") + restorer.flush() == "a < b and Ann and <"
    assert restorer.feed("x <" + "y" * 60) == "x <" + "y" * 60  # too long to be a placeholder


def test_neighbours_of_one_kind_get_their_own_placeholders(redactor: Redactor) -> None:
    prepared = privacy(redactor).prepare("c1", "cc ann@example.org bob@example.org please")
    assert prepared.stored_text == "cc <EMAIL_ADDRESS_1> <EMAIL_ADDRESS_2> please"


def test_numbers_go_on_after_a_restart_and_invented_ones_are_never_restored(
    redactor: Redactor,
) -> None:
    before = privacy(redactor, "pseudonymize").prepare("c1", "Ask Maria Garcia.").stored_text
    after_restart = privacy(redactor, "pseudonymize")
    again = after_restart.prepare("c1", "And John Miller?", earlier=[before])
    assert again.stored_text == "And <PERSON_2>?"
    answer = after_restart.stored_answer("c1", "Both <PERSON_2> and <PERSON_7> agree.")
    assert answer == "Both <PERSON_2> and <PERSON> agree."


def test_with_output_redaction_the_stored_answer_hides_what_the_live_one_hid(
    redactor: Redactor,
) -> None:
    p = privacy(redactor, "pseudonymize", output="redact")
    p.prepare("c1", "Write to Maria Garcia.")
    stored = p.stored_answer("c1", "Sure, <PERSON_1>. Also copy boss@corp.example.com.")
    assert stored == "Sure, <PERSON_1>. Also copy <EMAIL_ADDRESS>."
    assert p.shown("c1", stored)[0] == "Sure, Maria Garcia. Also copy <EMAIL_ADDRESS>."
