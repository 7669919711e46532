"""Who may do what in ``kago console``: the token file, login sessions, and the rules.

- A token (``secrets.token_urlsafe(32)``) lives at ROOT/console/token, mode 0600, made on
  the first start. A login trades it for a session id (the cookie), never the token itself.
- Reads (GET/HEAD) need nothing on a loopback listen address (127.0.0.1, ::1, localhost
  only: any other address, 127.0.0.2 included, is treated as reachable by others); on any
  other address every request but /login, /static/ and /api/login needs a session or the
  bearer token. An unauthenticated read on loopback must also name a loopback Host (a page
  elsewhere cannot read the API through DNS rebinding).
- Every state-changing request (not GET/HEAD, and every WebSocket) needs a session or the
  bearer token, and its ``Origin``, when sent (always, for a WebSocket), must be the
  server's own: ``http://`` + the request's Host.

The rules are pure functions of the request's parts (``decide``); ``AuthMiddleware`` applies
them to ASGI http and websocket scopes and answers a refusal with JSON ``{"error": ...}``.
"""

import json
import os
import secrets
import time

COOKIE = "kago_console"
SESSION_SECONDS = 7 * 24 * 3600
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
PUBLIC_PATHS = ("/login", "/api/login", "/api/whoami", "/favicon.ico")
READ_METHODS = ("GET", "HEAD")
SCOPE_KEY = "kago.console.authenticated"


class TokenError(Exception):
    """The token file cannot be read or made: one line naming the path."""


def token_path(root):
    return os.path.join(root, "console", "token")


def load_or_make_token(root):
    """(token, made): the token of ROOT/console/token, made (0600) if there is none."""
    path = token_path(root)
    try:
        with open(path) as f:
            token = f.read().strip()
        if token:
            return token, False
    except FileNotFoundError:
        pass
    except OSError as e:
        raise TokenError(f"console token {path}: {e.strerror}") from None
    token = secrets.token_urlsafe(32)
    try:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        os.chmod(path + ".tmp", 0o600)
        os.rename(path + ".tmp", path)
    except OSError as e:
        raise TokenError(f"console token {path}: cannot make it: {e.strerror}") from None
    return token, True


def forget_token(root):
    """Remove the token ``load_or_make_token`` just made (and its directory, when empty): a
    console that could not start leaves nothing behind."""
    path = token_path(root)
    for remove, target in ((os.unlink, path), (os.rmdir, os.path.dirname(path))):
        try:
            remove(target)
        except OSError:
            return


def is_loopback(host):
    """Whether a listen host is loopback by kago console's rule: exactly 127.0.0.1, ::1 or
    localhost (other 127/8 addresses are not, so the rule is one list to audit)."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS


def split_listen(text):
    """"HOST:PORT" (or "[V6]:PORT", or ":PORT" for 127.0.0.1) -> (host, port); ValueError
    naming the text."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen {text!r}: want HOST:PORT (like 127.0.0.1:9090)")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def host_is_loopback(host_header):
    """Whether a Host header names a loopback host (any port)."""
    host = host_header or ""
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    else:
        host = host.rpartition(":")[0] if host.count(":") == 1 else host
    return is_loopback(host)


class Sessions:
    """Login sessions in memory: id -> expiry (a restart logs everybody out)."""

    def __init__(self):
        self._expiry = {}

    def new(self):
        sid = secrets.token_urlsafe(32)
        self._expiry[sid] = time.monotonic() + SESSION_SECONDS
        return sid

    def valid(self, sid):
        if not sid:
            return False
        expiry = self._expiry.get(sid)
        if expiry is None:
            return False
        if expiry < time.monotonic():
            self._expiry.pop(sid, None)
            return False
        return True

    def end(self, sid):
        self._expiry.pop(sid, None)


def decide(*, kind, method, path, loopback, authenticated, origin, host):
    """None to let the request through, or (status, one-line reason). ``kind`` "http" or
    "websocket"; ``loopback``: the server listens on a loopback address; ``origin``/``host``
    the request's headers (None when absent)."""
    own = f"http://{host}" if host else None
    if kind == "websocket":
        if not authenticated:
            return 401, "log in first (the session cookie or the bearer token)"
        if origin is None or origin != own:
            return 403, f"origin {origin or '(none)'} is not this console's"
        return None
    if path in PUBLIC_PATHS or path.startswith("/static/"):
        if method not in READ_METHODS and origin is not None and origin != own:
            return 403, f"origin {origin} is not this console's"
        return None
    if method in READ_METHODS:
        if authenticated or (loopback and host_is_loopback(host)):
            return None
        return 401, "log in first (the session cookie or the bearer token)"
    if not authenticated:
        return 401, "log in first (the session cookie or the bearer token)"
    if origin is not None and origin != own:
        return 403, f"origin {origin} is not this console's"
    return None


def _headers(scope):
    out = {}
    for k, v in scope.get("headers") or ():
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def cookie_value(cookie_header, name=COOKIE):
    for part in (cookie_header or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


class AuthMiddleware:
    """ASGI middleware applying ``decide``; sets ``scope[SCOPE_KEY]`` for the handlers."""

    def __init__(self, app, *, token, sessions, loopback):
        self.app, self.token, self.sessions, self.loopback = app, token, sessions, loopback

    def authenticated(self, headers):
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer ") and secrets.compare_digest(
                auth[7:].strip().encode(), self.token.encode()):
            return True
        return self.sessions.valid(cookie_value(headers.get("cookie")))

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        authed = self.authenticated(headers)
        scope[SCOPE_KEY] = authed
        refusal = decide(kind=scope["type"], method=scope.get("method", "GET"),
                         path=scope["path"], loopback=self.loopback, authenticated=authed,
                         origin=headers.get("origin"), host=headers.get("host"))
        if refusal is None:
            return await self.app(scope, receive, send)
        status, reason = refusal
        if scope["type"] == "websocket":
            # refused before the handshake: the server answers 403 (no body in ASGI)
            await receive()
            await send({"type": "websocket.close", "code": 4000 + status, "reason": reason})
            return
        if (status == 401 and scope.get("method") in READ_METHODS
                and not scope["path"].startswith("/api/")):
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/login"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps({"error": reason}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
