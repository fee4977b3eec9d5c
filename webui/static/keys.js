// My API keys: create (the key is shown once), list, revoke.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

const when = (s) => (s ? new Date(s * 1000).toLocaleString() : "–");

async function call(path, options = {}) {
  const response = await fetch(path, {
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, ...options,
  });
  if (response.status === 401) { location.assign("/signin"); throw new Error("signed out"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error.message);
  return body;
}

async function load() {
  const keys = await call("/api/keys");
  $("rows").replaceChildren(...keys.map((k) => {
    const tr = document.createElement("tr");
    const action = document.createElement("td");
    if (k.revoked_at) action.textContent = "revoked";
    else {
      const revoke = document.createElement("button");
      revoke.className = "small";
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", async () => {
        await call(`/api/keys/${k.id}`, { method: "DELETE" });
        load();
      });
      action.append(revoke);
    }
    tr.append(cell(String(k.id)), cell(k.name), cell(`${k.prefix}…`), cell(when(k.created_at)),
              cell(when(k.last_used_at)), action);
    return tr;
  }));
}

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const made = await call("/api/keys", {
      method: "POST", body: JSON.stringify({ name: $("name").value || "api" }),
    });
    $("secret").textContent = `Your new key (shown only now; copy it): ${made.secret}`;
    $("secret").hidden = false;
    load();
  } catch (error) { $("error").textContent = error.message; $("error").hidden = false; }
});

fetch("/api/me").then((r) => (r.ok ? r.json() : Promise.reject(new Error("signed out"))))
  .then((me) => { csrf = me.csrf || ""; load(); })
  .catch(() => location.assign("/signin"));
