"""The appliance's Prometheus metrics: one registry per app, no global state.

Names are `appliance_*` and follow Prometheus' rules (base units, `_total` on counters,
`_seconds` on durations). Labels are few and bounded: route templates, never paths, user names
or file names. What the app counts as it happens (requests, tokens, answers, personal data)
is recorded through the methods here; what is a state (the engine's queue, the catalog's
files by status, the process' memory) is read when scraped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance import __version__
from appliance.llm.types import EngineInfo

CONTENT_TYPE = CONTENT_TYPE_LATEST
# An answer, by where it came from: the documents; the model alone (a task, general
# knowledge, or no document to search); declined (the documents don't cover it); a person.
AnswerKind = Literal["grounded", "general", "declined", "person"]
_ANSWER_KINDS: Mapping[str, AnswerKind] = {
    "documents": "grounded", "general": "general", "direct": "general", "plain": "general",
    "abstained": "declined", "person": "person",
}  # fmt: skip
# Latencies of a token: from a few ms (a token on a GPU) to seconds (a queue, a long prompt).
_TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 20, 30, 60)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_RETRIEVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The metrics of one app; `render()` is the body of `GET /metrics`."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(namespace="appliance", registry=r)  # memory, CPU, open files
        Gauge("appliance_build_info", "The appliance's version (the value is 1).", ["version"],
              registry=r).labels(__version__).set(1)  # fmt: skip
        self.http_requests = Counter(
            "appliance_http_requests", "HTTP requests answered, by route template and status.",
            ["method", "route", "status"], registry=r)  # fmt: skip
        self.http_duration = Histogram(
            "appliance_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (a stream's included).",
            ["method", "route"], buckets=_REQUEST_BUCKETS, registry=r)  # fmt: skip
        self.prompt_tokens = Counter(
            "appliance_prompt_tokens", "Prompt tokens of finished generations.", registry=r
        )
        self.cached_tokens = Counter(
            "appliance_prompt_cached_tokens",
            "Prompt tokens taken from the prefix cache rather than evaluated.",
            registry=r,
        )
        self.generated_tokens = Counter(
            "appliance_generated_tokens", "Tokens generated.", registry=r)  # fmt: skip
        self.generations = Counter(
            "appliance_generations", "Generations ended, by finish reason "
            "(stop, length, cancelled, error).", ["reason"], registry=r)  # fmt: skip
        self.first_token = Histogram(
            "appliance_time_to_first_token_seconds",
            "From a generation's submission (queueing included) to its first token.",
            buckets=_FIRST_TOKEN_BUCKETS, registry=r)  # fmt: skip
        self.inter_token = Histogram(
            "appliance_inter_token_latency_seconds",
            "Between one piece of a streamed answer and the next.",
            buckets=_TOKEN_BUCKETS, registry=r)  # fmt: skip
        self.prefix_cache = Counter(
            "appliance_prefix_cache_lookups",
            "Generations by whether a cached prompt prefix served them (hit or miss).",
            ["result"], registry=r)  # fmt: skip
        self.retrieval = Histogram(
            "appliance_retrieval_duration_seconds",
            "A hybrid search: embedding the query, vectors, keywords and fusion.",
            buckets=_RETRIEVAL_BUCKETS, registry=r)  # fmt: skip
        self.answers = Counter(
            "appliance_answers", "Answers by where they came from: grounded (the documents), "
            "general (the model alone), declined (not covered), person (asked for one).",
            ["kind"], registry=r)  # fmt: skip
        self.handoffs = Counter(
            "appliance_handoffs", "Questions handed to people, by step "
            "(asked, claimed, answered, closed, saved).", ["step"], registry=r)  # fmt: skip
        self.ingested = Counter(
            "appliance_ingest_files", "Files the ingest pipeline handled, by outcome "
            "(indexed, unchanged, failed, removed).", ["outcome"], registry=r)  # fmt: skip
        self.chunks_embedded = Counter(
            "appliance_chunks_embedded", "Document chunks embedded.", registry=r
        )
        self.embed_seconds = Counter(
            "appliance_embed_seconds", "Time spent embedding document chunks; chunks embedded "
            "over it is the embedding throughput.", registry=r)  # fmt: skip
        self.personal_data = Counter(
            "appliance_personal_data_found", "Personal data found by the redactor, by type, "
            "in users' messages (prompt) and in documents (document).", ["source", "type"],
            registry=r)  # fmt: skip
        self.sign_ins_failed = Counter(
            "appliance_sign_ins_failed", "Sign-ins refused (wrong name or password, or braked).",
            registry=r)  # fmt: skip

    # ---- recorded as it happens --------------------------------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"  # a client may send any word
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    def answer(self, kind: str) -> None:
        """`kind`: a Grounded kind (documents, general, direct, plain, abstained, person)."""
        self.answers.labels(_ANSWER_KINDS.get(kind, "general")).inc()

    def generation(self, reason: str, prompt: int, cached: int, generated: int) -> None:
        self.generations.labels(reason).inc()
        self.prompt_tokens.inc(prompt)
        self.cached_tokens.inc(cached)
        self.generated_tokens.inc(generated)
        self.prefix_cache.labels("hit" if cached else "miss").inc()

    def embedded(self, chunks: int, seconds: float) -> None:
        self.chunks_embedded.inc(chunks)
        self.embed_seconds.inc(seconds)

    def found(self, source: str, types: Iterable[str]) -> None:
        for kind in types:
            self.personal_data.labels(source, kind).inc()

    def timed(self, histogram: Histogram) -> _Timer:
        return _Timer(histogram)

    # ---- read when scraped -------------------------------------------------------------

    def watch_engine(self, info: Callable[[], EngineInfo]) -> None:
        self.registry.register(_EngineCollector(info))

    def watch_files(self, counts: Callable[[], Mapping[str, int]]) -> None:
        """`counts`: the catalog's files by status (indexed, failed, pending...)."""
        self.registry.register(_GaugeCollector(
            "appliance_documents", "Files in the document catalog, by status.", "status",
            counts))  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Timer:
    def __init__(self, histogram: Histogram) -> None:
        self._histogram = histogram
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self._histogram.observe(time.perf_counter() - self._start)


