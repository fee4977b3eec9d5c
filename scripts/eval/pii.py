#!/usr/bin/env python3
"""PII detection quality: how much of a hand-labelled set the real redactor finds.

Runs the redactor the appliance builds from default settings (plus one custom recognizer,
EMPLOYEE_ID) over `tests/data/pii_eval.jsonl`: chat messages and document sentences, each
labelled with the exact text of its entities, and about a quarter of them with none.
The names of the appliance's accounts (the redactor's `known_names`) play no part: no
directory is passed, so the figures are those of text about anybody.
A predicted entity matches a label when the types are equal and the spans overlap; LOCATION and
STREET_ADDRESS count as one type (an address reported partly as a place is still found).

How to read it:
- recall per labelled type: the share of labels some prediction matched (what escapes redaction
  is the rest; `-v` lists it);
- unmatched: predictions in sentences with PII that match no label (over-redaction or the wrong
  type, e.g. a phone number taken for a date; `-v` lists them);
- clean sentences flagged: sentences without PII where something was predicted anyway, with what
  (these get words replaced by placeholders for no reason).

    .venv/bin/python scripts/eval/pii.py [--data tests/data/pii_eval.jsonl] [-v]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections import Counter
from pathlib import Path

import msgspec

from appliance.config import Settings
from appliance.pii.redactor import Entity, Redactor
from appliance.wiring import build_redactor

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "pii_eval.jsonl"
EMPLOYEE_ID = {"name": "EMPLOYEE_ID", "pattern": r"\bEMP-\d{6}\b", "score": 0.9}
# Types that match each other: where a street ends and its town begins is not worth a miss.
_KIND = {"STREET_ADDRESS": "LOCATION"}


class Label(msgspec.Struct, frozen=True):
    type: str
    value: str  # the exact text in the sentence


class Case(msgspec.Struct, frozen=True):
    text: str
    entities: list[Label]


class Report(msgspec.Struct):
    labelled: Counter[str] = msgspec.field(default_factory=Counter)
    found: Counter[str] = msgspec.field(default_factory=Counter)
    missed: list[tuple[Label, str]] = msgspec.field(default_factory=list)  # label, sentence
    unmatched: list[tuple[str, str]] = msgspec.field(default_factory=list)  # type, text
    clean: int = 0  # sentences labelled without PII
    flagged: list[tuple[str, list[tuple[str, str]]]] = msgspec.field(default_factory=list)

    def recall(self, kind: str | None = None) -> float:
        labelled = self.labelled[kind] if kind else self.labelled.total()
        return (self.found[kind] if kind else self.found.total()) / max(labelled, 1)


def settings() -> Settings:
    """Default settings plus the EMPLOYEE_ID recognizer the data set is labelled with."""
    return msgspec.convert({"pii": {"custom": [EMPLOYEE_ID]}}, Settings)


def load(path: Path | str = DATA) -> list[Case]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    cases = [msgspec.json.decode(line, type=Case) for line in lines if line.strip()]
    for n, case in enumerate(cases, 1):
        for label in case.entities:
            if label.value not in case.text:
                raise ValueError(f"{path}, case {n}: {label.type} value {label.value!r} is not "
                                 f"in its text {case.text!r}; fix the label")  # fmt: skip
    return cases


def _span(text: str, label: Label) -> tuple[str, int, int]:
    start = text.find(label.value)  # the first occurrence: a value is labelled once
    return label.type, start, start + len(label.value)


def _matches(label: tuple[str, int, int], entity: Entity) -> bool:
    kind, start, end = label
    same = _KIND.get(kind, kind) == _KIND.get(entity.type, entity.type)
    return same and entity.start < end and start < entity.end


def evaluate(redactor: Redactor, cases: list[Case]) -> Report:
    report = Report()
    for case in cases:
        predicted = redactor.analyze(case.text)
        named = [(e.type, case.text[e.start : e.end]) for e in predicted]
        if not case.entities:
            report.clean += 1
            if predicted:
                report.flagged.append((case.text, named))
            continue
        spans = [_span(case.text, label) for label in case.entities]
        for label, span in zip(case.entities, spans, strict=True):
            hit = any(_matches(span, e) for e in predicted)
            report.labelled[label.type] += 1
            report.found[label.type] += hit
            if not hit:
                report.missed.append((label, case.text))
        report.unmatched += [n for e, n in zip(predicted, named, strict=True)
                             if not any(_matches(span, e) for span in spans)]  # fmt: skip
    return report


def show(report: Report, cases: list[Case], verbose: bool) -> None:
    print(f"{'type':<16}{'labelled':>9}{'found':>7}{'recall':>8}")
    for kind in sorted(report.labelled):
        print(f"{kind:<16}{report.labelled[kind]:9d}{report.found[kind]:7d}"
              f"{report.recall(kind):8.2f}")  # fmt: skip
    print(f"{'all':<16}{report.labelled.total():9d}{report.found.total():7d}"
          f"{report.recall():8.2f}")  # fmt: skip
    print(f"\n{len(cases)} sentences; unmatched predictions in sentences with PII: "
          f"{len(report.unmatched)}")  # fmt: skip
    for kind, text in report.unmatched if verbose else ():
        print(f"  {kind}: {text!r}")
    for label, text in report.missed if verbose else ():
        print(f"  missed {label.type} {label.value!r} in {text!r}")
    print(f"clean sentences flagged: {len(report.flagged)} of {report.clean}")
    for text, named in report.flagged:
        print(f"  {text!r}: " + ", ".join(f"{kind} {value!r}" for kind, value in named))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.path.relpath(DATA),
                        help="labelled JSON lines (default: %(default)s)")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list unmatched predictions and missed labels")  # fmt: skip
    args = parser.parse_args()
    cases = load(args.data)
    report = evaluate(build_redactor(settings()), cases)
    flags = [f"--data={args.data}", *(["-v"] if args.verbose else [])]
    print(f"command: {shlex.join([os.path.relpath(sys.executable), sys.argv[0], *flags])}\n")
    show(report, cases, args.verbose)


if __name__ == "__main__":
    main()
