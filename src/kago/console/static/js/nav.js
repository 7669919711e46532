// The bar at the top of every page: the pages, who is logged in, log out; and a status line.
import { api, toLogin } from "./api.js";
import { el } from "./format.js";

const PAGES = [
  ["/", "Containers"],
  ["/groups", "Groups"],
  ["/images", "Images"],
  ["/networks", "Networks"],
];

export async function nav(active) {
  const bar = document.getElementById("nav");
  const links = PAGES.map(([href, label]) =>
    el("a", { href, class: href === active ? "active" : null, text: label }));
  const who = el("span", { class: "who" });
  const out = el("button", { class: "ghost", type: "button", text: "Log out", hidden: true,
    onclick: async () => {
      await api("/api/logout", { method: "POST", allow401: true }).catch(() => {});
      toLogin();
    } });
  const login = el("a", { href: "/login", class: "ghost", text: "Log in", hidden: true });
  bar.replaceChildren(el("a", { href: "/", class: "brand", text: "kago" }),
    el("div", { class: "links" }, ...links), el("div", { class: "spacer" }), who, login, out);
  try {
    const me = await api("/api/whoami", { allow401: true });
    if (me && me.reads_need_token && !me.authenticated) {
      toLogin();
      return me;
    }
    who.textContent = me && me.authenticated ? "logged in" : "read-only";
    out.hidden = !(me && me.authenticated);
    login.hidden = !!(me && me.authenticated);
    return me;
  } catch (e) {
    status(e.message, "error");
    return null;
  }
}

let statusTimer = null;

// One line under the bar: what the last action did, or why it failed.
export function status(text, kind = "info", ms = 6000) {
  const line = document.getElementById("status");
  if (!line) return;
  line.textContent = text;
  line.className = `status ${kind}`;
  line.hidden = !text;
  clearTimeout(statusTimer);
  if (ms) statusTimer = setTimeout(() => (line.hidden = true), ms);
}
