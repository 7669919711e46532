// The container's log, followed over SSE: one element per line, at most MAX_LINES in the DOM
// (the oldest go first), kept scrolled to the end while "follow" is on.
import { stream, enc } from "./api.js";
import { el } from "./format.js";

export const MAX_LINES = 2000;

export function followLogs(name) {
  const box = document.getElementById("logs");
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

  return stream(`/api/containers/${enc(name)}/logs?tail=200&follow=1`, {
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
}
