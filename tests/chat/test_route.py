"""The router: its rules on plain cases, follow-ups, the lean to documents, and its accuracy
on the labelled set (tests/data/route_eval.jsonl) with the bundled embedder
(scripts/eval/routing.py prints the table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.chat.route import PROTOTYPES, Router, ruled
from appliance.embed.embedder import Embedder
from appliance.llm.types import ChatMessage
from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval" / "routing.py"
GOAL = 0.90  # issue 13: overall accuracy with the bundled models
# Measured on 130 messages: documents 0.98, direct 0.89, person 1.00, all 0.95 (29 right of the
# last 31, written after the router and not tuned on); per kind set a little lower.
KIND_FLOORS = {"documents": 0.94, "direct": 0.84, "person": 0.9}

routing_eval = load_script(SCRIPT, "routing_eval")

PASTED = "Translate this into French:\n\nDear all,\nthe canteen is closed on Thursday.\nThanks, Tom"


@pytest.fixture(scope="module")
def router(onnx_embedder: Embedder) -> Router:
    return Router(onnx_embedder)


def _user(text: str) -> ChatMessage:
    return ChatMessage("user", text)


def _answer(text: str = "Here it is.") -> ChatMessage:
    return ChatMessage("assistant", text)


@pytest.mark.parametrize(
    "message",
    [
        PASTED,
        'Please shorten "we would be very grateful if you could possibly send the file soon"',
        "summarize: the vendor moved the delivery to May and asked us to confirm the new date",
        "proofread this\n> I has sent the invoice yesterday",
        "Translate into French: 'The meeting starts at noon.'",
        'How do I say "thank you" in German? Please translate',
    ],
)
def test_an_instruction_on_text_the_message_gives_is_direct(message: str) -> None:
    route = ruled(message)
    assert route is not None
    assert route.kind == "direct"
    assert "text it gives" in route.reason


@pytest.mark.parametrize(
    "message",
    [
        "write an email to HR asking about my leave balance",
        "Could you draft a short announcement about the new coffee machine?",
        "Compose a haiku about spreadsheets",
    ],
)
def test_writing_something_new_is_direct_whatever_it_mentions(message: str) -> None:
    route = ruled(message)
    assert route is not None
    assert route.kind == "direct"
    assert route.reason.startswith("asks to write")


def test_translating_needs_text_to_translate() -> None:
    assert ruled("Is there a translation service for customer letters?") is None


def test_an_instruction_without_text_is_left_to_the_rest() -> None:
    assert ruled("Summarize our travel policy") is None
    assert ruled("translate that into Italian") is None


@pytest.mark.parametrize(
    "message",
    [
        "I want to talk to a person",
        "Can I speak to someone in HR?",
        "i want a human",
        "can someone from IT call me back",
        "Please transfer me to the helpdesk",
    ],
)
def test_a_request_for_a_person_is_a_hand_off(message: str, router: Router) -> None:
    route = router.route(message, [])
    assert route.kind == "person"
    assert ruled(message) == route


@pytest.mark.parametrize(
    "message", ["Who do I talk to about my pension?", "How do I speak to someone in payroll?"]
)
def test_asking_whom_to_contact_is_a_question_to_the_documents(
    message: str, router: Router
) -> None:
    assert router.route(message, []).kind == "documents"


@pytest.mark.parametrize(
    ("first", "kind"),
    [
        (PASTED, "direct"),
        ("How many days of annual leave do new starters get?", "documents"),
        ("Can someone from HR phone me?", "person"),
    ],
)
def test_a_follow_up_takes_the_route_of_the_turn_before(
    first: str, kind: str, router: Router
) -> None:
    history = [_user(first), _answer()]
    alone = router.route(first, [])
    assert alone.kind == kind
    follow_up = router.route("and in Spanish?", history)
    assert follow_up.kind == kind
    assert follow_up.reason == f"follow-up to: {alone.reason}"
    chained = router.route("what about next week?", [*history, _user("and then?"), _answer()])
    assert chained == follow_up


def test_a_follow_up_without_a_turn_before_is_routed_alone(router: Router) -> None:
    assert router.route("and abroad?", [_answer("Hello, how can I help?")]).reason.startswith(
        "like "
    )


def test_a_rule_beats_the_conversation(router: Router) -> None:
    history = [_user("How many days of annual leave do new starters get?"), _answer()]
    assert router.route("I want a human", history).kind == "person"


def test_unsure_between_documents_and_direct_means_documents(onnx_embedder: Embedder) -> None:
    same = PROTOTYPES["direct"]
    tied = Router(onnx_embedder, {"documents": same, "direct": same})
    for message in ["What is the capital of Canada?", "How do I reverse a string in Python?"]:
        assert tied.route(message, []).kind == "documents"


def test_routes_are_deterministic_and_explained(router: Router) -> None:
    for message in ["What is photosynthesis?", "What is our dress code?"]:
        first = router.route(message, [])
        assert first == router.route(message, [])
        assert first.reason


@pytest.fixture(scope="module")
def cases() -> list[Any]:
    return list(routing_eval.load())


def test_the_labelled_set_is_mixed_and_holds_follow_ups(cases: list[Any]) -> None:
    assert len(cases) >= 80
    kinds = [c.kind for c in cases]
    assert {k: kinds.count(k) >= 10 for k in KIND_FLOORS} == dict.fromkeys(KIND_FLOORS, True)
    with_history = [c for c in cases if c.history]
    assert len({c.kind for c in with_history}) == 3
    assert len(with_history) >= 10


def test_no_prototype_is_a_labelled_message(cases: list[Any], onnx_embedder: Embedder) -> None:
    examples = [text for texts in PROTOTYPES.values() for text in texts]
    messages = [c.message for c in cases]
    assert not {m.lower() for m in messages} & {e.lower() for e in examples}
    closest = (onnx_embedder.embed(messages) @ onnx_embedder.embed(examples).T).max(axis=1)
    assert float(np.max(closest)) < 0.95, messages[int(np.argmax(closest))]


def test_the_router_meets_the_goal_on_the_labelled_set(router: Router, cases: list[Any]) -> None:
    results = routing_eval.evaluate(router, cases)
    misses = [(r.case.message, r.route) for r in results if not r.right]
    assert routing_eval.accuracy(results) >= GOAL, misses
    for kind, floor in KIND_FLOORS.items():
        assert routing_eval.accuracy(results, kind) >= floor, (kind, misses)
