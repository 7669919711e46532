// The container's log, followed over SSE: one element per line, at most MAX_LINES in the DOM
// (the oldest go first), kept scrolled to the end while "follow" is on. The server ends the
// stream ("end") when the container stops: then it is closed (an EventSource would reconnect
// and replay the tail), and followLogs is called again when the container runs again.
import { stream, enc } from "./api.js";
import { el } from "./format.js";

export const MAX_LINES = 2000;

export function followLogs(name) {
  const box = document.getElementById("logs");
  box.replaceChildren();
  const follow = document.getElementById("logs-follow");
  const count = document.getElementById("logs-count");
  let total = 0;
  let pending = [];
  let scheduled = false;

  // lines arrive in bursts (the tail first): add them once a frame
  function flush() {
    scheduled = false;
    const frag = document.createDocumentFragment();
    for (const l of pending) frag.append(el("div", { class: `line ${l.stream || "stdout"}`, text: l.text }));
    pending = [];
    box.append(frag);
    while (box.childElementCount > MAX_LINES) box.firstElementChild.remove();
    count.textContent = total > MAX_LINES ? `last ${MAX_LINES} of ${total} lines` : `${total} lines`;
    if (follow.checked) box.scrollTop = box.scrollHeight;
  }

  const es = stream(`/api/containers/${enc(name)}/logs?tail=200&follow=1`, {
    end: () => {
      es.close();
      pending.push({ stream: "note", text: "— the log ends here: the container is not running —" });
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    },
    error: (e) => {
      es.close();
      pending.push({ stream: "stderr", text: `— the log could not be read: ${e.error} —` });
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    },
    line: (l) => {
      total++;
      pending.push(l);
      if (pending.length > MAX_LINES) pending.splice(0, pending.length - MAX_LINES);
      if (!scheduled) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    },
  });
  return es;
}
