// The groups page: each definition `kago up` started, its containers (linked to their pages)
// with their states, and reload / down after a confirmation.
import { api, enc } from "./api.js";
import { nav, status } from "./nav.js";
import { el } from "./format.js";
import { confirmAction } from "./dialog.js";

const VERBS = {
  reload: ["Reload", "Reload group {name} from its definition? Containers whose definition changed are replaced.", false],
  down: ["Down", "Take group {name} down? Its containers are stopped and removed.", true],
};

async function act(verb, name) {
  const [label, detail, danger] = VERBS[verb];
  if (!(await confirmAction(`${label} ${name}`, detail.replace("{name}", name), label, danger))) return;
  status(`${label.toLowerCase()} ${name}…`, "info", 0);
  try {
    await api(`/api/groups/${enc(name)}/${verb}`, { method: "POST" });
    status(`${label.toLowerCase()} ${name}: done`, "ok");
  } catch (e) {
    status(e.message, "error", 0);
  }
  await load();
}

// a group lists its containers' names: their states come from the container list
function containerChip(name, states) {
  const state = states.get(name) || "";
  return el("a", { class: `chip state-${state}`, href: `/c/${enc(name)}`, title: state,
    "data-state": state }, el("span", { class: "dot" }), name);
}

function card(g, states) {
  const defn = typeof g.definition === "string" ? g.definition : JSON.stringify(g.definition);
  return el("article", { class: "card group", "data-group": g.name },
    el("header", {},
      el("h2", { text: g.name }),
      el("span", { class: `badge ${g.running === g.total && g.total ? "state-running" : g.running ? "state-partial" : "state-exited"}`,
        text: `${g.running ?? 0} / ${g.total ?? (g.containers || []).length} running` }),
      el("span", { class: "spacer" }),
      el("button", { type: "button", "data-verb": "reload", text: "Reload", onclick: () => act("reload", g.name) }),
      el("button", { type: "button", class: "danger", "data-verb": "down", text: "Down", onclick: () => act("down", g.name) })),
    el("p", { class: "muted" }, "definition ", el("code", { text: defn || "–" })),
    el("div", { class: "chips" }, ...(g.containers || []).map((c) =>
      containerChip(typeof c === "string" ? c : c.name, states))));
}

async function load() {
  const box = document.getElementById("groups");
  try {
    const [groups, rows] = await Promise.all([api("/api/groups"), api("/api/containers?all=1")]);
    const states = new Map(rows.map((r) => [r.name, r.state]));
    box.replaceChildren(...groups.map((g) => card(g, states)));
    document.getElementById("empty").hidden = groups.length !== 0;
  } catch (e) {
    status(e.message, "error", 0);
  }
}

async function main() {
  await nav("/groups");
  await load();
  setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) load(); }, 5000);
}

main();
