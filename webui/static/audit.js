// The audit log page (admins): newest records first, filtered by actor and action.
"use strict";


async function load() {
  const query = new URLSearchParams({ actor: $("actor").value, action: $("action").value });
  const [records, verdict] = await Promise.all([
    fetch(`/api/audit?${query}`), fetch("/api/audit/verify"),
  ]);
  if (records.status === 401) { location.assign("/signin"); return; }
  if (!records.ok) {
    $("error").textContent = (await records.json()).error.message;
    $("error").hidden = false;
    return;
  }
  const chain = await verdict.json();
  $("chain").textContent = chain.intact ? `chain intact (${chain.records} records)`
    : `CHAIN BROKEN: ${chain.problem}`;
  $("rows").replaceChildren(...(await records.json()).map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(String(r.id)), cell(new Date(r.at * 1000).toLocaleString()), cell(r.actor),
              cell(r.action), cell(r.target), cell(r.detail), cell(r.address || ""));
    return tr;
  }));
}

$("filter").addEventListener("submit", (event) => { event.preventDefault(); load(); });
load();
