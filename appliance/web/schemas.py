"""Request and response bodies of the HTTP API (msgspec), and their mapping to use-case types."""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from msgspec import Meta

from appliance.chat.handoff import Turn
from appliance.config import LlmSettings
from appliance.errors import InvalidRequest
from appliance.llm.types import ChatMessage, SamplingParams
from appliance.rag.answer import Citation
from appliance.store.conversations import Message
from appliance.store.handoffs import Handoff

Temperature = Annotated[float, Meta(ge=0, le=2)]
TopP = Annotated[float, Meta(gt=0, le=1)]
MaxTokens = Annotated[int, Meta(ge=1)]
Stop = str | Annotated[list[str], Meta(max_length=4)]
# Top-level subfolders of the watched folder the answer may draw on; empty: all of them.
Collections = Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=50)]


class Sampling(msgspec.Struct, kw_only=True):
    """Per-request sampling; anything left out takes the `[llm]` settings."""

    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    stop: Stop | None = None
    seed: Annotated[int, Meta(ge=0, lt=2**32 - 1)] | None = None

    def params(self, defaults: LlmSettings, max_tokens: int | None = None) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
            max_tokens=max_tokens or self.max_tokens or defaults.max_tokens,
            stop=stop,
            seed=self.seed,
        )


# ---- OpenAI-compatible API --------------------------------------------------------------


# What the schema promises beyond msgspec's checks; the handlers refuse the rest themselves,
# with messages that say what to send instead (a 400 naming the field).
_TEXT_ONLY = Meta(extra_json_schema={"enum": ["text"]})
_ROLES = Meta(extra_json_schema={"enum": ["system", "developer", "user", "assistant"]})
_NOT_BLANK = Meta(extra_json_schema={"minLength": 1, "pattern": r"\S"})


class ContentPart(msgspec.Struct):
    type: Annotated[str, _TEXT_ONLY]
    text: str | None = None


class OpenAIMessage(msgspec.Struct):
    role: Annotated[str, _ROLES]
    content: str | list[ContentPart] | None = None

    def to_chat(self, index: int) -> ChatMessage:
        role = "system" if self.role == "developer" else self.role
        if role not in ("system", "user", "assistant"):
            raise InvalidRequest(
                f"messages[{index}].role {self.role!r} is not supported; "
                "use system, user or assistant",
                param=f"messages[{index}].role",
            )
        return ChatMessage(role, self._text(index))  # type: ignore[arg-type]

    def _text(self, index: int) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        for part in self.content:
            if part.type != "text":
                raise InvalidRequest(
                    f"messages[{index}].content has a {part.type!r} part; this model reads "
                    "text only",
                    param=f"messages[{index}].content",
                )
        return "".join(part.text or "" for part in self.content)


class StreamOptions(msgspec.Struct):
    include_usage: bool = False


class ChatCompletionRequest(Sampling, kw_only=True):
    """OpenAI's body; fields this server does not use (user, logprobs, ...) are ignored."""

    messages: Annotated[list[OpenAIMessage], Meta(extra_json_schema={"minItems": 1})]
    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_completion_tokens: MaxTokens | None = None
    n: Annotated[int, Meta(ge=1, le=1)] = 1
    collections: Collections = msgspec.field(default_factory=list)  # an extension of OpenAI's
    documents: bool = True  # an extension: false answers without retrieval (plain chat)

    def chat_messages(self) -> tuple[ChatMessage, ...]:
        return tuple(m.to_chat(i) for i, m in enumerate(self.messages))


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int  # prompt tokens the engine had kept from this user's earlier turns


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class AssistantMessage(msgspec.Struct):
    content: str
    role: str = "assistant"
    citations: list[Citation] = msgspec.field(default_factory=list)  # an extension


class Choice(msgspec.Struct):
    index: int
    message: AssistantMessage
    finish_reason: str | None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    object: str = "chat.completion"


class Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: str  # always "chat.completion.chunk": given, so that omit_defaults keeps it
    usage: Usage | None = None
    citations: list[Citation] | None = None  # an extension: on the chunk that ends the answer


class ModelCard(msgspec.Struct):
    id: str
    created: int = 0
    owned_by: str = "appliance"
    object: str = "model"


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: str = "list"


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(msgspec.Struct):
    error: ErrorBody


