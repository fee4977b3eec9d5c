// The experts' page: the queue of questions handed to people, one question's conversation and
// what was searched, and claim / answer / close / save as FAQ. Helpers: pages.js.
"use strict";

const REFRESH_MS = 10000;
const LONG_WAIT_S = 3600; // an open question older than this is shown as overdue
const HANDOFF_ID = /^[0-9a-f]{32}$/;
const TABS = [["open", "Open"], ["claimed", "Claimed"], ["answered", "Answered"],
              ["closed", "Closed"], ["all", "All"]];
const page = { me: null, tab: "open", all: [], selected: null, shown: "", drafts: new Map(),
               busy: false };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, className, action) {
  const b = el("button", className, label);
  b.type = "button";
  b.addEventListener("click", action);
  return b;
}

// 42 → "< 1 min", 720 → "12 min", 7500 → "2 h 5 min", 200000 → "2 days 7 h".
function duration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  if (s < 60) return "<\u00a01 min";
  const minutes = Math.floor(s / 60) % 60, hours = Math.floor(s / 3600) % 24;
  const days = Math.floor(s / 86400);
  if (days) return `${days} ${days === 1 ? "day" : "days"}${hours ? ` ${hours} h` : ""}`;
  if (hours) return `${hours} h${minutes ? ` ${minutes} min` : ""}`;
  return `${minutes} min`;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString(undefined,
    { dateStyle: "short", timeStyle: "short" }) : "–";
}

function statusPill(h) {
  return el("span", `status-pill ${h.status}`, h.status);
}

// ---- the queue ----------------------------------------------------------------------------

function latest(h) {
  return h.closed_at || h.answered_at || h.claimed_at || h.created_at;
}

// Open and claimed questions oldest first (a queue); the rest newest first.
function inTab(tab) {
  const rows = page.all.filter((h) => tab === "all" || h.status === tab);
  if (tab === "open" || tab === "claimed") return rows.sort((a, b) => a.created_at - b.created_at);
  return rows.sort((a, b) => latest(b) - latest(a));
}

function renderTabs() {
  $("tabs").replaceChildren(...TABS.map(([tab, label]) => {
    const count = tab === "all" ? page.all.length : page.all.filter((h) => h.status === tab).length;
    const b = button(`${label} (${count})`, "", () => { page.tab = tab; renderQueue(); });
    b.setAttribute("role", "tab");
    b.dataset.tab = tab;
    b.setAttribute("aria-selected", String(tab === page.tab));
    return b;
  }));
}

function renderQueue() {
  renderTabs();
  const rows = inTab(page.tab).map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.id = h.id;
    tr.classList.toggle("selected", h.id === page.selected);
    tr.classList.toggle("long", h.status === "open" && h.waiting_s > LONG_WAIT_S);
    const question = document.createElement("td");
    question.className = "question";
    question.title = h.question;
    question.append(el("div", "", h.question));
    const waiting = cell(duration(h.waiting_s));
    waiting.className = "waiting";
    waiting.title = h.answered_at ? `Answered after ${duration(h.waiting_s)}`
      : `Asked ${when(h.created_at)}`;
    const status = document.createElement("td");
    status.append(statusPill(h));
    tr.append(question, cell(h.asker), cell(h.collection || "any"), waiting, status,
              cell(h.expert || "–"));
    tr.addEventListener("click", () => select(h.id));
    return tr;
  });
  $("rows").replaceChildren(...rows);
  $("queue").hidden = rows.length === 0;
  $("empty").hidden = rows.length > 0;
  $("empty").textContent = page.tab === "open" ? "Nobody is waiting for an answer."
    : `No ${page.tab === "all" ? "" : `${page.tab} `}questions.`;
}

