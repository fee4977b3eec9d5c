// The chat page. Talks only to the HTTP API; HTML in answers is rendered (and made safe) by
// the server, so model text is only ever inserted as text or as that server-made HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { current: null, controller: null, streaming: false, csrf: "",
                handoffs: new Map(), reloadAfterStream: false };

// Every change carries the session's CSRF token; a lapsed session goes back to sign-in.
function headers(extra = {}) {
  return { "Content-Type": "application/json", "X-CSRF-Token": state.csrf, ...extra };
}

async function api(path, options = {}) {
  const response = await fetch(path, { headers: headers(), ...options });
  if (response.status === 401) location.assign("/signin");
  if (!response.ok) throw new Error(await errorText(response));
  return response.status === 204 ? null : response;
}

async function signOut() {
  await fetch("/api/session", { method: "DELETE", headers: headers() });
  location.assign("/signin");
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  const wait = response.headers.get("Retry-After");
  return `${response.status} ${response.statusText}` + (wait ? ` (retry in ${wait}s)` : "");
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- conversation list ------------------------------------------------------------------

// A conversation id as the server makes them (32 hex digits), else null. Ids come from the
// address (#id), which anyone can link to: pasted into an API path unchecked, "#../documents/
// file/X" would load a file of the watched folder and render its "messages" here.
const CONVERSATION_ID = /^[0-9a-f]{32}$/;

function conversationId(value) {
  return typeof value === "string" && CONVERSATION_ID.test(value) ? value : null;
}

function conversationUrl(id, rest = "") {
  if (!conversationId(id)) throw new Error("There is no such conversation.");
  return `/api/conversations/${id}${rest}`;
}

async function loadConversations() {
  const list = await (await api("/api/conversations")).json();
  const nav = $("conversations");
  nav.replaceChildren();
  for (const conv of list.filter((c) => conversationId(c.id))) {
    const link = el("a");
    link.href = `#${conv.id}`;
    link.dataset.id = conv.id;
    link.classList.toggle("active", conv.id === state.current);
    link.append(el("span", "", conv.title));
    if (conv.unseen > 0) link.append(unseenBadge(conv.unseen));
    const remove = el("button", "", "✕");
    remove.type = "button";
    remove.title = "Delete this conversation";
    remove.addEventListener("click", (event) => { event.preventDefault(); deleteConversation(conv.id); });
    link.append(remove);
    nav.append(link);
  }
  return list;
}

// Expert answers the owner has not opened yet.
function unseenBadge(count) {
  const badge = el("span", "badge", String(count));
  badge.title = `${count} new ${count === 1 ? "answer" : "answers"} from an expert`;
  return badge;
}

async function deleteConversation(id) {
  if (state.streaming) return;
  if (!confirm("Delete this conversation?")) return;
  await api(conversationUrl(id), { method: "DELETE" });
  if (id === state.current) newChat();
  await loadConversations();
}

function newChat() {
  if (state.streaming) return;
  state.current = null;
  history.replaceState(null, "", "/");
  $("title").textContent = "New chat";
  $("messages").replaceChildren(el("p", "empty", "Ask a question to start a conversation."));
  document.body.classList.remove("show-sidebar");
  $("input").focus();
  loadConversations();
}

async function openConversation(id) {
  const conv = await (await api(conversationUrl(id))).json();
  state.current = conversationId(conv.id);
  $("title").textContent = conv.title;
  const box = $("messages");
  const draft = openHandoffForm(); // a note being written survives a live reload
  box.replaceChildren();
  conv.messages.forEach((m) => box.append(renderMessage(m)));
  (conv.handoffs || []).forEach((h) => state.handoffs.set(h.id, h));
  showHandoffs();
  if (draft) reopenHandoffForm(draft);
  markLastAnswer();
  box.scrollTop = box.scrollHeight;
  document.body.classList.remove("show-sidebar");
  await loadConversations();
}

// ---- messages -----------------------------------------------------------------------------

// Answers the model wrote on its own (a task on the user's text, writing, general knowledge;
// or, with rag.mode=general, nothing matched): labelled, as no source stands behind them.
const NOT_FROM_DOCUMENTS = new Set(["direct", "general"]);
// Replies that offer the hand-off in their text (a decline; a request for a person): the
// button is theirs, not a small action.
const OFFERS_EXPERT = new Set(["abstained", "person"]);

// An expert's answer: role "expert", or an answer that names its author.
function fromExpert(message) {
  return message.role === "expert" || (message.role !== "user" && Boolean(message.author));
}

function renderMessage(message) {
  const node = el("article", `msg ${fromExpert(message) ? "expert" : message.role}`);
  if (message.id) node.dataset.id = message.id;
  node.append(el("div", "who", author(message)));
  if (NOT_FROM_DOCUMENTS.has(message.grounding)) {
    node.append(el("div", "note not-from-documents", "Not from your documents"));
  }
  const body = el("div", "body");
  if (message.role !== "user" && message.html) setHtml(body, message.html);
  else {
    body.classList.add("plain"); // text as written: its line breaks kept
    markPii(body, message.content, message.pii || []);
  }
  node.append(body);
  if (message.citations && message.citations.length) {
    linkCitations(body, message.citations);
    node.append(sourceList(message.citations));
  }
  if (fromExpert(message)) {
    node.append(expertActions(message));
    return node;
  }
  if (message.role === "assistant" && OFFERS_EXPERT.has(message.grounding) && message.id) {
    const ask = el("button", "primary ask-expert-main", "Ask an expert");
    ask.type = "button";
    ask.title = "Send this question to the people who answer for these documents";
    ask.addEventListener("click", () => showHandoffForm(node, message));
    node.append(ask);
  }
  if (message.role === "assistant") node.append(answerActions(message, node));
  return node;
}

function author(message) {
  if (message.role === "user") return "You";
  if (fromExpert(message)) return `Answer from ${message.author || "an expert"} (expert)`;
  return "Assistant";
}

// ---- citations ----------------------------------------------------------------------------

// Where a citation opens: a PDF at its page in the browser's viewer; other formats in the
// document view, which marks the cited chunk (and the original PDF is for admins where
// documents are indexed redacted). A link carries the chunk's id, never its text (addresses
// end up in logs and browser histories); a chunk no longer indexed opens the view, which says so.
function sourceUrl(c) {
  const original = state.privacy?.documents !== "redact" || state.role === "admin";
  const page = Number.isInteger(c.page) && c.page > 0 ? c.page : null;
  if (c.source.toLowerCase().endsWith(".pdf") && original && !c.gone) {
    const path = c.source.split("/").map(encodeURIComponent).join("/");
    return `/api/documents/file/${path}#page=${page || 1}`;
  }
  const query = new URLSearchParams({ path: c.source, chunk: c.chunk_id || "" });
  if (page) query.set("page", page);
  return `/view?${query}`;
}

function citationLink(c, text, className = "cite") {
  const link = el("a", className, text);
  link.href = sourceUrl(c);
  link.target = "_blank";
  link.rel = "noopener";
  link.title = `${c.source}${c.page ? `, page ${c.page}` : ""}${c.heading ? ` — ${c.heading}` : ""}`;
  return link;
}

// Turns each "[n]" in the answer's text into a link to source n.
function linkCitations(body, citations) {
  const byNumber = new Map(citations.map((c) => [String(c.n), c]));
  const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) if (/\[\d+\]/.test(walker.currentNode.data)) nodes.push(walker.currentNode);
  for (const node of nodes) {
    if (node.parentElement.closest("pre, code, a")) continue;
    const parts = node.data.split(/(\[\d+\])/);
    const fragment = document.createDocumentFragment();
    for (const part of parts) {
      const c = byNumber.get(part.slice(1, -1));
      fragment.append(/^\[\d+\]$/.test(part) && c ? citationLink(c, part) : part);
    }
    node.replaceWith(fragment);
  }
}

