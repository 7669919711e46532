// docker inspect's document as a key/value table: scalars in a row, objects and lists as
// collapsible sections (<details>), the top-level ones open where they are small.
import { el } from "./format.js";

function scalar(v) {
  if (v === null || v === undefined) return el("span", { class: "null", text: "null" });
  if (typeof v === "boolean") return el("span", { class: "bool", text: String(v) });
  if (typeof v === "number") return el("span", { class: "number", text: String(v) });
  if (v === "") return el("span", { class: "null", text: '""' });
  return el("span", { class: "string", text: String(v) });
}

function isEmpty(v) {
  return (Array.isArray(v) && v.length === 0) ||
    (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0);
}

function size(v) {
  return Array.isArray(v) ? `[${v.length}]` : `{${Object.keys(v).length}}`;
}

export function table(obj, depth = 0) {
  const tbody = el("tbody");
  const entries = Array.isArray(obj) ? obj.map((v, i) => [String(i), v]) : Object.entries(obj);
  for (const [k, v] of entries) {
    const key = el("th", { text: k });
    let value;
    if (v && typeof v === "object" && !isEmpty(v)) {
      const allScalars = Array.isArray(v) && v.every((x) => x === null || typeof x !== "object");
      if (allScalars && v.length <= 8) {
        value = el("td", {}, el("span", { class: "list" }, ...v.map((x) => el("code", { text: String(x) }))));
      } else {
        const open = depth === 0 && JSON.stringify(v).length < 1200;
        value = el("td", {}, el("details", { open },
          el("summary", { text: size(v) }), table(v, depth + 1)));
      }
    } else if (isEmpty(v)) {
      value = el("td", {}, el("span", { class: "null", text: Array.isArray(v) ? "[]" : "{}" }));
    } else {
      value = el("td", {}, scalar(v));
    }
    tbody.append(el("tr", {}, key, value));
  }
  return el("table", { class: "kv" }, tbody);
}

export function renderInspect(doc) {
  const box = document.getElementById("inspect");
  const d = Array.isArray(doc) ? doc[0] : doc;
  box.replaceChildren(table(d || {}));
}
