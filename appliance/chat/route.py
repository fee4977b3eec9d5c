"""Message routing: whether a message asks the company's documents, asks the model directly (a
task on text the user gave, writing, general knowledge) or asks for a person.

Rules decide what they can read plainly: a request for a human, a writing task ("write an
essay", "draft an e-mail"), an instruction on text the message carries ("translate this: ...",
a pasted block), arithmetic. A follow-up ("and abroad?") takes the route of the message it
follows. The rest goes to the embedder: the message is compared with small built-in sets of
example messages per kind, and the kind whose nearest examples are closest wins. Between
documents and direct the router leans to documents: a declined question is safer than a policy
the model made up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np

from appliance.embed.embedder import Embedder, Vectors
from appliance.llm.types import ChatMessage
from appliance.rag.answer import is_follow_up

RouteKind = Literal["documents", "direct", "person"]


class Route(msgspec.Struct, frozen=True):
    """Where a message goes, and in a few words why (for logs and the page); `ruled`: a rule
    read it in the message (or in the one it follows), not the embedder's likeness."""

    kind: RouteKind
    reason: str
    ruled: bool = False


# --- rules -------------------------------------------------------------------------------

# A question about whom to contact is a question to the documents, not a hand-off.
_ASKS_WHO = re.compile(r"^\W*(who|whom|which|where|what|when|how|is there a policy)\b", re.I)
_HUMAN = r"(a |an |some |one of your |a real |an actual |a live |a human )?"
_PERSON_NOUN = (
    r"(real |actual |live )?(person|human|humans|human being|somebody|someone|anybody|anyone"
    r"|agent|representative|people|colleague|staff member|member of staff)"
)
_PERSON = [
    (
        re.compile(rf"\b(talk|speak|chat)\s+(to|with)\s+{_HUMAN}{_PERSON_NOUN}\b", re.I),
        "asks to talk to a person",
    ),
    (
        re.compile(rf"\b(want|need|like|prefer)\s+{_HUMAN}{_PERSON_NOUN}\b", re.I),
        "asks for a person",
    ),
    (
        re.compile(
            r"\b(can|could|would|will|have|get)\s+(someone|somebody|a person|anyone|a human)"
            r"(\s+(from|in|at|of)\s+(the\s+)?[\w-]+(\s+team)?)?\s+(please\s+)?"
            r"(call|phone|ring|contact|email|e-mail|text|reach out to|get back to"
            r"|get in touch with)\s+me\b",
            re.I,
        ),
        "asks to be contacted by someone",
    ),
    (
        re.compile(
            r"\b(connect|transfer|put|forward|pass)\s+me\s+(on\s+)?(to|through|with)\b", re.I
        ),
        "asks to be put through to someone",
    ),
    (re.compile(r"\b(escalate|hand me over|hand this over)\b", re.I), "asks to escalate"),
    (
        re.compile(r"\b(not|no more|stop talking to)\s+(a|the|this)\s+(bot|machine|ai)\b", re.I),
        "does not want the assistant",
    ),
]

# Writing something new: direct, whatever it is about ("write an e-mail to HR about my leave").
# What may come before an instruction's verb: "please", "could you", "I need to", ...
_POLITE = (
    r"\W*(please\s+|hi,?\s+|hey,?\s+)?((can|could|would|will)\s+you\s+(please\s+)?"
    r"|(i|we)\s+(want|need|would like|'d like)\s+(you\s+)?to\s+|help me\s+)?(please\s+)?"
)
_PIECE = (
    r"(?P<piece>essay|poem|story|short story|e-?mail|mail|letter|cover letter|speech|toast|haiku"
    r"|limerick|song|lyrics|tweet|post|blog post|message|note|announcement|invitation|card"
    r"|joke|slogan|tagline|bio|biography|job ad|job description|outline|paragraph|reply"
    r"|response|function|script|program|query|regex|regular expression|class|snippet|code"
    r"|formula|macro|thank-you note|apology|reminder|agenda|memo|press release|headline|title"
    r"|name|idea|suggestion|slogan)"
)
_WRITE = re.compile(
    "^" + _POLITE + r"(write|draft|compose|create|generate|come up with|make|give me|suggest"
    r"|brainstorm)\s+(me\s+)?"
    r"(a|an|the|some|my|our|\d+|a few|a short|a quick|a polite|a formal|a friendly)?\s*"
    r"(\w+\s+){0,3}?" + _PIECE + r"s?\b",
    re.I,
)
# An instruction on text, opening the message or one of its sentences or lines (not "how do I
# fix it?"): direct when the message carries the text.
_EDIT = re.compile(
    r"(^|[.!?:\n])"
    + _POLITE
    + r"(?P<verb>translate|summari[sz]e|shorten|condense|rewrite|re-write|rephrase|paraphrase"
    r"|reword"
    r"|proofread|proof-read|correct|fix|polish|edit|improve|simplify|tidy up|clean up"
    r"|make (this|it|the text) (shorter|longer|more \w+|less \w+|sound \w+)"
    r"|turn (this|it) into \w+( \w+)?"
    r"|tl;?dr|explain (this|the following)|check (the|my)? ?(grammar|spelling))\b",
    re.I,
)
_BLOCK = re.compile(r"```|\n\s*\n|(\n.*){2,}|[:?]\s*\n\s*\S|^\s*>", re.M)
# Double, curly (U+201C/D, U+2018/9) and angle quotes; not the apostrophe ("I'd ... it's").
_QUOTED = re.compile(r"[\"\u201c\u2018\u00ab][^\"\u201d\u2019\u00bb]{40,}[\"\u201d\u2019\u00bb]")
_AFTER_COLON = re.compile(r":\s*\S+(\s+\S+){11,}")
_LONG_CHARS = 400
# A translation's text may be a few words ("Translate into French: 'See you at noon.'"): any
# text after a colon or in quotes (an apostrophe not inside a word opens one too).
_TRANSLATE = re.compile(r"\btranslat(e|ion)\b", re.I)
_SOME_TEXT = re.compile(r":\s*\S+\s+\S|[\"\u201c\u2018\u00ab]\S|(?<!\w)'\S")
_ARITHMETIC = re.compile(r"\d\s*([-+*/x^\u00d7\u00f7]|times|plus|minus|divided by)\s*\(?\d", re.I)


