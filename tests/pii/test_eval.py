"""The PII evaluation: the labelled set is what it should be, and the real redactor keeps the
recall and the false-positive rate measured on it (scripts/eval/pii.py prints the table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.config import PII_ENTITIES
from appliance.pii.redactor import Entity
from appliance.wiring import build_redactor
from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval" / "pii.py"
TYPES = [*PII_ENTITIES, "EMPLOYEE_ID"]
# Measured on tests/data/pii_eval.jsonl (280 sentences) with the default settings, then set a
# little lower, or at the goal (names >= 0.90, clean sentences flagged <= 1 in 10). Pattern
# recognizers find every label, e-mails at internal domains too; names are spaCy's and
# pii/names.py's (given names and surnames listed, cue words); the misses are names without a
# cue or list entry ("Put Lorenzo on"), lower-case ones ("tell ines"), a full name spaCy calls
# a place ("Ewa Zielińska"), and towns after an address ("London" after "221B Baker Street").
RECALL_FLOORS = {
    "PERSON": 0.9,  # measured 0.95 (94/99)
    "EMAIL_ADDRESS": 0.9,  # 1.00 (36/36), 24 of them at .corp, .internal, .lan, .local, .example
    "PHONE_NUMBER": 0.9,  # 1.00 (16/16)
    "CREDIT_CARD": 0.9,  # 1.00 (6/6)
    "IBAN_CODE": 0.9,  # 1.00 (9/9)
    "US_SSN": 0.9,  # 1.00 (6/6)
    "IP_ADDRESS": 0.9,  # 1.00 (7/7)
    "LOCATION": 0.8,  # 0.86 (25/29)
    "STREET_ADDRESS": 0.85,  # 1.00 (9/9) since "Terrace" and friends are street suffixes
    "DATE_TIME": 0.9,  # 1.00 (11/11)
    "EMPLOYEE_ID": 0.9,  # 1.00 (5/5)
}
OVERALL_FLOOR = 0.9  # measured 0.96 (224/233)
# Measured 7 of 97 (0.07): six by spaCy itself ("Q3", "Madam", "Jira Cloud", "Microsoft Teams"
# and "Windows 11" as people or places), one by the name list ("Price List": both are names).
CLEAN_FLAGGED_SHARE_CEILING = 0.1
UNMATCHED_CEILING = 8  # measured 6: "Bangalore" as a person, "Discover" as a place, ...


pii_eval = load_script(SCRIPT, "pii_eval")


@pytest.fixture(scope="module")
def cases() -> list[Any]:
    return list(pii_eval.load())


@pytest.fixture(scope="module")
def report(cases: list[Any]) -> Any:
    return pii_eval.evaluate(build_redactor(pii_eval.settings()), cases)


def test_data_set_covers_every_type_and_clean_text(cases: list[Any], report: Any) -> None:
    assert len(cases) >= 250
    assert report.clean >= 90
    for kind in TYPES:
        assert report.labelled[kind] >= 5, kind


@pytest.mark.parametrize("kind", TYPES)
def test_recall_per_type_stays_above_its_floor(report: Any, kind: str) -> None:
    missed = [(label.value, text) for label, text in report.missed if label.type == kind]
    assert report.recall(kind) >= RECALL_FLOORS[kind], missed


def test_overall_recall_stays_above_its_floor(report: Any) -> None:
    assert report.recall() >= OVERALL_FLOOR


def test_few_clean_sentences_are_flagged(report: Any) -> None:
    assert len(report.flagged) / report.clean <= CLEAN_FLAGGED_SHARE_CEILING, report.flagged


def test_few_predictions_match_no_label(report: Any) -> None:
    assert len(report.unmatched) <= UNMATCHED_CEILING, report.unmatched


class _Fixed:
    """A redactor that reports the same entities for every text."""

    def __init__(self, *entities: Entity) -> None:
        self.entities = list(entities)

    def analyze(self, text: str) -> list[Entity]:
        return self.entities


def test_an_address_reported_as_a_place_counts_and_a_wrong_type_does_not() -> None:
    text = "Ship it to 12 rue de la Paix, Paris, and call 555-0187."
    case = pii_eval.Case(text, [pii_eval.Label("STREET_ADDRESS", "12 rue de la Paix"),
                                pii_eval.Label("PHONE_NUMBER", "555-0187")])  # fmt: skip
    place = Entity("LOCATION", text.find("rue"), text.find("Paix") + 4, 0.8)
    date = Entity("DATE_TIME", text.find("555"), text.find("555") + 3, 0.8)
    report = pii_eval.evaluate(_Fixed(place, date), [case])
    assert report.found["STREET_ADDRESS"] == 1
    assert report.found["PHONE_NUMBER"] == 0
    assert report.unmatched == [("DATE_TIME", "555")]


def test_a_value_not_in_its_text_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "Call Anna.", "entities": [{"type": "PERSON", "value": "Ana"}]}\n')
    with pytest.raises(ValueError, match=r"case 1: PERSON value 'Ana' is not in its text"):
        pii_eval.load(data)
