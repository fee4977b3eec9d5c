// Sign-in, and on /setup#TOKEN the creation of the first admin with the server's one-time link.
"use strict";

const $ = (id) => document.getElementById(id);
const setup = location.pathname === "/setup";

if (setup) {
  $("heading").textContent = "Create the first admin";
  $("intro").textContent = "No account exists yet. Choose the admin's name and a password " +
    "(at least 10 characters); more accounts: appliance users add NAME.";
  $("password").autocomplete = "new-password";
  $("submit").textContent = "Create and sign in";
}

// The provider's "Sign in with …" button, and the password form only where it serves anyone.
if (!setup) {
  fetch("/api/auth").then((r) => r.json()).then((options) => {
    if (options.sso) {
      $("sso-link").textContent = `Sign in with ${options.sso}`;
      $("sso").hidden = false;
    }
    if (!options.password) $("form").hidden = true;
  }).catch(() => { /* the password form stays */ });
  const error = new URLSearchParams(location.search).get("error");
  if (error) { $("error").textContent = error; $("error").hidden = false; }
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: $("name").value, password: $("password").value };
  if (setup) body.token = location.hash.slice(1);
  const response = await fetch(setup ? "/api/setup" : "/api/session", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (response.ok) { location.assign("/"); return; }
  let message = `${response.status} ${response.statusText}`;
  try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
  $("error").textContent = message;
  $("error").hidden = false;
});
