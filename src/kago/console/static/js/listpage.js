// The images and networks pages: the API's list as a table (the page's data-api names it).
import { api } from "./api.js";
import { nav, status } from "./nav.js";
import { rowTable } from "./table.js";

async function main() {
  const api_path = document.body.dataset.api;
  await nav(document.body.dataset.nav);
  const box = document.getElementById("table");
  try {
    const rows = await api(api_path);
    const list = Array.isArray(rows) ? rows : Object.values(rows || {});
    document.getElementById("count").textContent = `${list.length}`;
    document.getElementById("empty").hidden = list.length !== 0;
    rowTable(box, list, { filter: document.getElementById("filter") });
  } catch (e) {
    status(e.message, "error", 0);
  }
}

main();
