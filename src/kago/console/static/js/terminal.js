// An interactive shell in the container: xterm.js over the console's WebSocket. Keys go out as
// {"type":"input","data"}, the size as {"type":"resize","cols","rows"} whenever the fit addon
// changes it; the server's output (binary or text frames) is written to the terminal as is.
import { Terminal } from "/static/vendor/xterm.mjs";
import { FitAddon } from "/static/vendor/addon-fit.mjs";
import { enc } from "./api.js";

export function openTerminal(name) {
  const box = document.getElementById("terminal");
  const state = document.getElementById("term-state");
  const term = new Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5000,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace",
    theme: { background: "#0d1117", foreground: "#d8dee9" } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  let ws = null;

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  function connect() {
    if (ws) ws.close();
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/api/containers/${enc(name)}/terminal` +
      `?cols=${term.cols}&rows=${term.rows}`);
    ws.binaryType = "arraybuffer";
    state.textContent = "connecting";
    const mine = ws;
    ws.onopen = () => {
      state.textContent = "connected";
      term.focus();
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") term.write(ev.data);
      else term.write(new Uint8Array(ev.data));
    };
    ws.onclose = (ev) => {
      if (mine !== ws) return;
      // a refusal before the handshake (no such container, not running) reaches the page
      // only as 1006 without a reason
      const why = ev.reason || (ev.code === 1006 ? "refused, or the connection was lost" : "");
      state.textContent = `closed${ev.code && ev.code !== 1000 ? ` (${ev.code}${why ? ": " + why : ""})` : ""}`;
      term.write("\r\n[the shell has ended]\r\n");
    };
  }

  term.onData((data) => send({ type: "input", data }));
  term.onResize(({ cols, rows }) => send({ type: "resize", cols, rows }));
  new ResizeObserver(() => {
    if (box.offsetParent !== null) fit.fit();
  }).observe(box);
  document.getElementById("term-reconnect").addEventListener("click", connect);
  window.kago = Object.assign(window.kago || {}, { term });
  return { term, connect, idle: (why) => { state.textContent = why; } };
}

// The terminal's text as lines (for people copying it, and for tests reading it back).
export function terminalText(term) {
  const buf = term.buffer.active;
  const lines = [];
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? "");
  return lines.join("\n");
}