# ---- the chat page's API ------------------------------------------------------------------


class NewConversation(msgspec.Struct, kw_only=True):
    title: Annotated[str, Meta(max_length=200)] = "New chat"


class RenameConversation(msgspec.Struct, kw_only=True):
    title: Annotated[str, Meta(min_length=1, max_length=200)]


class Regenerate(Sampling, kw_only=True):
    collections: Collections = msgspec.field(default_factory=list)


class PostMessage(Regenerate, kw_only=True):
    content: Annotated[str, _NOT_BLANK]  # its length limit (limits.max_message_chars): 413 beyond


class PiiSpan(msgspec.Struct, kw_only=True):
    """Characters start..end of `content` were personal data of this type: the model saw a
    placeholder or the type instead (per the prompt policy)."""

    type: str
    start: int
    end: int


class MessageView(msgspec.Struct, kw_only=True):
    id: int
    role: str
    content: str
    html: str | None
    created_at: float
    finish_reason: str | None
    completion_tokens: int | None
    pii: list[PiiSpan] = msgspec.field(default_factory=list)
    citations: list[Citation] = msgspec.field(default_factory=list)
    # an answer: documents, direct (not a question to the documents), general, abstained,
    # plain (no retrieval); None for a question or an answer stored before routing
    grounding: str | None = None
    author: str | None = None  # an expert's answer (role "expert"): who wrote it


class ConversationView(msgspec.Struct, kw_only=True):
    id: str
    title: str
    created_at: float
    updated_at: float
    messages: list[MessageView] | None = None
    unseen: int = 0  # experts' answers in it its owner has not read yet
    handoffs: list[HandoffView] | None = None  # its questions handed to experts (when shown)


# The `data` of each event of an answer stream (POST …/messages and …/regenerate), by name;
# `error` carries an ErrorResponse.
class StartData(msgspec.Struct, kw_only=True):
    conversation_id: str
    user_message: MessageView | None  # none when regenerating


class TokenData(msgspec.Struct):
    text: str


class QueuedData(msgspec.Struct):
    ahead: int  # requests that start before this one, while it waits for the engine


class RenderData(msgspec.Struct, kw_only=True):
    """The answer so far as HTML is, in order, the `html` of the last `render` event for each
    part up to this one's; this replaces part `part` and drops those after it."""

    part: int = 0
    html: str


class DoneData(msgspec.Struct, kw_only=True):
    message: MessageView
    finish_reason: str | None
    citations: list[Citation]


class HandoffView(msgspec.Struct, kw_only=True):
    id: str
    conversation_id: str
    status: str
    question: str
    note: str
    searched: str
    collection: str | None
    asker: str
    expert: str | None
    answer: str | None
    created_at: float
    claimed_at: float | None
    answered_at: float | None
    closed_at: float | None
    faq_path: str | None
    waiting_s: float  # since it was asked, until answered (or now)
    conversation: list[Turn] | None = None


def handoff_view(h: Handoff, conversation: list[Turn] | None = None) -> HandoffView:
    waited = (h.answered_at or time.time()) - h.created_at
    return HandoffView(
        id=h.id, conversation_id=h.conversation_id, status=h.status, question=h.question,
        note=h.note, searched=h.searched, collection=h.collection, asker=h.asker,
        expert=h.expert, answer=h.answer, created_at=h.created_at, claimed_at=h.claimed_at,
        answered_at=h.answered_at, closed_at=h.closed_at, faq_path=h.faq_path,
        waiting_s=max(waited, 0.0), conversation=conversation,
    )  # fmt: skip


class ExportView(msgspec.Struct, kw_only=True):
    user: str
    exported_at: float
    conversations: list[ConversationView]
    handoffs: list[HandoffView] = msgspec.field(default_factory=list)  # asked of experts


def message_view(message: Message, html: str | None, pii: list[PiiSpan] | None = None,
                 citations: list[Citation] | None = None) -> MessageView:  # fmt: skip
    role = "expert" if message.author else message.role  # an expert's answer, not the model's
    return MessageView(
        id=message.id, role=role, content=message.content, html=html,
        created_at=message.created_at, finish_reason=message.finish_reason,
        completion_tokens=message.completion_tokens, pii=pii or [], citations=citations or [],
        grounding=message.grounding, author=message.author,
    )  # fmt: skip
