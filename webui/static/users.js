// Users (admins): add, disable or enable, erase a user's conversations; each user's source
// (local, ldap, oidc) and groups, local groups given and taken. Helpers: pages.js.
"use strict";


function button(label, action) {
  const b = document.createElement("button");
  b.className = "small";
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", action);
  return b;
}


function changeGroups(name, change) {
  return call(`/api/users/${encodeURIComponent(name)}/groups`, {
    method: "PATCH", body: JSON.stringify(change),
  }).then(load, showError);
}


function groupsCell(u) {
  const td = document.createElement("td");
  for (const g of u.groups) {
    const tag = document.createElement("span");
    tag.className = "group";
    tag.textContent = g + " ";
    tag.append(button("×", () => {
      if (confirm(`Take ${u.name} out of ${g}?`)) changeGroups(u.name, { remove: [g] });
    }));
    td.append(tag);
  }
  td.append(button("+ group", () => {
    const g = prompt(`Put ${u.name} in which group?`);
    if (g && g.trim()) changeGroups(u.name, { add: [g.trim()] });
  }));
  return td;
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
    tr.append(cell(u.name), cell(u.source), cell(u.role), groupsCell(u),
      cell(u.disabled ? "disabled" : "active"), actions);
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
