"""The composition root: builds the real engine, stores and services from Settings."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from appliance.accounts.directory import Directory, SingleSignOn
from appliance.accounts.limits import ChatLimits, SignInBrake
from appliance.accounts.service import Accounts
from appliance.accounts.sync import DirectorySync
from appliance.chat.answering import Answering
from appliance.chat.conversations import Conversations
from appliance.chat.handoff import Handoffs
from appliance.chat.notify import Notifier
from appliance.chat.route import Router
from appliance.config import Settings
from appliance.embed.embedder import Embedder
from appliance.errors import ApplianceError
from appliance.ingest.access import AccessRules
from appliance.ingest.chunk import Chunker
from appliance.ingest.library import DocumentLibrary
from appliance.ingest.pipeline import IngestPipeline
from appliance.ingest.sandbox import Sandbox
from appliance.ingest.types import Limits
from appliance.ingest.watch import FolderWatcher
from appliance.llm.batched import BatchedEngine
from appliance.llm.engine import Engine
from appliance.llm.switch import ModelSwitch
from appliance.ops.metered import MeteredEngine
from appliance.ops.metrics import Metrics
from appliance.ops.models import Models, first_model
from appliance.pii.policy import Policy, Privacy
from appliance.pii.redactor import Redactor
from appliance.pii.service import Redaction
from appliance.rag.answer import Grounding
from appliance.rag.retrieve import Retriever
from appliance.rag.search import DocumentSearch
from appliance.services import Services
from appliance.store.audit import AuditLog
from appliance.store.catalog import Catalog
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database
from appliance.store.feedback import FeedbackStore
from appliance.store.handoffs import HandoffStore
from appliance.store.keywords import KeywordIndex
from appliance.store.lock import IndexLock
from appliance.store.settings import SettingStore
from appliance.store.users import UserStore

log = logging.getLogger(__name__)


def build_services(settings: Settings) -> Services:
    """Check the model file, open the stores and the index; the LLM itself loads on start-up."""
    db = Database(settings.data_path / "appliance.db")
    choices = SettingStore(db)
    first = first_model(settings.llm, choices)  # the Models page's choice, else llm.model's
    model = first.info
    assert model is not None  # noqa: S101 - a model that can be served has a header
    log.info("model %s: %s %s, %s parameters, context %d", model.path, model.architecture,
             model.quantization, f"{model.parameters:,}", model.context_length)  # fmt: skip
    metrics = Metrics()  # this app's registry: no global state
    switch = ModelSwitch(first, lambda m: BatchedEngine(Path(m.path), m.id, settings.llm))
    engine = MeteredEngine(switch, metrics)
    lock = IndexLock(settings.data_path / "index.lock")
    users = UserStore(db)  # the accounts' names are names the redactor always finds
    privacy = build_privacy(settings, build_redactor(
        settings, known_names=users.names), metrics)  # fmt: skip
    pipeline = build_pipeline(settings, db, yield_cpu=_yield_to(engine), privacy=privacy,
                              metrics=metrics)  # fmt: skip
    watcher = FolderWatcher(pipeline, settings.documents.settle_ms / 1000,
                            watch=settings.documents.watch)  # fmt: skip
    catalog = Catalog(db)
    metrics.watch_files(catalog.counts)
    library = DocumentLibrary(catalog, str(settings.watch_path),
                              indexing=lambda: not watcher.idle.is_set())  # fmt: skip
    rag = settings.rag
    retriever = Retriever(pipeline.embedder, pipeline.index, KeywordIndex(db), catalog,
                          candidates=rag.candidates, vector_weight=rag.vector_weight,
                          keyword_weight=rag.keyword_weight,
                          min_similarity=rag.min_similarity, metrics=metrics)  # fmt: skip
    grounding = Grounding(retriever, rag, engine.count_tokens, engine.context_size)
    audit = AuditLog(db, privacy.stored, settings.audit.address_days)
    conversations = Conversations(ConversationStore(db), privacy, FeedbackStore(db), audit,
                                  chunks=catalog.chunks)  # fmt: skip
    chat = Answering(engine, conversations, _limits(settings, "chat", "answers"),
                     settings.limits.max_message_chars, grounding, audit,
                     Router(pipeline.embedder), metrics)  # fmt: skip
    notifier = Notifier()
    handoffs = Handoffs(HandoffStore(db), conversations, users, settings.handoff,
                        settings.watch_path, notifier, audit, metrics)  # fmt: skip
    retention = Retention(conversations, settings.retention_days, audit)
    limits = settings.limits
    search = DocumentSearch(retriever, _limits(settings, "search", "searches"),
                            limits.search_max_collections)  # fmt: skip
    redaction = Redaction(privacy.redactor, _limits(settings, "redaction", "redactions"),
                          limits.redact_max_chars)  # fmt: skip
    directory = build_directory(settings)
    accounts = build_accounts(db, audit, metrics, directory, settings.auth.local)
    every_s = settings.auth.ldap.refresh_minutes * 60
    refresh = DirectorySync(accounts, directory, every_s, audit) if directory else None
    return Services(
        chat=chat,
        conversations=conversations,
        handoffs=handoffs,
        notifier=notifier,
        engine=engine,
        documents=library,
        accounts=accounts,
        sso=build_sso(settings),
        local_sign_in=settings.auth.local,
        audit=audit,
        secure_cookies=settings.web.over_tls,
        link_hosts=tuple(settings.web.link_hosts),
        retriever=retriever,
        search=search,
        redaction=redaction,
        models=Models(switch, settings.llm, choices, audit),
        metrics=metrics,
        on_startup=(switch.start, watcher.start, retention.start,
                    *((refresh.start,) if refresh else ())),
        on_shutdown=(*((refresh.stop,) if refresh else ()), retention.stop, watcher.stop,
                     switch.stop, lock.release, db.close),
    )


def build_accounts(db: Database, audit: AuditLog, metrics: Metrics | None = None,
                   directory: Directory | None = None, local: bool = True) -> Accounts:  # fmt: skip
    """Accounts whose sign-in brake knows, from the start, where each account signed in from
    lately (the audit log's addresses): a restart does not brake the admin like a stranger."""
    brake = SignInBrake(known=audit.signed_in_from())
    return Accounts(UserStore(db), brake, metrics, directory, local)


def build_directory(settings: Settings) -> Directory | None:
    """The LDAP directory when auth.ldap.url is set (its settings checked now, nothing
    connected until the first sign-in)."""
    if not settings.auth.ldap.url:
        return None
    from appliance.accounts.ldap import LdapDirectory

    return LdapDirectory(settings.auth.ldap)


def build_sso(settings: Settings) -> SingleSignOn | None:
    """OIDC sign-in when auth.oidc.issuer is set (checked now; the provider is first asked
    when someone signs in)."""
    if not settings.auth.oidc.issuer:
        return None
    from appliance.accounts.oidc import OidcSignIn

    return OidcSignIn(settings.auth.oidc)


def _limits(settings: Settings, kind: str, running: str) -> ChatLimits:
    """The chat limits per user, for one kind of request: a counter of its own."""
    return ChatLimits(settings.limits.chat_per_minute, settings.limits.concurrent_streams, kind,
                      running)  # fmt: skip


class Retention:
    """Deletes conversations past `retention_days` and the audit log's client addresses past
    `audit.address_days`, at start and then hourly, on a thread."""

    def __init__(self, conversations: Conversations, days: int, audit: AuditLog) -> None:
        self._conversations, self._days, self._audit = conversations, days, audit
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._days and (gone := self._conversations.purge(self._days)):
                    log.info("retention: %d conversations older than %d days deleted", gone,
                             self._days)  # fmt: skip
                self._audit.purge_addresses()
            except Exception:
                log.exception("retention: the purge failed; it is tried again in an hour")
            self._stop.wait(3600)


def build_embedder(settings: Settings) -> Embedder:
    from appliance.embed.models import read_model_card, resolve_model_dir

    card = read_model_card(resolve_model_dir(settings.embed.model))
    embed = settings.embed
    if embed.backend == "sentence-transformers":
        from appliance.embed.sbert import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(card, embed.threads, embed.batch_size)
    from appliance.embed.export import onnx_file
    from appliance.embed.onnx import OnnxEmbedder

    path = onnx_file(card.path, settings.embed_cache_path, embed.quantize)
    return OnnxEmbedder(card, path, embed.threads, embed.batch_size)


def build_pipeline(settings: Settings, db: Database, yield_cpu: Callable[[], None] = lambda: None,
                   privacy: Privacy | None = None,
                   metrics: Metrics | None = None) -> IngestPipeline:  # fmt: skip
    """The index of the watched folder; the caller holds the IndexLock."""
    from appliance.store.chroma import ChromaIndex

    docs = settings.documents
    sandbox = Sandbox(docs.extract_memory_mb, docs.extract_timeout_s)
    sandbox.start()  # the parsers' imports, in the child, overlap the model's loading
    embedder = build_embedder(settings)
    limit = embedder.max_tokens - 2  # the model adds a start and an end token
    if docs.chunk_tokens > limit:
        raise ApplianceError(f"setting documents.chunk_tokens: {docs.chunk_tokens} is over the "
                             f"embedding model's limit of {limit} tokens; lower it")  # fmt: skip
    if docs.chunk_overlap >= docs.chunk_tokens:
        raise ApplianceError("setting documents.chunk_overlap: must be less than chunk_tokens")
    index = ChromaIndex(settings.data_path / "chroma", embedder.name)
    for name in index.drop_others():
        log.info("dropped the vectors of a former embedding model (%s)", name)
    root = settings.watch_path
    if settings.data_path.is_relative_to(root):
        raise ApplianceError(f"setting documents.watch_dir: {root} holds data_dir "
                             f"({settings.data_path}); the index would index itself. Use "
                             "a folder beside it")  # fmt: skip
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ApplianceError(f"cannot create the watched folder {root}: {exc.strerror}; "
                             "create it, or set documents.watch_dir") from None  # fmt: skip
    log.info("documents: watching %s; embeddings %s", root, embedder.name)
    return IngestPipeline(
        root, Catalog(db), index, embedder,
        Chunker(embedder.token_spans, docs.chunk_tokens, docs.chunk_overlap),
        max_file_bytes=docs.max_file_mb * 2**20,
        limits=Limits(max_unpacked_bytes=docs.max_unpacked_mb * 2**20),
        yield_cpu=yield_cpu,
        sandbox=sandbox,
        metrics=metrics,
        access=AccessRules(root, docs.access),
        redact=(privacy or build_privacy(settings)).document_text
        if settings.pii.documents == "redact" else None,
    )  # fmt: skip


def build_redactor(
    settings: Settings, known_names: Callable[[], Iterable[str]] | None = None
) -> Redactor:
    """`known_names`: the accounts' names, which always count as names of people."""
    from appliance.pii.presidio import CustomPattern, PresidioRedactor

    pii = settings.pii
    custom = []
    for n, item in enumerate(pii.custom):
        if not re.fullmatch(r"[A-Z][A-Z_]*[A-Z]", item.name):
            raise ApplianceError(f"setting pii.custom[{n}].name: {item.name!r} must be capital "
                                 "letters and underscores, e.g. EMPLOYEE_ID (it becomes the "
                                 "placeholder <EMPLOYEE_ID_1>)")  # fmt: skip
        try:
            re.compile(item.pattern)
        except re.error as exc:
            raise ApplianceError(f"setting pii.custom[{n}].pattern: {exc}; fix the regular "
                                 "expression") from None  # fmt: skip
        custom.append(CustomPattern(item.name, item.pattern, item.score))
    return PresidioRedactor(pii.language, pii.threshold, pii.entities, custom,
                            known_names=known_names)  # fmt: skip


def build_privacy(settings: Settings, redactor: Redactor | None = None,
                  metrics: Metrics | None = None) -> Privacy:  # fmt: skip
    pii = settings.pii
    return Privacy(redactor or build_redactor(settings),
                   Policy(prompts=pii.prompts, documents=pii.documents, output=pii.output),
                   [*pii.entities, *(c.name for c in pii.custom)], metrics)  # fmt: skip


def _yield_to(engine: Engine, longest_s: float = 10.0) -> Callable[[], None]:
    """Ingestion waits while a chat is generating (one core can't do both at full speed), but
    never longer than `longest_s` at a time, so steady chat traffic can't starve it."""

    def wait() -> None:
        deadline = time.monotonic() + longest_s
        while time.monotonic() < deadline:
            info = engine.info()
            if not info.busy and info.pending == 0:
                return
            time.sleep(0.05)

    return wait
