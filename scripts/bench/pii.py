#!/usr/bin/env python3
"""PII redaction latency: the appliance's redactor against raw Presidio analyze + anonymize.

Seeded ~500-character chat messages and ~2,000-character document chunks, office prose mixed
with names, emails, phone numbers, an IBAN or card number, a street address and a date. The
appliance side is `build_redactor(default settings)`: analyze() then redact(). The raw side is
a plain AnalyzerEngine (same spaCy model, predefined recognizers, our STREET_ADDRESS patterns,
entity list, 0.4 threshold) then AnonymizerEngine `replace`. Models load and a warm-up pass
runs outside the timings. Each text runs on both sides back to back, which goes first
alternating text by text, a rest between passes: both see the same machine.

Prints, per size, p50 and p95 ms per text for each side over `--runs` passes and appliance/raw
(target <= 1.2x); and the entities each side found in one pass, in all and other than
DATE_TIME. The appliance keeps dates only with a digit and drops overlaps (spaCy tags digit
runs inside IBANs and phone numbers as dates), so it finds fewer dates; the other kinds should
be within a few (e.g. a LOCATION inside an address).

    .venv/bin/python scripts/bench/pii.py [--runs 5] [--texts 20] [--seed 1] [--gap 0.5]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import statistics
import sys
import time
from collections.abc import Callable

import msgspec
from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig
from tldextract import tldextract

from appliance.config import Settings
from appliance.pii.presidio import _ADDRESS_PATTERNS, SPACY_MODELS
from appliance.wiring import build_redactor

FIRST = ("Anna", "James", "Maria", "Thomas", "Sophie", "Daniel", "Laura", "Michael", "Emma",
         "Lukas", "Olivia", "Peter", "Claire", "Jonas", "Hannah", "Robert")  # fmt: skip
LAST = ("Schneider", "Walker", "Fischer", "Thompson", "Becker", "Morgan", "Wagner", "Collins",
        "Hoffmann", "Bennett", "Keller", "Harrison", "Richter", "Dawson")  # fmt: skip
STREETS = ("Baker Street", "Maple Avenue", "Station Road", "Queens Boulevard", "Mill Lane",
           "Oak Drive", "Kingsway Court", "Hauptstraße", "Lindenweg", "Marktplatz")  # fmt: skip
CITIES = ("London", "Berlin", "Manchester", "Munich", "Boston", "Hamburg", "Leeds", "Chicago")
PII = (("{name} ({email}, {phone}) is the contact for the audit.",  # one line of each kind
        "Please send the signed copy to {name} at {email} by {date}, or call {first} on {phone}."),
       ("The refund goes to IBAN {iban}, account holder {name}.",
        "The card {card} was charged twice for the {city} conference on {date}."),
       ("Our new office is at {address}, {city}; visitors sign in at reception.",
        "Ship the replacement laptop to {name}, {address}, {city}."))  # fmt: skip
PROSE = ("Thanks for the quick turnaround on the quarterly report.",
         "The budget review moved to next week because finance is still closing the month.",
         "Remember that travel requests need approval before anything is booked.",
         "The onboarding checklist on the shared drive was updated with the new access rules.",
         "We agreed to keep the weekly meeting short and to share notes afterwards.",
         "Facilities will replace the printer on the second floor once the order arrives.",
         "The vendor contract renews automatically unless we give notice in writing.",
         "Please keep the incident log up to date so the on-call engineer can follow along.",
         "Expense reports without receipts will be sent back to the submitter.",
         "The training plan for the new starters is attached for review.",
         "Security asks everyone to lock their screen when leaving the desk.",
         "Let me know if the draft needs more detail before it goes to the board.",
         "The cloud migration is on track, although two legacy reports still need rewriting.",
         "Customer satisfaction scores went up slightly after the support hours were extended.",
         "Please book the large meeting room for the planning workshop in advance.",
         "IT will roll out the operating system update over the weekend in small batches.",
         "The works council asked for the draft policy on remote work before it is published.",
         "Our supplier confirmed the delivery but not the exact time slot yet.")  # fmt: skip
SIZES = (("chat message", 500, 1), ("document chunk", 2000, 2))  # label, chars, lines/kind
Work = Callable[[str], list[str]]  # redacts a text, returns the types of the entities found
Times = dict[str, list[float]]  # milliseconds per text, by side


def luhn(digits: str) -> str:
    total = sum(d if i % 2 else (2 * d - 9 if d > 4 else 2 * d)
                for i, d in enumerate(int(c) for c in reversed(digits)))  # fmt: skip
    return digits + str(-total % 10)


def iban(rng: random.Random) -> str:
    country, bban = rng.choice((("DE", f"{rng.randrange(10**17, 10**18)}"),
                                ("GB", f"NWBK{rng.randrange(10**13, 10**14)}")))  # fmt: skip
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    code = f"{country}{98 - number % 97:02d}{bban}"
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def fields(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    street = rng.choice(STREETS)
    number = rng.randint(1, 240)
    return {"first": first, "name": f"{first} {last}", "city": rng.choice(CITIES),
            "email": f"{first}.{last}@{rng.choice(('acme', 'northwind', 'globex'))}.com".lower(),
            "phone": rng.choice((f"+44 20 7946 {rng.randrange(1000, 9999)}",
                                 f"(212) 555-{rng.randrange(1000, 9999)}")),
            "address": f"{street} {number}" if street[0] in "HLM" else f"{number} {street}",
            "date": f"{rng.randint(1, 28)} {rng.choice(('March', 'June', 'October'))} 2025",
            "iban": iban(rng), "card": luhn(f"4{rng.randrange(10**13, 10**14)}")}  # fmt: skip


def text(rng: random.Random, size: int, per_kind: int) -> str:
    """Contact, payment and address sentences among prose, up to about `size` characters."""
    lines = [line.format(**fields(rng)) for kind in PII for line in rng.sample(kind, per_kind)]
    prose = list(PROSE) * 2
    rng.shuffle(prose)
    for line in prose:
        if len(" ".join(lines)) + len(line) < size:
            lines.insert(rng.randrange(len(lines) + 1), line)
    return " ".join(lines)


def appliance_side(settings: Settings) -> Work:
    redactor = build_redactor(settings)

    def work(t: str) -> list[str]:
        entities = redactor.analyze(t)
        redactor.redact(t, entities)
        return [e.type for e in entities]

    return work


def raw_side(settings: Settings) -> Work:
    pii = settings.pii
    # As the appliance does: tldextract's default extractor would fetch the suffix list online.
    tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    config = {"nlp_engine_name": "spacy",
              "models": [{"lang_code": "en", "model_name": SPACY_MODELS["en"]}]}  # fmt: skip
    nlp = NlpEngineProvider(nlp_configuration=config).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp, languages=["en"])
    registry.add_recognizer(PatternRecognizer(
        supported_entity="STREET_ADDRESS", supported_language="en",
        patterns=[Pattern("street address", p, 0.9) for p in _ADDRESS_PATTERNS]))  # fmt: skip
    analyzer = AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])
    anonymizer = AnonymizerEngine()
    operators = {"DEFAULT": OperatorConfig("replace")}

    def work(t: str) -> list[str]:
        results = analyzer.analyze(t, language="en", entities=list(pii.entities),
                                   score_threshold=pii.threshold)  # fmt: skip
        anonymizer.anonymize(t, results, operators)
        return [r.entity_type for r in results]

    return work


def measure(sides: dict[str, Work], texts: list[str], args: argparse.Namespace) -> Times:
    """Each text runs on both sides back to back, the first side alternating text by text."""
    for work in sides.values():
        for t in texts:  # warm up
            work(t)
    times: Times = {name: [] for name in sides}
    for run in range(args.runs):
        time.sleep(args.gap)
        for i, t in enumerate(texts):
            for name in list(sides)[:: 1 if (run + i) % 2 == 0 else -1]:
                started = time.perf_counter()
                sides[name](t)
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed passes over the texts (5)")
    parser.add_argument("--texts", type=int, default=20, help="distinct texts per size (20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated texts (1)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds of rest between passes")
    args = parser.parse_args()
    settings = msgspec.convert({}, Settings)
    sides = {"appliance": appliance_side(settings), "raw presidio": raw_side(settings)}
    rng = random.Random(args.seed)  # noqa: S311 - test data, not a secret
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f};"
          f" {SPACY_MODELS['en']}, entities {','.join(settings.pii.entities)}")  # fmt: skip
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()]
    print(f"command: {shlex.join([os.path.relpath(sys.executable), sys.argv[0], *flags])}")
    print(f"\n{'':<16}{'chars':>6}{'side':>14}{'p50 ms':>9}{'p95 ms':>9}{'entities':>10}"
          f"{'not dates':>11}")  # fmt: skip
    for label, size, per_kind in SIZES:
        texts = [text(rng, size, per_kind) for _ in range(args.texts)]
        chars = round(statistics.mean(map(len, texts)))
        times = measure(sides, texts, args)
        stats: dict[str, tuple[float, float]] = {}
        for name, work in sides.items():
            stats[name] = statistics.median(times[name]), p95(times[name])
            found = [kind for t in texts for kind in work(t)]
            print(f"{label:<16}{chars:>6}{name:>14}{stats[name][0]:9.2f}{stats[name][1]:9.2f}"
                  f"{len(found):>10}{len(found) - found.count('DATE_TIME'):>11}")  # fmt: skip
        ours, raw = stats["appliance"], stats["raw presidio"]
        print(f"{'':<16}{'':>6}{'ratio':>14}{ours[0] / raw[0]:8.3f}x{ours[1] / raw[1]:8.3f}x"
              "   (target <= 1.2x)")  # fmt: skip
    print(f"\n{args.runs} passes x {args.texts} texts per size; entities: one pass, summed")


if __name__ == "__main__":
    main()