class _EngineCollector(Collector):
    def __init__(self, info: Callable[[], EngineInfo]) -> None:
        self._info = info

    def collect(self) -> Iterator[Metric]:
        info = self._info()
        gauges = (
            ("appliance_engine_queue_length", "Requests waiting for a slot.", info.queued),
            ("appliance_engine_slots", "Sequences decoded together (llm.parallel).", info.slots),
            ("appliance_engine_slots_busy", "Slots generating now.", info.slots_busy),
            ("appliance_engine_ready", "1 once the model is loaded.", int(info.ready)),
            ("appliance_prefix_cache_entries", "Conversations' prompt states kept in RAM.",
             info.cache_entries),
            ("appliance_prefix_cache_bytes", "RAM those prompt states take.", info.cache_bytes),
            ("appliance_engine_gpu_layers", "Layers offloaded to a GPU.", info.gpu_layers),
        )  # fmt: skip
        for name, doc, value in gauges:
            yield GaugeMetricFamily(name, doc, value=value)
        model = GaugeMetricFamily("appliance_model_info", "The served model (the value is 1).",
                                  labels=["model"])  # fmt: skip
        model.add_metric([info.model], 1)
        yield model

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at each scrape: nothing to check at registration


class _GaugeCollector(Collector):
    def __init__(self, name: str, doc: str, label: str,
                 values: Callable[[], Mapping[str, int]]) -> None:  # fmt: skip
        self._name, self._doc, self._label, self._values = name, doc, label, values

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self._name, self._doc, labels=[self._label])
        for value, count in sorted(self._values().items()):
            family.add_metric([value], count)
        yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())
