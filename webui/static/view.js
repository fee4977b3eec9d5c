// A document as the assistant reads it (its indexed text by page and heading), opened by a
// citation: the passage holding the cited chunk (its id in the address, never its text)
// marked and scrolled to; a chunk no longer indexed is said so, with the document if it is.
"use strict";

const GONE = "This passage is no longer in the index: the document was changed, re-indexed " +
  "or removed since the answer was given.";

function passageNode(passage) {
  const section = document.createElement("section");
  section.className = "passage";
  const where = [passage.page ? `Page ${passage.page}` : "", passage.heading || ""].filter(Boolean);
  if (where.length) {
    const head = document.createElement("h2");
    head.textContent = where.join(" · ");
    section.append(head);
  }
  const text = document.createElement("p");
  text.textContent = passage.text;
  section.append(text);
  return section;
}

// The passage a citation points at: the one holding its chunk; -1 when none does (gone).
function cited(passages, chunk) {
  return chunk ? passages.findIndex((p) => (p.chunks || []).includes(chunk)) : -1;
}

function notice(text) {
  const note = $("notice");
  note.textContent = text;
  note.hidden = false;
}

async function show() {
  const params = new URLSearchParams(location.search);
  const path = params.get("path") || "";
  const chunk = params.get("chunk") || "";
  const page = /^[1-9]\d{0,5}$/.test(params.get("page") || "") ? params.get("page") : null;
  if (path.split("/").some((part) => part === ".." || part === ".")) throw new Error(`no document ${path}`);
  $("path").textContent = path;
  document.title = `${path} · Appliance`;
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  let view;
  try {
    view = await call(`/api/documents/text/${encoded}`);
  } catch (error) {
    if (chunk) notice(`${GONE} The document is not in the index either.`);
    throw error;
  }
  const nodes = view.passages.map(passageNode);
  $("passages").replaceChildren(...nodes);
  // The original file, where this user may have it (admins, or documents indexed as written).
  const [me, policy] = await Promise.all([call("/api/me"), call("/api/privacy")]);
  if (policy.documents !== "redact" || me.role === "admin") {
    const original = $("original");
    original.href = `/api/documents/file/${encoded}${page ? `#page=${page}` : ""}`;
    original.hidden = false;
  }
  const at = cited(view.passages, chunk);
  if (at >= 0) {
    nodes[at].classList.add("cited");
    nodes[at].scrollIntoView({ block: "center" });
  } else if (chunk) {
    notice(`${GONE} The document as it is indexed now is below.`);
  }
}

whenSignedIn(() => show().catch(showError));
