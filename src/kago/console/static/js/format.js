// Numbers as people read them: bytes in binary units, durations, percentages; null as "–".

export const DASH = "–";

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 || v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function duration(s) {
  if (s === null || s === undefined) return DASH;
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${sec}s`;
  return `${sec}s`;
}

export function pct(v, digits = 1) {
  if (v === null || v === undefined) return DASH;
  return `${Number(v).toFixed(digits)}%`;
}

export function num(v, digits = 2) {
  if (v === null || v === undefined) return DASH;
  return Number(v).toFixed(digits);
}

export function memOfLimit(used, limit) {
  if (used === null || used === undefined) return DASH;
  if (!limit) return bytes(used);
  return `${bytes(used)} / ${bytes(limit)}`;
}

export function ports(list, sep = ", ") {
  if (!list || !list.length) return "";
  return list.map((p) => (typeof p === "string" ? p : portText(p))).join(sep);
}

function portText(p) {
  const host = p.host_port ?? p.HostPort ?? p.host ?? "";
  const ctr = p.container_port ?? p.ContainerPort ?? p.port ?? "";
  const proto = p.proto ?? p.protocol ?? p.Type ?? "tcp";
  const ip = p.host_ip ?? p.HostIp ?? "";
  return `${ip ? ip + ":" : ""}${host}→${ctr}/${proto}`;
}

export function time(t) {
  if (!t) return DASH;
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
