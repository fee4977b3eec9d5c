// Users (admins): add, disable or enable, erase a user's conversations.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function button(label, action) {
  const b = document.createElement("button");
  b.className = "small";
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", action);
  return b;
}

async function call(path, options = {}) {
  const response = await fetch(path, {
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, ...options,
  });
  if (response.status === 401) { location.assign("/signin"); throw new Error("signed out"); }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error.message);
  return body;
}

function fail(error) { $("error").textContent = error.message; $("error").hidden = false; }

async function load() {
  const users = await call("/api/users");
  $("rows").replaceChildren(...users.map((u) => {
    const tr = document.createElement("tr");
    const actions = document.createElement("td");
    actions.append(
      button(u.disabled ? "Enable" : "Disable", () => call(`/api/users/${encodeURIComponent(u.name)}`, {
        method: "PATCH", body: JSON.stringify({ disabled: !u.disabled }),
      }).then(load, fail)),
      button("Erase conversations", () => {
        if (!confirm(`Delete every conversation of ${u.name}?`)) return;
        call(`/api/users/${encodeURIComponent(u.name)}/data`, { method: "DELETE" })
          .then((r) => alert(`${r.deleted} conversations deleted`), fail);
      }),
    );
    tr.append(cell(u.name), cell(u.role), cell(u.disabled ? "disabled" : "active"), actions);
    return tr;
  }));
}

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await call("/api/users", { method: "POST", body: JSON.stringify({
      name: $("name").value, password: $("password").value, role: $("role").value }) });
    $("create").reset();
    load();
  } catch (error) { fail(error); }
});

fetch("/api/me").then((r) => (r.ok ? r.json() : Promise.reject(new Error("signed out"))))
  .then((me) => { csrf = me.csrf || ""; load(); })
  .catch(() => location.assign("/signin"));