function sourceList(citations) {
  const list = el("ol", "sources");
  list.setAttribute("aria-label", "Sources");
  for (const c of citations) {
    const item = el("li");
    item.value = c.n;
    const where = [c.page ? `page ${c.page}` : "", c.heading || ""].filter(Boolean).join(" · ");
    item.append(citationLink(c, c.source, "source"));
    if (where) item.append(el("span", "where", ` — ${where}`));
    if (c.gone) item.append(el("span", "where gone", " — this passage is no longer in the index"));
    item.title = c.gone ? "The document was changed or removed since this answer." : c.snippet;
    list.append(item);
  }
  return list;
}

// ---- collections --------------------------------------------------------------------------

async function loadCollections() {
  const response = await api("/api/collections");
  const collections = await response.json();
  const names = Object.keys(collections);
  $("scope").hidden = names.length === 0;
  $("scope-options").replaceChildren(...names.map((name) => {
    const label = el("label", "scope-option");
    const box = el("input");
    box.type = "checkbox";
    box.value = name;
    box.addEventListener("change", showScope);
    label.append(box, ` ${name} (${collections[name]})`);
    return label;
  }));
  showScope();
}

function chosenCollections() {
  return Array.from(document.querySelectorAll("#scope-options input:checked"), (b) => b.value);
}

