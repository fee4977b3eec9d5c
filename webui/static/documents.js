// The documents page: the catalog of the watched folder, refreshed every few seconds.
"use strict";

const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function when(seconds) {
  const options = { dateStyle: "short", timeStyle: "short" };
  return seconds ? new Date(seconds * 1000).toLocaleString(undefined, options) : "–";
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
    tr.append(cell(d.path, "path"), cell(d.status, "status"), cell(String(d.chunks), "num"),
              cell(d.pages == null ? "–" : String(d.pages), "num pages"),
              cell(when(d.indexed_at), "when"),
              cell(d.error || "", "reason"));
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

refresh();
