"""What the web layer is given: the use cases, built by wiring.py, and their life cycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.accounts.directory import SingleSignOn
from appliance.accounts.service import Accounts
from appliance.chat.answering import Answering
from appliance.chat.conversations import Conversations
from appliance.chat.handoff import Handoffs
from appliance.chat.notify import Notifier
from appliance.ingest.library import DocumentLibrary
from appliance.llm.engine import Engine
from appliance.ops.metrics import Metrics
from appliance.ops.models import Models
from appliance.pii.service import Redaction
from appliance.rag.retrieve import Retriever
from appliance.rag.search import DocumentSearch
from appliance.store.audit import AuditLog


@dataclass(frozen=True)
class Services:
    chat: Answering  # the page's answers and the OpenAI API's: one path
    conversations: Conversations
    handoffs: Handoffs  # questions handed to people
    notifier: Notifier  # what the page's event stream tells each user
    engine: Engine
    documents: DocumentLibrary
    accounts: Accounts
    audit: AuditLog
    retriever: Retriever
    search: DocumentSearch  # the retriever on a user's behalf: caps and per-user limits
    redaction: Redaction  # /api/redact: its cap and per-user limits
    models: Models  # the Models page: the models on offer, which one is served, switching
    metrics: Metrics = field(default_factory=Metrics)  # the app's own registry: /metrics
    sso: SingleSignOn | None = None  # auth.oidc: the "Sign in with …" button
    local_sign_in: bool = True  # auth.local
    secure_cookies: bool = False
    link_hosts: tuple[str, ...] = ()  # web.link_hosts: where links in answers may point
    on_startup: tuple[Callable[[], None], ...] = field(default=())
    on_shutdown: tuple[Callable[[], None], ...] = field(default=())