function showScope() {
  const chosen = chosenCollections();
  $("scope-summary").textContent = chosen.length ? `Documents: ${chosen.join(", ")}` : "Documents: all";
}

// Personal data in a message: marked, with what the model saw instead as a tooltip.
const PII_SEEN = { off: "the model saw it as written", redact: "the model saw only its type",
                   pseudonymize: "the model saw a placeholder" };

function markPii(body, content, spans) {
  const text = Array.from(content); // offsets count code points, as the server does
  const part = (from, to) => text.slice(from, to).join("");
  let at = 0;
  for (const span of spans) {
    body.append(part(at, span.start));
    const mark = el("mark", "pii", part(span.start, span.end));
    const kind = span.type.toLowerCase().replaceAll("_", " ");
    mark.title = `${kind}: ${PII_SEEN[state.privacy?.prompts] || ""}; stored as a placeholder`;
    body.append(mark);
    at = span.end;
  }
  body.append(part(at));
}

function privacyNotice(policy) {
  state.privacy = policy;
  const model = { off: "Personal data in your messages reaches the model as written (it runs here)",
                  redact: "Personal data in your messages is replaced by its type before the model sees it",
                  pseudonymize: "Personal data in your messages is replaced by placeholders before the model sees it; answers show the real values to you" };
  $("privacy").textContent = `${model[policy.prompts]}. Stored conversations keep placeholders` +
    (policy.output === "redact" ? "; answers are redacted too." : ".");
}

function setHtml(body, html) {
  body.innerHTML = html; // server-rendered: raw HTML from the model is escaped there
  for (const pre of body.querySelectorAll("pre")) {
    const copy = el("button", "small copy-code", "Copy");
    copy.type = "button";
    copy.addEventListener("click", () => copyText(pre.querySelector("code").textContent, copy));
    pre.append(copy);
  }
}

function copyButton(message) {
  const copy = el("button", "small", "Copy");
  copy.type = "button";
  copy.addEventListener("click", () => copyText(message.content, copy));
  return copy;
}

function answerActions(message, node) {
  const actions = el("div", "actions");
  const again = el("button", "small regenerate", "Regenerate");
  again.type = "button";
  again.addEventListener("click", regenerate);
  actions.append(copyButton(message), again, ...rateButtons(message));
  if (message.id && !OFFERS_EXPERT.has(message.grounding)) {
    const ask = el("button", "small ask-expert", "Ask an expert");
    ask.type = "button";
    ask.title = "Send this question to a person who answers for these documents";
    ask.addEventListener("click", () => showHandoffForm(node, message));
    actions.append(ask);
  }
  if (message.finish_reason === "cancelled") actions.append(el("span", "note", "stopped"));
  if (message.finish_reason === "length") actions.append(el("span", "note", "cut at the length limit"));
  if (message.finish_reason === "error") actions.append(el("span", "note", "failed part way"));
  return actions;
}