def _carries_text(message: str) -> str | None:
    """How the message carries text to work on, if it does."""
    if _BLOCK.search(message):
        return "a pasted block"
    if _QUOTED.search(message):
        return "quoted text"
    if _AFTER_COLON.search(message):
        return "text after a colon"
    if len(message) > _LONG_CHARS:
        return "a long text"
    return None


def ruled(message: str) -> Route | None:
    """The route the rules read in `message` alone, or None when they don't decide."""
    if not _ASKS_WHO.match(message):
        for pattern, reason in _PERSON:
            if pattern.search(message):
                return Route("person", reason, ruled=True)
    if match := _WRITE.search(message):
        return Route("direct", f"asks to write something ({match['piece'].lower()})", ruled=True)
    if _TRANSLATE.search(message) and _SOME_TEXT.search(message):
        return Route("direct", "asks to translate text it gives", ruled=True)
    edit, carried = _EDIT.search(message), _carries_text(message)
    if edit and carried:
        verb = edit["verb"].lower()
        return Route("direct", f"asks to {verb}, on text it gives ({carried})", ruled=True)
    if _ARITHMETIC.search(message) and len(message.split()) <= 12:
        return Route("direct", "asks for arithmetic", ruled=True)
    return None


# --- the embedder's examples ---------------------------------------------------------------

# Generic messages of each kind, written for the router (not taken from any evaluation set).
PROTOTYPES: dict[RouteKind, tuple[str, ...]] = {
    "documents": (
        "What is the company policy on this?",
        "What does the employee handbook say about it?",
        "How many days of paid leave am I entitled to?",
        "How do I submit a claim for reimbursement?",
        "Who has to sign off on a purchase order?",
        "What is the process for requesting time off?",
        "Am I allowed to work from home on Fridays?",
        "When are salaries paid each month?",
        "What are the office opening hours?",
        "How do I get access to the shared drive?",
        "What should I do if my work laptop is stolen?",
        "Is there a dress code at the office?",
        "What benefits do employees get?",
        "How does the bonus scheme work here?",
        "What is the notice period if I resign?",
        "Which hotels can I book on a business trip?",
        "How much can I spend on meals when travelling for work?",
        "What are the rules for using company cars?",
        "How do I book a meeting room?",
        "Where can I park at the headquarters?",
        "What is our password policy?",
        "How do I set up the VPN on my work computer?",
        "Who do I contact about a payroll mistake?",
        "What training is mandatory for new hires?",
        "How does the performance review cycle work?",
        "What is the procedure for reporting a security incident?",
        "Can I bring my own device to work?",
        "Do we get a budget for home office equipment?",
        "What are the rules on overtime pay?",
        "How long is maternity and paternity leave?",
        "What happens to unused holiday at the end of the year?",
        "Is there a pension plan and how much does the employer contribute?",
        "What is the approval limit for expenses?",
        "Which public holidays does the office close for?",
        "How do I order a new badge or access card?",
        "What is the policy on gifts from suppliers?",
        "Where do I find the template for project reports?",
        "What are the steps of onboarding in my first week?",
        "Does the company cover the cost of certifications?",
        "What do I need to do before going on parental leave?",
    ),
    "direct": (
        "What is the capital of Canada?",
        "Explain how vaccines work in simple terms.",
        "Why is the sky blue?",
        "Who wrote Pride and Prejudice?",
        "What is the difference between a virus and a bacterium?",
        "How do I reverse a string in Python?",
        "What does this error mean in JavaScript: undefined is not a function?",
        "Give me ideas for a team-building activity.",
        "Suggest a name for my cat.",
        "What is a good recipe for pancakes?",
        "Explain the theory of relativity.",
        "How many ounces are in a pound?",
        "Convert 30 degrees Celsius to Fahrenheit.",
        "What is the square root of 144?",
        "Tell me a fun fact about octopuses.",
        "What are some tips for public speaking?",
        "How does compound interest work?",
        "What is machine learning?",
        "Give me synonyms for the word important.",
        "What is the plural of cactus?",
        "How do I write a SQL join between two tables?",
        "When did the Second World War end?",
        "What is the tallest mountain in Africa?",
        "Recommend some books about leadership.",
        "How do I center a div in CSS?",
        "What is the meaning of the idiom break the ice?",
        "Brainstorm slogans for a bake sale.",
        "How do I stay productive when working remotely?",
        "What does GDP stand for?",
        "Explain the difference between affect and effect.",
        "How does a bill become law?",
        "What are the main causes of climate change?",
        "Give me a workout plan for beginners.",
        "How do you say good morning in Japanese?",
        "What is the best way to learn a new language?",
        "Explain what an API is to a non-technical person.",
    ),
    "person": (
        "I would like a human to help me with this.",
        "Please let me speak with somebody from the support team.",
        "Can a real person look at my case?",
        "I need to talk to my HR business partner in private.",
        "Please have someone from IT contact me.",
        "Could I get an appointment with someone from payroll?",
        "This bot is not helping, get me a person.",
        "Is there anyone I can talk to directly?",
        "I'd like to discuss a confidential matter with someone.",
        "Put me in touch with a member of the facilities team.",
    ),
}

