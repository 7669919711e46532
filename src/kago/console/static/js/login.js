// The login form: the token goes in a JSON POST body (never in a URL); the server answers with
// an HttpOnly cookie, then the browser goes back to the page that sent it here.
import { api } from "./api.js";

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // only a path on this origin: never "//host" or "https://..."
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/";
}

const form = document.getElementById("login");
const error = document.getElementById("error");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const token = document.getElementById("token").value.trim();
  try {
    await api("/api/login", { method: "POST", body: { token }, allow401: true });
    location.assign(nextPage());
  } catch (e) {
    error.textContent = e.status === 401 ? "That token is not the console's." : e.message;
    error.hidden = false;
  }
});