function rateButtons(message) {
  if (!message.id || !state.current) return [];
  return [["up", "👍"], ["down", "👎"]].map(([rating, label]) => {
    const button = el("button", "small rate", label);
    button.type = "button";
    button.title = rating === "up" ? "A good answer" : "A bad answer (you may say why)";
    button.addEventListener("click", async () => {
      const comment = rating === "down" ? (prompt("What was wrong? (optional)") || "") : "";
      const url = conversationUrl(state.current, `/messages/${encodeURIComponent(message.id)}/feedback`);
      try {
        await api(url, { method: "POST", body: JSON.stringify({ rating, comment }) });
        button.textContent = `${label} thanks`;
      } catch (error) { showError(error.message); }
    });
    return button;
  });
}

function expertActions(message) {
  const actions = el("div", "actions");
  actions.append(copyButton(message));
  return actions;
}

// ---- hand-offs to experts -----------------------------------------------------------------

// The form under an answer: an optional note, then the question goes to the experts.
function showHandoffForm(node, message, note = "") {
  document.querySelectorAll(".handoff-form").forEach((form) => form.remove());
  const form = el("form", "handoff-form");
  form.messageId = message.id;
  const label = el("label", "", "Send this question to the experts. Anything they should know? (optional)");
  const area = el("textarea");
  area.rows = 2;
  area.value = note;
  area.placeholder = "e.g. it is for a new hire starting Monday";
  label.append(area);
  const send = el("button", "primary", "Send to the experts");
  send.type = "submit";
  const cancel = el("button", "", "Cancel");
  cancel.type = "button";
  cancel.addEventListener("click", () => form.remove());
  const problem = el("p", "handoff-problem");
  problem.hidden = true;
  const buttons = el("div", "buttons");
  buttons.append(send, cancel);
  form.append(label, buttons, problem);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send.disabled = true;
    handOff(message.id, area.value.trim()).then(() => form.remove(), (error) => {
      problem.textContent = error.message;
      problem.hidden = false;
      send.disabled = false;
    });
  });
  node.append(form);
  area.focus();
  form.scrollIntoView({ block: "nearest" });
}

function openHandoffForm() {
  const form = document.querySelector(".handoff-form");
  return form ? { messageId: form.messageId, note: form.querySelector("textarea").value } : null;
}

function reopenHandoffForm(draft) {
  const node = document.querySelector(`.msg[data-id="${CSS.escape(String(draft.messageId))}"]`);
  if (node) showHandoffForm(node, { id: draft.messageId }, draft.note);
}

async function handOff(messageId, note) {
  const url = conversationUrl(state.current, "/handoff");
  const response = await fetch(url, {
    method: "POST", headers: headers(), body: JSON.stringify({ message_id: messageId, note }),
  });
  if (response.status === 401) location.assign("/signin");
  if (response.status === 409) throw new Error("This question is already with the experts.");
  if (!response.ok) throw new Error(await errorText(response));
  const view = await response.json();
  state.handoffs.set(view.id, view);
  showHandoffs();
}

const HANDOFF_STATUS = {
  open: () => "Sent to the experts — waiting for someone to take it",
  claimed: (h) => `${h.expert || "An expert"} is working on it`,
  answered: (h) => `Answered by ${h.expert || "an expert"}`,
  closed: (h) => (h.answer ? `Answered by ${h.expert || "an expert"}, closed`
    : `Closed by ${h.expert || "the experts"} without an answer`),
};

// A status line per hand-off of this conversation, below its messages: the answer itself
// appears as a message, so an answered one needs no line.
function showHandoffs() {
  const box = $("messages");
  box.querySelectorAll(".handoff-status").forEach((line) => line.remove());
  for (const h of state.handoffs.values()) {
    if (h.conversation_id !== state.current || h.status === "answered") continue;
    const line = el("p", `handoff-status ${h.status}`, HANDOFF_STATUS[h.status]?.(h) || h.status);
    line.setAttribute("role", "status");
    if (h.created_at && (h.status === "open" || h.status === "claimed")) {
      line.title = `Asked ${new Date(h.created_at * 1000).toLocaleString()}`;
    }
    box.append(line);
  }
  box.scrollTop = box.scrollHeight;
}

