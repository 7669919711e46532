// The container list: one row per container, keyed by name, updated in place from the
// /api/stream tick each second (only the cells whose text changed are written), filtered and
// sorted on the client.
import { api, stream, enc } from "./api.js";
import { nav, status } from "./nav.js";
import { el, bytes, duration, pct, num, memOfLimit, ports, DASH } from "./format.js";
import { VERB_NAMES, verbEnabled, verbLabel, act } from "./actions.js";

// [key, header, text of a row, sort value of a row]
const COLUMNS = [
  ["name", "Name", (r) => r.name, (r) => r.name],
  ["image", "Image", (r) => r.image ?? DASH, (r) => r.image ?? ""],
  ["state", "State", (r) => r.state ?? DASH, (r) => r.state ?? ""],
  ["uptime", "Uptime", (r) => (r.state === "running" ? duration(r.uptime_s) : r.status ?? DASH),
    (r) => r.uptime_s ?? -1],
  ["cpu", "CPU", (r) => pct(r.cpu_pct), (r) => r.cpu_pct ?? -1],
  ["mem", "Memory", (r) => memOfLimit(r.mem_bytes, r.mem_limit), (r) => r.mem_bytes ?? -1],
  ["psi_cpu", "PSI cpu", (r) => num(r.psi_cpu_some10), (r) => r.psi_cpu_some10 ?? -1],
  ["psi_mem", "PSI mem", (r) => num(r.psi_mem_some10), (r) => r.psi_mem_some10 ?? -1],
  ["psi_io", "PSI io", (r) => num(r.psi_io_some10), (r) => r.psi_io_some10 ?? -1],
  ["ports", "Ports", (r) => ports(r.ports, "\n"), (r) => ports(r.ports)],
];

const rows = new Map(); // name -> {tr, cells: {key: td}, texts: {key: text}, row, buttons}
const tbody = document.getElementById("rows");
const filterBox = document.getElementById("filter");
const countLine = document.getElementById("count");
let sortKey = localStorage.getItem("kago.sort") || "name";
let sortDir = Number(localStorage.getItem("kago.sortdir") || 1);
let order = []; // names in the order the table shows them
window.kago = { rows, ticks: 0 };

function header() {
  const tr = document.getElementById("head");
  tr.replaceChildren(...COLUMNS.map(([key, label]) => {
    const th = el("th", { "data-key": key, class: "sortable", text: label, title: `sort by ${label}` });
    th.addEventListener("click", () => {
      sortDir = sortKey === key ? -sortDir : 1;
      sortKey = key;
      localStorage.setItem("kago.sort", sortKey);
      localStorage.setItem("kago.sortdir", String(sortDir));
      markSorted();
      arrange();
    });
    return th;
  }), el("th", { text: "" }));
  markSorted();
}

function markSorted() {
  for (const th of document.querySelectorAll("#head th[data-key]")) {
    th.classList.toggle("asc", th.dataset.key === sortKey && sortDir > 0);
    th.classList.toggle("desc", th.dataset.key === sortKey && sortDir < 0);
  }
}

function makeRow(r) {
  const cells = {};
  const tr = el("tr", { "data-name": r.name });
  for (const [key] of COLUMNS) {
    const td = el("td", { class: `c-${key}` });
    if (key === "name") {
      td.append(el("a", { href: `/c/${enc(r.name)}`, text: r.name }));
      td.append(el("span", { class: "group" }));
    }
    cells[key] = td;
    tr.append(td);
  }
  const buttons = {};
  const tools = el("td", { class: "tools" });
  for (const verb of VERB_NAMES) {
    buttons[verb] = el("button", { type: "button", class: verb === "rm" ? "small danger" : "small",
      "data-verb": verb, text: verbLabel(verb),
      onclick: () => act(verb, r.name) });
    tools.append(buttons[verb]);
  }
  tr.append(tools);
  return { tr, cells, texts: {}, row: r, buttons, state: null };
}

function update(entry, r) {
  entry.row = r;
  for (const [key, , text] of COLUMNS) {
    if (key === "name") {
      const g = r.group ? `${r.group}` : "";
      if (entry.texts.group !== g) {
        entry.cells.name.lastChild.textContent = g;
        entry.texts.group = g;
      }
      continue;
    }
    const t = text(r);
    if (entry.texts[key] !== t) {
      entry.cells[key].textContent = t;
      entry.texts[key] = t;
    }
  }
  if (entry.state !== r.state) {
    entry.state = r.state;
    entry.tr.dataset.state = r.state ?? "";
    entry.cells.state.className = `c-state state-${r.state}`;
    for (const verb of VERB_NAMES) entry.buttons[verb].disabled = !verbEnabled(verb, r.state);
  }
}

function matches(r, q) {
  if (!q) return true;
  return [r.name, r.image, r.state, r.group, r.id].some((v) => v && String(v).toLowerCase().includes(q));
}

function arrange() {
  const sorter = COLUMNS.find((c) => c[0] === sortKey)?.[3] ?? ((r) => r.name);
  const names = [...rows.keys()];
  names.sort((a, b) => {
    const va = sorter(rows.get(a).row), vb = sorter(rows.get(b).row);
    const c = typeof va === "number" && typeof vb === "number" ? va - vb : String(va).localeCompare(String(vb));
    return c * sortDir || a.localeCompare(b);
  });
  // move rows only when the order changed: a tick normally touches only text nodes
  if (names.length !== order.length || names.some((n, i) => n !== order[i])) {
    const frag = document.createDocumentFragment();
    for (const n of names) frag.append(rows.get(n).tr);
    tbody.append(frag);
    order = names;
  }
  const q = filterBox.value.trim().toLowerCase();
  let shown = 0;
  for (const n of names) {
    const e = rows.get(n);
    const show = matches(e.row, q);
    if (e.tr.hidden === show) e.tr.hidden = !show;
    if (show) shown++;
  }
  const running = names.filter((n) => rows.get(n).row.state === "running").length;
  countLine.textContent = `${names.length} containers, ${running} running` +
    (shown !== names.length ? `, ${shown} shown` : "");
  document.getElementById("empty").hidden = names.length !== 0;
}

function apply(list) {
  const seen = new Set();
  for (const r of list) {
    seen.add(r.name);
    let entry = rows.get(r.name);
    if (!entry) {
      entry = makeRow(r);
      rows.set(r.name, entry);
    }
    update(entry, r);
  }
  for (const [name, entry] of rows) {
    if (!seen.has(name)) {
      entry.tr.remove();
      rows.delete(name);
    }
  }
  arrange();
}

async function main() {
  header();
  filterBox.value = new URLSearchParams(location.search).get("q") || "";
  filterBox.addEventListener("input", arrange);
  await nav("/");
  try {
    apply(await api("/api/containers?all=1"));
  } catch (e) {
    status(e.message, "error", 0);
  }
  const live = document.getElementById("live");
  stream("/api/stream", {
    tick: (d) => {
      const t0 = performance.now();
      apply(d.containers || []);
      window.kago.applyMs = performance.now() - t0; // the DOM work of one tick
      window.kago.ticks++;
    },
  }, { onState: (s) => { live.textContent = s; live.className = `live ${s}`; } });
}

main();