async function loadQueue() {
  page.all = await call("/api/handoffs?status=all");
  renderQueue();
  $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// ---- one question -------------------------------------------------------------------------

function select(id) {
  if (!HANDOFF_ID.test(id)) return;
  page.selected = id;
  page.shown = "";
  history.replaceState(null, "", `#${id}`);
  document.querySelectorAll("#rows tr").forEach((tr) => tr.classList.toggle("selected", tr.dataset.id === id));
  loadDetail().catch(showError);
}

async function loadDetail() {
  if (!page.selected) return;
  const h = await call(`/api/handoffs/${page.selected}`);
  // A refresh re-renders only what changed, so an answer being typed keeps its place.
  const shown = JSON.stringify([h.status, h.expert, h.answer, h.faq_path, h.conversation.length]);
  if (shown === page.shown) { updateWaiting(h); return; }
  page.shown = shown;
  renderDetail(h);
}

function renderDetail(h) {
  const box = $("detail");
  box.hidden = false;
  const meta = el("p", "meta");
  meta.append(statusPill(h), ` Asked by ${h.asker} · ${when(h.created_at)} · collection ${h.collection || "any"}`,
              el("span", "waiting-text", ` · ${waitingText(h)}`));
  if (h.expert) meta.append(` · ${h.status === "claimed" ? "claimed" : "answered"} by ${h.expert}`);
  box.replaceChildren(el("h2", "", h.question), meta);
  if (h.note) box.append(el("h3", "", "Note from the asker"), el("p", "note-text", h.note));
  box.append(el("h3", "", "What was searched"),
             el("p", "searched", h.searched || "Nothing was searched for this question."));
  box.append(el("h3", "", "The conversation so far"), thread(h),
             el("p", "hint", "Personal data shows as placeholders such as <PERSON_1>, as the model saw it."));
  const inThread = (h.conversation || []).some((m) => m.content === h.answer);
  if (h.answer && !inThread) box.append(el("h3", "", `Answer from ${h.expert || "an expert"}`), el("p", "searched", h.answer));
  box.append(...actions(h));
  const problem = el("div", "error detail-error");
  problem.hidden = true;
  box.append(problem);
}

function waitingText(h) {
  if (h.status === "open" || h.status === "claimed") return `waiting ${duration(h.waiting_s)}`;
  return h.answered_at ? `answered after ${duration(h.waiting_s)}` : `closed ${when(h.closed_at)}`;
}

function updateWaiting(h) {
  const span = document.querySelector("#detail .waiting-text");
  if (span) span.textContent = ` · ${waitingText(h)}`;
}

function thread(h) {
  const list = el("div", "thread");
  for (const m of h.conversation || []) {
    const expert = m.role === "expert" || (m.role !== "user" && Boolean(m.author));
    const who = m.role === "user" ? h.asker : expert ? `${m.author || "an expert"} (expert)` : "Assistant";
    const item = el("article", `msg ${expert ? "expert" : m.role}`);
    item.append(el("div", "who", who), el("div", "body", m.content));
    list.append(item);
  }
  if (!list.children.length) list.append(el("p", "hint", "No messages."));
  return list;
}

// What this expert can do next: claim an open one, answer their own, save an answer as an
// FAQ; and close it (without an answer too: a duplicate, or not a question for people).
function actions(h) {
  const mine = h.expert === page.me.name;
  const parts = [];
  const close = h.status !== "closed" && (h.status !== "claimed" || mine)
    ? button(h.answer ? "Close" : "Close without answer", "close", () => closeHandoff(h)) : null;
  if (h.status === "claimed" && !mine) parts.push(el("p", "meta", `${h.expert} is answering this one.`));
  if (h.status === "claimed" && mine) parts.push(answerForm(h, close));
  if (h.answer && !h.faq_path) parts.push(faqForm(h));
  if (h.faq_path) parts.push(el("p", "saved", `Saved as ${h.faq_path} in the watched folder: the assistant cites it once it is indexed.`));
  if (h.status === "open") parts.push(buttons(button("Claim", "primary claim", () => act(h, "claim").catch(() => {})), close));
  else if (close && !(h.status === "claimed" && mine)) parts.push(buttons(close));
  return parts;
}

function buttons(...items) {
  const row = el("div", "buttons");
  row.append(...items.filter(Boolean));
  return row;
}

function answerForm(h, close) {
  const form = el("form");
  const label = el("label", "", `Your answer (${h.asker} sees it in their conversation, under your name)`);
  const area = el("textarea", "answer-text");
  area.rows = 6;
  area.required = true;
  area.value = page.drafts.get(h.id) || "";
  area.addEventListener("input", () => page.drafts.set(h.id, area.value));
  label.append(area);
  const send = el("button", "primary send-answer", "Send answer");
  send.type = "submit";
  form.append(label, buttons(send, close));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = area.value.trim();
    if (!text) return;
    act(h, "answer", { text }).then(() => page.drafts.delete(h.id), () => {});
  });
  queueMicrotask(() => area.focus());
  return form;
}

function faqForm(h) {
  const form = el("form");
  const label = el("label", "", "Title of the FAQ document (saved under faq/ in the watched folder)");
  const title = el("input", "faq-title");
  title.value = h.question.slice(0, 120);
  label.append(title);
  const save = el("button", "save-faq", "Save as FAQ");
  save.type = "submit";
  form.append(label, buttons(save));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(h, "faq", { title: title.value.trim() }).catch(() => {});
  });
  return form;
}

function closeHandoff(h) {
  if (!h.answer && !confirm(`Close without an answer? ${h.asker} is told it was closed.`)) return;
  act(h, "close").catch(() => {});
}

async function act(h, action, body = {}) {
  let failed = null;
  try {
    const view = await call(`/api/handoffs/${h.id}/${action}`, { method: "POST", body: JSON.stringify(body) });
    if (page.tab !== "all") page.tab = view.status; // the list follows the question
  } catch (error) { failed = error; }
  page.shown = "";
  await refresh();
  const problem = document.querySelector("#detail .detail-error");
  if (failed && problem) { problem.textContent = failed.message; problem.hidden = false; }
  if (failed) throw failed;
}

// ---- start --------------------------------------------------------------------------------

async function refresh() {
  if (page.busy) return;
  page.busy = true;
  try {
    await loadQueue();
    await loadDetail();
    $("error").hidden = true;
  } catch (error) { showError(error); } finally { page.busy = false; }
}

async function start() {
  page.me = await call("/api/me");
  if (!page.me.expert) {
    showError(new Error("Your account does not answer questions for experts. An administrator can add you as an expert."));
  }
  const id = location.hash.slice(1);
  if (HANDOFF_ID.test(id)) page.selected = id;
  await refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

whenSignedIn(() => start().catch(showError));