// Live news of the user's hand-offs: the open conversation reloads (its answer appears and is
// marked seen), others get their badge. After a dropped stream the sidebar catches up.
function listenForHandoffs() {
  if (typeof EventSource === "undefined") return; // an old browser: the badge comes on reload
  const events = new EventSource("/api/events");
  events.addEventListener("handoff", (event) => {
    let data;
    try { data = JSON.parse(event.data); } catch (_) { return; }
    const known = state.handoffs.get(data.handoff_id);
    state.handoffs.set(data.handoff_id, { ...(known || {}), ...data, id: data.handoff_id });
    if (data.conversation_id !== state.current) loadConversations().catch(() => {});
    else if (state.streaming) state.reloadAfterStream = true;
    else openConversation(state.current).catch((error) => showError(error.message));
  });
  events.addEventListener("open", () => loadConversations().catch(() => {}));
}

async function expertLinks() {
  $("expert-links").hidden = false;
  try {
    const open = await (await api("/api/handoffs?status=open")).json();
    $("queue-count").textContent = open.length ? String(open.length) : "";
    $("queue-count").hidden = open.length === 0;
  } catch (_) { /* the link still works */ }
}

async function deleteAll() {
  if (!confirm("Delete all your conversations? This cannot be undone.")) return;
  await api("/api/conversations", { method: "DELETE" });
  newChat();
  await loadConversations();
}

function markLastAnswer() {
  const answers = [...document.querySelectorAll(".msg.assistant .regenerate")];
  answers.forEach((button, i) => { button.hidden = i !== answers.length - 1; });
}

