// Start, stop, restart and remove a container, each after a confirmation; shared by the list
// and the container page. Resolves true when the server did it.
import { api, enc } from "./api.js";
import { confirmAction } from "./dialog.js";
import { status } from "./nav.js";

const VERBS = {
  start: { label: "Start", detail: "Start container {name}?" },
  stop: { label: "Stop", detail: "Stop container {name}? Its processes get SIGTERM, then SIGKILL." },
  restart: { label: "Restart", detail: "Restart container {name}?" },
  rm: { label: "Remove", detail: "Remove container {name}? A running one is killed first; its writable layer is deleted.", danger: true },
};

export const VERB_NAMES = Object.keys(VERBS);

export function verbLabel(verb) {
  return VERBS[verb].label;
}

// Which verbs make sense in a state: a running container can be stopped or restarted, a stopped
// one started; every one can be removed.
export function verbEnabled(verb, state) {
  const running = state === "running" || state === "paused" || state === "restarting";
  if (verb === "start") return !running;
  if (verb === "stop") return running;
  return true;
}

export async function act(verb, name) {
  const v = VERBS[verb];
  const ok = await confirmAction(`${v.label} ${name}`, v.detail.replace("{name}", name), v.label,
    !!v.danger);
  if (!ok) return false;
  status(`${v.label.toLowerCase()} ${name}…`, "info", 0);
  try {
    if (verb === "rm") {
      await api(`/api/containers/${enc(name)}?force=1`, { method: "DELETE" });
    } else {
      await api(`/api/containers/${enc(name)}/${verb}`, { method: "POST" });
    }
    status(`${v.label.toLowerCase()} ${name}: done`, "ok");
    return true;
  } catch (e) {
    status(e.message, "error", 0);
    return false;
  }
}
