// The Models page (admins): the GGUF models on offer, which one is served, and serving another
// (it loads in the background; the page follows until it serves or fails). Helpers: pages.js.
"use strict";

const POLL_MS = 1500;
let polling = null;

// 134.5M parameters, 93.8 MiB: as `appliance models` and the doctor write them.
function count(n) {
  for (const [size, suffix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) {
    if (n >= size) return `${(n / size).toFixed(1)}${suffix}`;
  }
  return String(n);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i += 1) n /= 1024;
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}

function classed(text, className) {
  const td = cell(text);
  td.className = className;
  return td;
}

function pill(text, kind) {
  const span = document.createElement("span");
  span.className = `status-pill ${kind}`;
  span.textContent = text;
  return span;
}

function fileCell(m) {
  const td = classed(m.name, "path");
  const tags = [m.bundled && "bundled", m.configured && "llm.model"].filter(Boolean);
  if (tags.length) {
    const note = document.createElement("div");
    note.className = "note";
    note.textContent = tags.join(" · ");
    td.append(note);
  }
  return td;
}

function servingCell(m, view) {
  const td = document.createElement("td");
  td.className = "serving";
  if (m.name === view.served) td.append(pill("Serving", "serving"));
  else if (m.name === view.loading) td.append(pill("Loading…", "loading"));
  else if (m.error) { td.className = "reason"; td.textContent = m.error; }
  else {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small serve";
    button.textContent = "Serve this model";
    button.disabled = Boolean(view.loading || view.replaced);
    button.addEventListener("click", () => serve(m.name));
    td.append(button);
  }
  return td;
}

function row(m, view) {
  const tr = document.createElement("tr");
  tr.dataset.name = m.name;
  tr.className = m.name === view.served ? "served" : (m.error ? "unusable" : "");
  const i = m.info;
  tr.append(fileCell(m), cell(i ? i.name : "–"), cell(i ? i.architecture : "–"),
            cell(i ? i.quantization : "–"),
            classed(i ? count(i.parameters) : "–", "num"),
            classed(i ? i.context_length.toLocaleString("en") : "–", "num"),
            classed(i ? bytes(i.size_bytes) : "–", "num"),
            cell(i ? (i.supports_tools ? "yes" : "no") : "–"), servingCell(m, view));
  return tr;
}

function status(view) {
  if (view.loading) return `Loading ${view.loading}: ${view.served} answers until it has loaded.`;
  if (view.replaced) {
    return `Now serving ${view.served}. ${view.replaced} finishes ${view.finishing} ` +
      `answer${view.finishing === 1 ? "" : "s"}, then it is freed.`;
  }
  if (view.chosen) {
    const when = new Date(view.chosen.at * 1000).toLocaleString();
    return `${view.served} was chosen here by ${view.chosen.by} (${when}); it is served after a restart too.`;
  }
  return `${view.served} is the model the settings name (llm.model; empty: the bundled one).`;
}

function render(view) {
  $("models-dir").textContent = view.models_dir;
  $("state").textContent = view.loading ? `loading ${view.loading}…` : `serving ${view.served_id}`;
  $("status").textContent = status(view);
  $("failed").hidden = !view.error;
  $("failed").textContent = view.error ? `${view.failed} could not be served: ${view.error}` : "";
  $("rows").replaceChildren(...view.models.map((m) => row(m, view)));
  clearTimeout(polling);
  if (view.loading || view.replaced) polling = setTimeout(load, POLL_MS);
}

async function load() {
  try {
    render(await call("/api/models"));
  } catch (error) { showError(error); }
}

async function serve(name) {
  $("error").hidden = true;
  try {
    render(await call("/api/models/served", { method: "PUT", body: JSON.stringify({ name }) }));
  } catch (error) {
    showError(error);
    load();
  }
}

whenSignedIn(load);