# Each kind scores the mean cosine of its K nearest examples. Direct must beat documents by
# MARGIN (unsure means documents), and a hand-off by the embedder alone must be clear too.
K = 3
MARGIN = 0.03
PERSON_MARGIN = 0.05
_CHAIN = 3  # follow-ups followed back at most this far, as the search does


class Router:
    """Routes messages by the rules, then by `embedder` against `prototypes` (embedded once,
    here). Deterministic: the same message and history always take the same route."""

    def __init__(
        self,
        embedder: Embedder,
        prototypes: dict[RouteKind, tuple[str, ...]] = PROTOTYPES,
    ) -> None:
        self._embedder = embedder
        self._examples = {kind: list(texts) for kind, texts in prototypes.items()}
        self._vectors: dict[RouteKind, Vectors] = {
            kind: embedder.embed(texts) for kind, texts in self._examples.items()
        }

    def route(self, message: str, history: Sequence[ChatMessage] = ()) -> Route:
        """The route of `message`, the user's newest turn after `history`."""
        return self._route(message.strip(), list(history), _CHAIN)

    def _route(self, message: str, history: list[ChatMessage], chain: int) -> Route:
        if decided := ruled(message):
            return decided
        turns = [n for n, m in enumerate(history) if m.role == "user"]
        if turns and chain > 0 and is_follow_up(message):
            before = self._route(
                history[turns[-1]].content.strip(), history[: turns[-1]], chain - 1
            )
            if before.reason.startswith("follow-up"):
                return before
            return Route(before.kind, f"follow-up to: {before.reason}", before.ruled)
        return self.nearest(message)

    def nearest(self, message: str) -> Route:
        """The route by the embedder alone: the kind of the closest examples, leaning to
        documents."""
        vector = self._embedder.embed([message])[0]
        scores, closest = {}, {}
        for kind, vectors in self._vectors.items():
            sims = vectors @ vector
            top = np.argsort(sims)[::-1][:K]
            scores[kind] = float(np.mean(sims[top]))
            closest[kind] = self._examples[kind][int(top[0])]
        return _decide(message, scores, closest)


def _decide(message: str, scores: dict[RouteKind, float], closest: dict[RouteKind, str]) -> Route:
    """The kind that wins; a question how or whom to contact goes to the documents."""
    documents, direct = scores.get("documents", -1.0), scores.get("direct", -1.0)
    person = scores.get("person", -1.0)
    if person > max(documents, direct) + PERSON_MARGIN and not _ASKS_WHO.match(message):
        kind: RouteKind = "person"
    elif direct > documents + MARGIN:
        kind = "direct"
    else:
        kind = "documents"
    shown = ", ".join(f"{k} {s:.2f}" for k, s in sorted(scores.items(), key=lambda i: -i[1]))
    if kind == "documents" and direct > documents:
        return Route(kind, f"unsure, so documents ({shown})")
    like = f"like {closest[kind]!r} " if kind in closest else ""
    return Route(kind, f"{like}({shown})")
