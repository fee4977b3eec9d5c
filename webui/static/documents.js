// The documents page: the catalog of the watched folder, refreshed every few seconds.
"use strict";

const REFRESH_MS = 3000;

function classed(text, className) {
  const td = cell(text);
  td.className = className;
  return td;
}

function when(seconds) {
  const options = { dateStyle: "short", timeStyle: "short" };
  return seconds ? new Date(seconds * 1000).toLocaleString(undefined, options) : "–";
}

// Who may see a document (admins get it; others see only theirs, without this column's data).
function seenBy(audience) {
  if (audience == null) return "";
  if (audience === "everyone") return "everyone";
  return audience.length ? audience.join(", ") : "admins only";
}

function render(view) {
  $("watch-dir").textContent = view.watch_dir;
  const c = view.counts;
  $("counts").textContent =
    `${c.indexed} indexed · ${c.pending} pending · ${c.failed} failed · ${c.skipped} skipped`;
  $("state").textContent = view.indexing ? "indexing…" : "up to date";
  const rows = view.documents.map((d) => {
    const tr = document.createElement("tr");
    tr.className = `status-${d.status}`;
    tr.append(classed(d.path, "path"), classed(d.status, "status"),
              classed(String(d.chunks), "num"),
              classed(d.pages == null ? "–" : String(d.pages), "num pages"),
              classed(when(d.indexed_at), "when"),
              classed(seenBy(d.audience), "audience"),
              classed(d.error || "", "reason"));
    return tr;
  });
  $("rows").replaceChildren(...rows);
  $("empty").hidden = rows.length > 0;
  $("documents-table").hidden = rows.length === 0;
}

async function refresh() {
  try {
    const response = await fetch("/api/documents");
    if (response.status === 401) { location.assign("/signin"); return; }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    render(body);
    $("error").hidden = true;
  } catch (err) {
    $("error").textContent = `Cannot load the document list: ${err.message}`;
    $("error").hidden = false;
  }
  setTimeout(refresh, REFRESH_MS);
}

// The retrieval debugger: POST /api/search, one row per hit.
async function search(event) {
  event.preventDefault();
  $("search-error").hidden = true;
  const collections = $("collections").value.split(",").map((c) => c.trim()).filter(Boolean);
  try {
    const hits = await call("/api/search", {
      method: "POST", body: JSON.stringify({ query: $("query").value, k: 10, collections }),
    });
    $("hit-rows").replaceChildren(...hits.map((h, i) => {
      const tr = document.createElement("tr");
      tr.append(cell(String(i + 1)), classed(h.source, "path"), cell(h.page == null ? "–" : String(h.page)),
                cell(h.heading || ""), cell(h.found_by.join(" + ")), classed(h.score.toFixed(4), "num"),
                classed(h.similarity.toFixed(3), "num"), classed(h.snippet, "snippet"));
      return tr;
    }));
    $("hits").hidden = hits.length === 0;
    $("no-hits").hidden = hits.length > 0;
    $("no-hits").textContent = "Nothing clears the relevance floor (rag.min_similarity): a chat answer would say the documents don't cover it.";
  } catch (error) {
    $("search-error").textContent = error.message;
    $("search-error").hidden = false;
  }
}

whenSignedIn(() => {
  $("search").addEventListener("submit", search);
  refresh();
});
