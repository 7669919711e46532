// A confirmation before anything that changes a container or a group: a modal <dialog>.
import { el } from "./format.js";

export function confirmAction(title, detail, verb = "Confirm", danger = false) {
  return new Promise((resolve) => {
    const yes = el("button", { type: "submit", value: "yes", class: danger ? "danger" : "primary",
      text: verb, "data-confirm": "yes" });
    const no = el("button", { type: "submit", value: "no", class: "ghost", text: "Cancel",
      "data-confirm": "no" });
    const form = el("form", { method: "dialog" }, el("h2", { text: title }),
      el("p", { text: detail }), el("div", { class: "actions" }, no, yes));
    const dlg = el("dialog", { class: "confirm" }, form);
    dlg.addEventListener("close", () => {
      resolve(dlg.returnValue === "yes");
      dlg.remove();
    });
    document.body.append(dlg);
    dlg.showModal();
    yes.focus();
  });
}
