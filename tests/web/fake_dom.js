// A DOM just big enough for the chat page's streamed answer: elements that hold children and
// text, and a <template> that keeps the HTML it is given as one node (its source), so that
// `serialize` shows the HTML the page holds, in the order the page put it.
"use strict";

class FakeNode {
  constructor(tag, html = "") {
    this.tag = tag;
    this.html = html;
    this.className = "";
    this.childNodes = [];
    this.parentNode = null;
    this.text = "";
    if (tag === "template") this.content = { childNodes: [] };
  }
  append(...nodes) { for (const node of nodes) this.insert(node, this.childNodes.length); }
  prepend(...nodes) { nodes.reverse().forEach((node) => this.insert(node, 0)); }
  before(...nodes) {
    for (const node of nodes) this.parentNode.insert(node, this.parentNode.childNodes.indexOf(this));
  }
  insert(node, at) {
    const child = typeof node === "string" ? new FakeNode("#text", node) : node;
    child.remove();
    child.parentNode = this;
    this.childNodes.splice(at, 0, child);
  }
  remove() {
    if (!this.parentNode) return;
    this.parentNode.childNodes.splice(this.parentNode.childNodes.indexOf(this), 1);
    this.parentNode = null;
  }
  get textContent() { return this.text + this.childNodes.map((c) => c.textContent).join(""); }
  set textContent(text) { this.childNodes = []; this.text = text; }
  set innerHTML(html) { this.content.childNodes = html ? [new FakeNode("#html", html)] : []; }
}

function fakeDocument() {
  return { createElement: (tag) => new FakeNode(tag) };
}

// The node's children as HTML: parsed HTML as given, elements as tag, class and text.
function serialize(node) {
  return node.childNodes.map((c) => {
    if (c.tag === "#html") return c.html;
    if (c.tag === "#text") return c.text;
    return `<${c.tag} class="${c.className}">${c.text}${serialize(c)}</${c.tag}>`;
  }).join("");
}
