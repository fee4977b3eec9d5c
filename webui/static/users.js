// Users (admins): add, disable or enable, erase a user's conversations. Helpers: pages.js.
"use strict";


function button(label, action) {
  const b = document.createElement("button");
  b.className = "small";
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", action);
  return b;
}


async function load() {
  const users = await call("/api/users");
  $("rows").replaceChildren(...users.map((u) => {
    const tr = document.createElement("tr");
    const actions = document.createElement("td");
    actions.append(
      button(u.disabled ? "Enable" : "Disable", () => call(`/api/users/${encodeURIComponent(u.name)}`, {
        method: "PATCH", body: JSON.stringify({ disabled: !u.disabled }),
      }).then(load, showError)),
      button("Erase conversations", () => {
        if (!confirm(`Delete every conversation of ${u.name}?`)) return;
        call(`/api/users/${encodeURIComponent(u.name)}/data`, { method: "DELETE" })
          .then((r) => alert(`${r.deleted} conversations deleted`), showError);
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
  } catch (error) { showError(error); }
});

whenSignedIn(load);
