// The chat page. Talks only to the HTTP API; HTML in answers is rendered (and made safe) by
// the server, so model text is only ever inserted as text or as that server-made HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { current: null, controller: null, streaming: false, csrf: "" };

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
    const remove = el("button", "", "✕");
    remove.type = "button";
    remove.title = "Delete this conversation";
    remove.addEventListener("click", (event) => { event.preventDefault(); deleteConversation(conv.id); });
    link.append(remove);
    nav.append(link);
  }
  return list;
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
  box.replaceChildren();
  conv.messages.forEach((m) => box.append(renderMessage(m)));
  markLastAnswer();
  box.scrollTop = box.scrollHeight;
  document.body.classList.remove("show-sidebar");
  await loadConversations();
}

// ---- messages -----------------------------------------------------------------------------

// Answers the model wrote on its own (a task on the user's text, writing, general knowledge;
// or, with rag.mode=general, nothing matched): labelled, as no source stands behind them.
const NOT_FROM_DOCUMENTS = new Set(["direct", "general"]);

function renderMessage(message) {
  const node = el("article", `msg ${message.role}`);
  node.append(el("div", "who", message.role === "user" ? "You" : "Assistant"));
  if (NOT_FROM_DOCUMENTS.has(message.grounding)) {
    node.append(el("div", "note not-from-documents", "Not from your documents"));
  }
  const body = el("div", "body");
  if (message.role === "assistant" && message.html !== null) setHtml(body, message.html);
  else markPii(body, message.content, message.pii || []);
  node.append(body);
  if (message.citations && message.citations.length) {
    linkCitations(body, message.citations);
    node.append(sourceList(message.citations));
  }
  if (message.role === "assistant") node.append(answerActions(message));
  return node;
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

function answerActions(message) {
  const actions = el("div", "actions");
  const copy = el("button", "small", "Copy");
  copy.type = "button";
  copy.addEventListener("click", () => copyText(message.content, copy));
  const again = el("button", "small regenerate", "Regenerate");
  again.type = "button";
  again.addEventListener("click", regenerate);
  actions.append(copy, again, ...rateButtons(message));
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
  if (!stopped && state.current) await openConversation(state.current);
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
  $("sign-out").addEventListener("click", signOut);
  $("delete-all").addEventListener("click", deleteAll);
  bind();
  fetch("/v1/models").then((r) => r.json()).then((m) => { $("model").textContent = m.data[0].id; })
    .catch(() => {});
  // The policy decides where citations link (originals or the redacted view): known first.
  await fetch("/api/privacy").then((r) => r.json()).then(privacyNotice).catch(() => {});
  loadCollections().catch(() => {});
  const id = conversationId(location.hash.slice(1)); // anything else in the hash is ignored
  if (id) {
    try { await openConversation(id); return; } catch (error) { showError(error.message); }
  }
  newChat();
}

start();
