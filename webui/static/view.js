// A document as the assistant reads it (its indexed text by page and heading), opened by a
// citation: scrolled to the cited page and heading, the passage holding the snippet marked.
"use strict";

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

// The passage a citation points at: the one holding the snippet, else the first at its page
// and heading.
function cited(passages, params) {
  const snippet = (params.get("snippet") || "").replace(/…$/, "").split(/\s+/).join(" ");
  const page = params.get("page") ? Number(params.get("page")) : null;
  const heading = params.get("heading");
  const flat = (t) => t.split(/\s+/).join(" ");
  const byText = snippet ? passages.findIndex((p) => flat(p.text).includes(snippet.slice(0, 60))) : -1;
  if (byText >= 0) return byText;
  return passages.findIndex((p) => (page === null || p.page === page) && (!heading || p.heading === heading));
}

async function show() {
  const params = new URLSearchParams(location.search);
  const path = params.get("path") || "";
  if (path.split("/").some((part) => part === ".." || part === ".")) throw new Error(`no document ${path}`);
  $("path").textContent = path;
  document.title = `${path} · Appliance`;
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  const view = await call(`/api/documents/text/${encoded}`);
  const nodes = view.passages.map(passageNode);
  $("passages").replaceChildren(...nodes);
  // The original file, where this user may have it (admins, or documents indexed as written).
  const [me, policy] = await Promise.all([call("/api/me"), call("/api/privacy")]);
  if (policy.documents !== "redact" || me.role === "admin") {
    const original = $("original");
    original.href = `/api/documents/file/${encoded}${params.get("page") ? `#page=${params.get("page")}` : ""}`;
    original.hidden = false;
  }
  const at = cited(view.passages, params);
  if (at >= 0) {
    nodes[at].classList.add("cited");
    nodes[at].scrollIntoView({ block: "center" });
  }
}

whenSignedIn(() => show().catch(showError));
