// Runs a page's scripts (comma-separated files) in a bare context, at an address (`location`:
// its hash or its query); every DOM object a do-nothing stub, fetch answered from a table.
// Prints the URLs the page fetched and what `probe`, evaluated in the page, gives (`@path`:
// the probe is that file's text).
"use strict";
const fs = require("fs");
const vm = require("vm");
const [files, address, probeArg] = process.argv.slice(2);
const probe = probeArg.startsWith("@") ? fs.readFileSync(probeArg.slice(1), "utf8") : probeArg;

// A DOM object that does nothing: any property is another such object (or what was set on
// it), any call returns one.
function stub() {
  const values = new Map();
  return new Proxy(() => {}, {
    get(_, key) {
      if (key === Symbol.toPrimitive) return () => "";
      if (key === "then") return undefined;
      if (key === Symbol.iterator) return function* () {};
      if (!values.has(key)) values.set(key, stub());
      return values.get(key);
    },
    set(_, key, value) { values.set(key, value); return true; },
    apply() { return stub(); },
  });
}
const fetched = [];
const answers = {
  "/api/me": { name: "ann", role: "admin", csrf: "t" },
  "/v1/models": { data: [{ id: "m" }] },
  "/api/privacy": { prompts: "off", documents: "off", output: "off" },
  "/api/collections": {},
  "/api/conversations": [],
};
function respond(url) {
  const path = url.split("#")[0];
  let body = answers[path];
  if (body === undefined && /^\/api\/conversations\/[^/]+$/.test(path)) {
    body = { id: path.split("/").pop(), title: "t", messages: [] };
  }
  if (body === undefined) body = { messages: [{ role: "assistant", html: "<b>x</b>", content: "x" }] };
  return { ok: true, status: 200, statusText: "OK", headers: { get: () => null },
           json: async () => body };
}
const context = {
  console, URLSearchParams, setTimeout, Map, Array, Number, String, JSON, Error,
  location: { hash: address.startsWith("#") ? address : "",
              search: address.startsWith("?") ? address : "", assign: (u) => fetched.push(`assign ${u}`) },
  history: { replaceState: () => {} },
  document: stub(), navigator: stub(), window: stub(), NodeFilter: stub(),
  confirm: () => true, prompt: () => "", alert: () => {},
  fetch: async (url) => { fetched.push(String(url)); return respond(String(url)); },
};
vm.createContext(context);
for (const file of files.split(",")) {
  vm.runInContext(fs.readFileSync(file, "utf8"), context, { filename: file });
}
setTimeout(() => {
  const result = probe ? vm.runInContext(probe, context) : null;
  process.stdout.write(JSON.stringify({ fetched, result }));
}, 200);
