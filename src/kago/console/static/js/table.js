// A plain table of the rows an API list returns (images, networks): one column per key, in the
// order the keys first appear, values written as people read them; sortable, filterable.
import { el, bytes, time } from "./format.js";

export function cellText(key, v) {
  if (v === null || v === undefined) return "–";
  const k = key.toLowerCase();
  if (k === "id" && typeof v === "string") return v.replace(/^sha256:/, "").slice(0, 12);
  if (typeof v === "number" && (k.includes("size") || k.endsWith("bytes"))) return bytes(v);
  if (k.includes("created") || k.endsWith("_at")) return time(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" ? JSON.stringify(x) : String(x))).join(", ");
  if (typeof v === "object") return Object.entries(v).map(([a, b]) => `${a}=${typeof b === "object" ? JSON.stringify(b) : b}`).join(", ");
  return String(v);
}

function sortValue(v) {
  if (typeof v === "number") return v;
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

export function rowTable(box, rows, { columns, filter } = {}) {
  const keys = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
  let sortKey = keys[0];
  let dir = 1;
  const tbody = el("tbody");
  const head = el("tr", {}, ...keys.map((k) => el("th", { class: "sortable", "data-key": k, text: k,
    onclick: () => {
      dir = sortKey === k ? -dir : 1;
      sortKey = k;
      draw();
    } })));
  function draw() {
    const q = (filter?.value || "").trim().toLowerCase();
    const sorted = [...rows].sort((a, b) => {
      const va = sortValue(a[sortKey]), vb = sortValue(b[sortKey]);
      return (typeof va === "number" && typeof vb === "number" ? va - vb : String(va).localeCompare(String(vb))) * dir;
    });
    tbody.replaceChildren(...sorted
      .filter((r) => !q || JSON.stringify(r).toLowerCase().includes(q))
      .map((r) => el("tr", {}, ...keys.map((k) => el("td", { class: `c-${k}`, text: cellText(k, r[k]) })))));
    for (const th of head.children) {
      th.classList.toggle("asc", th.dataset.key === sortKey && dir > 0);
      th.classList.toggle("desc", th.dataset.key === sortKey && dir < 0);
    }
  }
  filter?.addEventListener("input", draw);
  box.replaceChildren(el("table", { class: "grid" }, el("thead", {}, head), tbody));
  draw();
}
