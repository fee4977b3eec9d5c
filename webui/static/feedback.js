// The feedback page (admins): answers rated down, with the question and the comment.
"use strict";


async function load() {
  const response = await fetch("/api/feedback?rating=down");
  if (response.status === 401) { location.assign("/signin"); return; }
  const body = await response.json();
  if (!response.ok) { $("error").textContent = body.error.message; $("error").hidden = false; return; }
  $("rows").replaceChildren(...body.map((f) => {
    const tr = document.createElement("tr");
    tr.append(cell(new Date(f.created_at * 1000).toLocaleString()), cell(f.user || "–"),
              cell(f.question), cell(f.answer), cell(f.comment));
    return tr;
  }));
  $("empty").hidden = body.length > 0;
}

load();
