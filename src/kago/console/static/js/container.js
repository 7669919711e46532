// One container's page: its state and actions, live graphs, logs, an interactive terminal and
// its inspect document. The name is the last part of the path (/c/NAME).
import { api, stream, enc } from "./api.js";
import { nav, status } from "./nav.js";
import { el, duration } from "./format.js";
import { VERB_NAMES, verbEnabled, verbLabel, act } from "./actions.js";
import * as graphs from "./graphs.js";
import { followLogs } from "./logs.js";
import { renderInspect } from "./inspect.js";
import { openTerminal, terminalText } from "./terminal.js";

const name = decodeURIComponent(location.pathname.replace(/^\/c\//, "").replace(/\/$/, ""));
const buttons = {};
let term = null;
let logs = null;
let me = null; // /api/whoami: a shell needs a login even where reads do not

let shownState = null;

function showState(doc) {
  const st = doc?.State || {};
  const state = st.Status || (st.Running ? "running" : "exited");
  // running again (start, restart, a restart policy): the log's stream had ended; follow anew
  if (logs && state === "running" && shownState !== null && shownState !== "running") {
    logs.close();
    logs = followLogs(name);
  }
  // running again with the terminal open and not connected: connect
  if (term && state === "running" && shownState !== null && shownState !== "running") term.connect();
  shownState = state;
  const badge = document.getElementById("state");
  badge.textContent = state;
  badge.className = `badge state-${state}`;
  badge.dataset.state = state;
  const image = doc?.Config?.Image || doc?.Image || "";
  const since = st.Running && st.StartedAt ? ` · up ${duration((Date.now() - Date.parse(st.StartedAt)) / 1000)}` : "";
  const exit = !st.Running && st.ExitCode !== undefined ? ` · exit code ${st.ExitCode}` : "";
  document.getElementById("summary").textContent = `${image}${since}${exit}`;
  for (const verb of VERB_NAMES) buttons[verb].disabled = !verbEnabled(verb, state);
}

async function refresh() {
  try {
    const doc = await api(`/api/containers/${enc(name)}`);
    const d = Array.isArray(doc) ? doc[0] : doc;
    showState(d);
    renderInspect(d);
    return d;
  } catch (e) {
    if (e.status === 404) {
      document.getElementById("state").textContent = "gone";
      document.getElementById("state").dataset.state = "gone";
    }
    status(e.message, "error", 0);
    return null;
  }
}

function actions() {
  const box = document.getElementById("actions");
  for (const verb of VERB_NAMES) {
    buttons[verb] = el("button", { type: "button", class: verb === "rm" ? "danger" : "",
      "data-verb": verb, text: verbLabel(verb),
      onclick: async () => {
        if (!(await act(verb, name))) return;
        if (verb === "rm") location.assign("/");
        else await refresh();
      } });
    box.append(buttons[verb]);
  }
}

function tabs() {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t === tab);
      for (const p of document.querySelectorAll(".pane")) p.hidden = p.id !== `pane-${tab.dataset.tab}`;
      if (tab.dataset.tab === "terminal" && !term) {
        term = openTerminal(name);
        if (me && !me.authenticated) term.idle("log in (the bar above) to open a shell");
        else if (shownState === "running") term.connect();
        else term.idle("the container is not running: start it to open a shell");
      }
      if (tab.dataset.tab === "inspect") refresh();
    });
  }
}

async function main() {
  document.title = `kago · ${name}`;
  document.getElementById("name").textContent = name;
  actions();
  tabs();
  graphs.init();
  window.kago = Object.assign(window.kago || {}, { name, terminalText: () => (term ? terminalText(term.term) : "") });
  me = await nav("");
  const doc = await refresh();
  if (!doc) return;
  try {
    graphs.seed(await api(`/api/containers/${enc(name)}/history`));
  } catch (e) {
    status(e.message, "error");
  }
  stream(`/api/containers/${enc(name)}/samples`, { sample: (s) => graphs.append(s) });
  logs = followLogs(name);
  // the state also changes from outside (kago stop, an exit): look again every few seconds
  setInterval(() => { if (!document.hidden) refreshState(); }, 3000);
}

async function refreshState() {
  try {
    const doc = await api(`/api/containers/${enc(name)}`);
    showState(Array.isArray(doc) ? doc[0] : doc);
  } catch {
    /* shown by refresh() */
  }
}

main();
