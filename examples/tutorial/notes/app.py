"""A notes web app on the standard library: GET / lists the notes, POST / adds one (the
request body), GET /health answers ok."""

import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from store import open_store

STORE = open_store()


class Notes(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            return self.answer(200, "ok\n")
        if self.path != "/":
            return self.answer(404, "not found\n")
        lines = [f"notes on {socket.gethostname()} (visit {STORE.hit()})"]
        lines += [f"- {note}" for note in STORE.notes()]
        self.answer(200, "\n".join(lines) + "\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        text = self.rfile.read(length).decode().strip()
        if not text:
            return self.answer(400, "empty note\n")
        STORE.add(text)
        self.answer(201, f"added: {text}\n")

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    # as PID 1 in its container, a signal without a handler does nothing: stop on SIGTERM
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(os.environ.get("PORT", "8000"))
    print(f"serving notes on port {port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Notes).serve_forever()
