// What the admin and account pages share: table cells, API calls with the CSRF token, and
// sending a signed-out visitor to the sign-in page.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
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

function showError(error) {
  $("error").textContent = error.message;
  $("error").hidden = false;
}

// Runs `start` once the visitor is known to be signed in (and the CSRF token is at hand).
function whenSignedIn(start) {
  fetch("/api/me").then((r) => (r.ok ? r.json() : Promise.reject(new Error("signed out"))))
    .then((me) => { csrf = me.csrf || ""; start(); })
    .catch(() => location.assign("/signin"));
}
