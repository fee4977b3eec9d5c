// My API keys: create (the key is shown once, with an expiry), list, revoke. Helpers: pages.js.
"use strict";


const when = (s) => (s ? new Date(s * 1000).toLocaleString() : "–");

async function load() {
  const keys = await call("/api/keys");
  $("rows").replaceChildren(...keys.map((k) => {
    const tr = document.createElement("tr");
    const action = document.createElement("td");
    if (k.revoked_at) action.textContent = "revoked";
    else if (k.expires_at && k.expires_at * 1000 <= Date.now()) action.textContent = "expired";
    else {
      const revoke = document.createElement("button");
      revoke.className = "small";
      revoke.textContent = "Revoke";
      revoke.addEventListener("click", async () => {
        await call(`/api/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
        load();
      });
      action.append(revoke);
    }
    tr.append(cell(String(k.id)), cell(k.name), cell(`${k.prefix}…`), cell(when(k.created_at)),
              cell(when(k.last_used_at)), cell(k.expires_at ? when(k.expires_at) : "never"),
              action);
    return tr;
  }));
}

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const days = $("expires").value;
    const body = { name: $("name").value || "api" };
    if (days) body.expires_in_days = Number(days);
    const made = await call("/api/keys", { method: "POST", body: JSON.stringify(body) });
    $("secret").textContent = `Your new key (shown only now; copy it): ${made.secret}`;
    $("secret").hidden = false;
    load();
  } catch (error) { showError(error); }
});

whenSignedIn(load);
