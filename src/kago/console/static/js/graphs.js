// The container page's live graphs (uPlot): seeded from /history (10 minutes), then one sample
// a second from /samples. The data is kept in `series` (also window.kago.series), the last ten
// minutes of it; the graphs are redrawn from it after each sample.
import uPlot from "/static/vendor/uPlot.esm.js";
import { bytes, pct, num } from "./format.js";

export const WINDOW_S = 600;
const KEYS = ["cpu_pct", "mem_bytes", "io_read_bytes", "io_write_bytes", "pids",
  "psi_cpu_some10", "psi_mem_some10", "psi_io_some10"];

export const series = { t: [], mem_limit: null, io_read_rate: [], io_write_rate: [] };
for (const k of KEYS) series[k] = [];

const COLORS = { a: "#4f8cff", b: "#f0a030", c: "#e05070", d: "#40c080", limit: "#888" };

const charts = {};

// the x axis: what there is, up to the last ten minutes (at least a minute)
function xRange(u, lo, hi) {
  if (hi == null) return [Date.now() / 1000 - 60, Date.now() / 1000];
  return [Math.max(hi - WINDOW_S, Math.min(lo, hi - 60)), hi];
}

function axisBytes(u, vals) {
  return vals.map((v) => bytes(v));
}

function rateBytes(u, vals) {
  return vals.map((v) => `${bytes(v)}/s`);
}

// What each graph shows: its series (key in `series`, label, color) and how its values read.
const SPECS = {
  cpu: { keys: [["cpu_pct", "CPU %", COLORS.a]], fmt: (v) => pct(v), axis: (u, vs) => vs.map((v) => `${v}%`), min: 0, floor: 5 },
  mem: { keys: [["mem_bytes", "used", COLORS.a], ["mem_limit_line", "limit", COLORS.limit, true]],
    fmt: (v) => bytes(v), axis: axisBytes, min: 0, floor: 1 << 20 },
  io: { keys: [["io_read_rate", "read", COLORS.a], ["io_write_rate", "write", COLORS.b]],
    fmt: (v) => `${bytes(v)}/s`, axis: rateBytes, min: 0, floor: 4096 },
  pids: { keys: [["pids", "PIDs", COLORS.d]], fmt: (v) => num(v, 0), axis: (u, vs) => vs.map((v) => String(v)), min: 0, floor: 4 },
  psi: { keys: [["psi_cpu_some10", "cpu", COLORS.a], ["psi_mem_some10", "memory", COLORS.b],
    ["psi_io_some10", "io", COLORS.c]], fmt: (v) => num(v), axis: (u, vs) => vs.map((v) => `${v}%`), min: 0, floor: 1 },
};

function column(key) {
  if (key === "mem_limit_line") return series.t.map(() => series.mem_limit);
  return series[key];
}

function dataOf(name) {
  return [series.t, ...SPECS[name].keys.map(([k]) => column(k))];
}

function make(name) {
  const fig = document.getElementById(`g-${name}`);
  const spec = SPECS[name];
  const opts = {
    width: Math.max(200, fig.clientWidth - 16),
    height: 150,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true, range: xRange }, y: { range: (u, lo, hi) => [spec.min ?? lo, Math.max(hi * 1.1, spec.floor)] } },
    axes: [{ stroke: "#9aa4b2", grid: { stroke: "#2a3140" }, ticks: { stroke: "#2a3140" } },
      { stroke: "#9aa4b2", grid: { stroke: "#2a3140" }, ticks: { stroke: "#2a3140" }, values: spec.axis, size: 70 }],
    series: [{}, ...spec.keys.map(([, label, color, dashed]) => ({
      label, stroke: color, width: 1.5, dash: dashed ? [6, 4] : undefined,
      fill: dashed ? undefined : color + "22", value: (u, v) => (v == null ? "–" : spec.fmt(v)),
      spanGaps: false,
    }))],
  };
  charts[name] = new uPlot(opts, dataOf(name), fig);
}

// Rates from cumulative byte counters: (v[i] - v[i-1]) / (t[i] - t[i-1]); a counter that went
// back (a restart) gives no point.
function rate(values, i) {
  if (i === 0) return null;
  const dv = values[i] - values[i - 1], dt = series.t[i] - series.t[i - 1];
  if (values[i] == null || values[i - 1] == null || dt <= 0 || dv < 0) return null;
  return dv / dt;
}

function trim() {
  const t = series.t;
  if (!t.length) return;
  const from = t[t.length - 1] - WINDOW_S;
  let n = 0;
  while (n < t.length && t[n] < from) n++;
  if (!n) return;
  for (const k of ["t", "io_read_rate", "io_write_rate", ...KEYS]) series[k].splice(0, n);
}

function redraw() {
  for (const name of Object.keys(charts)) charts[name].setData(dataOf(name));
  const last = series.t.length - 1;
  const now = {
    cpu: pct(series.cpu_pct[last]),
    mem: series.mem_limit ? `${bytes(series.mem_bytes[last])} of ${bytes(series.mem_limit)}` : bytes(series.mem_bytes[last]),
    io: `read ${bytes(series.io_read_rate[last])}/s, write ${bytes(series.io_write_rate[last])}/s`,
    pids: num(series.pids[last], 0),
    psi: `cpu ${num(series.psi_cpu_some10[last])} · mem ${num(series.psi_mem_some10[last])} · io ${num(series.psi_io_some10[last])}`,
  };
  for (const [name, text] of Object.entries(now)) {
    const fig = document.getElementById(`g-${name}`);
    fig.querySelector(".now").textContent = last >= 0 ? text : "";
    fig.dataset.points = String(series.t.length);
  }
  const mem = document.getElementById("g-mem");
  mem.dataset.last = String(series.mem_bytes[last] ?? "");
}

function push(sample) {
  const t = series.t;
  if (sample.t == null || (t.length && sample.t <= t[t.length - 1])) return false;
  t.push(sample.t);
  for (const k of KEYS) series[k].push(sample[k] ?? null);
  const i = t.length - 1;
  series.io_read_rate.push(rate(series.io_read_bytes, i));
  series.io_write_rate.push(rate(series.io_write_bytes, i));
  if (sample.mem_limit !== undefined) series.mem_limit = sample.mem_limit;
  return true;
}

export function seed(history) {
  series.mem_limit = history.mem_limit ?? null;
  const n = (history.t || []).length;
  for (let i = 0; i < n; i++) {
    const s = { t: history.t[i] };
    for (const k of KEYS) s[k] = history[k] ? history[k][i] : null;
    push(s);
  }
  trim();
  redraw();
}

export function append(sample) {
  if (push(sample)) {
    trim();
    redraw();
  }
}

export function init() {
  for (const name of Object.keys(SPECS)) make(name);
  const ro = new ResizeObserver(() => {
    for (const [name, chart] of Object.entries(charts)) {
      const fig = document.getElementById(`g-${name}`);
      const w = Math.max(200, fig.clientWidth - 16);
      if (Math.abs(chart.width - w) > 2) chart.setSize({ width: w, height: 150 });
    }
  });
  ro.observe(document.getElementById("graphs"));
  window.kago = Object.assign(window.kago || {}, { series, charts });
}
