// The console's one way to the API: same-origin fetch with the session cookie, JSON both ways,
// errors as one line ({"error": ...} from the server), and any 401 sends the browser to /login.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function toLogin() {
  const here = location.pathname + location.search;
  location.assign("/login?next=" + encodeURIComponent(here));
}

export async function api(path, { method = "GET", body, allow401 = false } = {}) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `${method} ${path}: the console server does not answer (${e.message})`);
  }
  if (r.status === 401 && !allow401) {
    toLogin();
    throw new ApiError(401, "not logged in");
  }
  if (r.status === 204) return null;
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!r.ok) {
    const why = (data && data.error) || text.split("\n")[0] || r.statusText;
    throw new ApiError(r.status, `${method} ${path}: ${r.status} ${why}`);
  }
  return data;
}

// An EventSource on `path` calling `handlers[event](data)` with each event's parsed JSON. The
// browser reconnects by itself; when it cannot, whoami tells whether a login is what is missing.
export function stream(path, handlers, { onState } = {}) {
  const es = new EventSource(path, { withCredentials: true });
  for (const [event, fn] of Object.entries(handlers)) {
    es.addEventListener(event, (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      fn(data);
    });
  }
  es.addEventListener("open", () => onState && onState("live"));
  es.addEventListener("error", async () => {
    onState && onState(es.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
    if (es.readyState === EventSource.CLOSED) {
      try {
        const who = await api("/api/whoami", { allow401: true });
        if (who && who.reads_need_token && !who.authenticated) toLogin();
      } catch {
        /* the server is away: the state line says so */
      }
    }
  });
  return es;
}

export const enc = encodeURIComponent;