async function copyText(text, button) {
  try {
    if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
    else copyBySelection(text); // plain http on the intranet has no clipboard API
    button.textContent = "Copied";
  } catch (_) {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

function copyBySelection(text) {
  const area = el("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

// ---- streaming ----------------------------------------------------------------------------

async function send(text) {
  if (!state.current) {
    const conv = await (await api("/api/conversations", { method: "POST", body: "{}" })).json();
    state.current = conversationId(conv.id);
    if (!state.current) throw new Error("The server returned no conversation id.");
    history.replaceState(null, "", `#${conv.id}`);
    $("messages").replaceChildren();
  }
  const body = JSON.stringify({ content: text, collections: chosenCollections() });
  await stream(conversationUrl(state.current, "/messages"), body, text);
}

async function regenerate() {
  if (state.streaming) return;
  const answers = document.querySelectorAll(".msg.assistant");
  if (answers.length) answers[answers.length - 1].remove();
  const body = JSON.stringify({ collections: chosenCollections() });
  await stream(conversationUrl(state.current, "/regenerate"), body, null);
}

async function stream(url, body, userText) {
  showError("");
  setStreaming(true);
  state.controller = new AbortController();
  const box = $("messages");
  let answer = null;
  let stopped = false;
  try {
    const response = await fetch(url, {
      method: "POST", body, signal: state.controller.signal,
      headers: headers({ Accept: "text/event-stream" }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    for await (const [event, data] of sseEvents(response)) {
      if (event === "start") {
        if (data.user_message) box.append(renderMessage(data.user_message));
        answer = pendingAnswer();
        box.append(answer);
      } else if (event === "done") {
        answer.replaceWith(renderMessage(data.message));
      } else {
        streamed(answer, event, data);
      }
      box.scrollTop = box.scrollHeight;
    }
  } catch (error) {
    if (error.name === "AbortError" && answer) {
      // Stopped: the server keeps the answer as far as it got; show the same without a reload.
      const content = answer.raw;
      answer.replaceWith(renderMessage({ role: "assistant", content, html: null, finish_reason: "cancelled" }));
      markLastAnswer();
      stopped = true;
    } else {
      if (error.name !== "AbortError") showError(error.message);
      if (userText !== null && !$("input").value) $("input").value = userText; // lose nothing
    }
  } finally {
    setStreaming(false);
    state.controller = null;
  }
  const reload = !stopped || state.reloadAfterStream; // an expert answered meanwhile
  state.reloadAfterStream = false;
  if (reload && state.current) await openConversation(state.current);
}

// The answer being written: its text as it comes (`tail`), then as server-rendered HTML in
// parts (`parts`: each part's nodes), and its place in line while it waits for the model.
function pendingAnswer() {
  const answer = el("article", "msg assistant");
  answer.body = el("div", "body");
  answer.raw = "";
  answer.parts = [];
  answer.place = null;
  answer.tail = el("span", "tail");
  answer.body.append(answer.tail);
  answer.append(el("div", "who", "Assistant"), answer.body);
  return answer;
}

function streamed(answer, event, data) {
  if (event === "queued") {
    if (!answer.place) {
      answer.place = el("p", "queued");
      answer.body.prepend(answer.place);
    }
    answer.place.textContent = placeInLine(data.ahead);
    return;
  }
  if (answer.place) { answer.place.remove(); answer.place = null; }
  if (event === "token") {
    answer.raw += data.text;
    answer.tail.textContent += data.text;
  } else if (event === "render") {
    renderPart(answer, data);
  }
}

function placeInLine(ahead) {
  if (ahead === 0) return "You're next";
  return `${ahead} ${ahead === 1 ? "person" : "people"} ahead of you`;
}

// The answer so far as HTML is its parts in order; a render event replaces part `data.part`
// and drops those after it (the blocks that may still change), and covers every token so far.
function renderPart(answer, data) {
  for (const nodes of answer.parts.splice(data.part)) nodes.forEach((node) => node.remove());
  const template = document.createElement("template");
  template.innerHTML = data.html; // rendered with raw HTML escaped on the server
  const nodes = Array.from(template.content.childNodes);
  answer.tail.before(...nodes);
  answer.parts.push(nodes);
  answer.tail.textContent = "";
}

async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      yield [event, JSON.parse(data)];
    }
  }
}

function setStreaming(on) {
  state.streaming = on;
  document.body.classList.toggle("busy", on);
  $("send").hidden = on;
  $("stop").hidden = !on;
  $("input").disabled = on;
}

// ---- start --------------------------------------------------------------------------------

function bind() {
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("input").value.trim();
    if (!text || state.streaming) return;
    $("input").value = "";
    send(text).catch((error) => { showError(error.message); $("input").value = text; });
  });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("new-chat").addEventListener("click", newChat);
  $("toggle-sidebar").addEventListener("click", () => document.body.classList.toggle("show-sidebar"));
  $("conversations").addEventListener("click", (event) => {
    const link = event.target.closest("a");
    if (link && !state.streaming) { event.preventDefault(); openConversation(link.dataset.id); }
  });
}

async function start() {
  const me = await fetch("/api/me");
  if (!me.ok) { location.assign("/signin"); return; }
  const who = await me.json();
  state.csrf = who.csrf || "";
  state.role = who.role;
  $("who").textContent = who.name;
  $("admin-links").hidden = who.role !== "admin";
  if (who.expert) expertLinks();
  $("sign-out").addEventListener("click", signOut);
  $("delete-all").addEventListener("click", deleteAll);
  bind();
  fetch("/v1/models").then((r) => r.json()).then((m) => { $("model").textContent = m.data[0].id; })
    .catch(() => {});
  // The policy decides where citations link (originals or the redacted view): known first.
  await fetch("/api/privacy").then((r) => r.json()).then(privacyNotice).catch(() => {});
  loadCollections().catch(() => {});
  listenForHandoffs();
  const id = conversationId(location.hash.slice(1)); // anything else in the hash is ignored
  if (id) {
    try { await openConversation(id); return; } catch (error) { showError(error.message); }
  }
  newChat();
}

start();
