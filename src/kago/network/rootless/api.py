"""slirp4netns's API socket: its JSON messages (pure) and one request over the socket.

The protocol (slirp4netns(1), "API SOCKET"): one JSON request per connection, the client
shuts down its writing side, slirp4netns answers ``{"return": ...}`` or ``{"error": ...}``
and closes. A request must stay under 4096 bytes.
"""

import json
import socket
import time

from kago.network.rootless.errors import ApiRefused

MAX_REQUEST = 4096


def add_hostfwd(proto, host_addr, host_port, guest_port, guest_addr=None):
    arguments = {"proto": proto, "host_addr": host_addr, "host_port": host_port,
                 "guest_port": guest_port}
    if guest_addr:
        arguments["guest_addr"] = guest_addr
    return {"execute": "add_hostfwd", "arguments": arguments}


def remove_hostfwd(forward_id):
    return {"execute": "remove_hostfwd", "arguments": {"id": forward_id}}


def list_hostfwd():
    return {"execute": "list_hostfwd"}


def encode(message):
    data = json.dumps(message, separators=(",", ":")).encode()
    if len(data) >= MAX_REQUEST:
        raise ValueError(f"slirp4netns API request of {len(data)} bytes: the limit is "
                         f"{MAX_REQUEST - 1}")
    return data


def describe(message):
    """A short name for a request in errors: ``add_hostfwd tcp 127.0.0.1:8080->80``."""
    args = message.get("arguments", {})
    if message["execute"] == "add_hostfwd":
        return (f"add_hostfwd {args['proto']} {args['host_addr']}:{args['host_port']}"
                f"->{args['guest_port']}")
    if message["execute"] == "remove_hostfwd":
        return f"remove_hostfwd id {args['id']}"
    return message["execute"]


def decode(message, data):
    """The ``return`` value of a reply, or ApiRefused naming the request and slirp's reason."""
    try:
        reply = json.loads(data)
    except ValueError:
        raise ApiRefused(describe(message), f"unreadable reply {data[:200]!r}") from None
    if not isinstance(reply, dict):
        raise ApiRefused(describe(message), f"unexpected reply {reply!r}")
    if "error" in reply:
        error = reply["error"]
        reason = error.get("desc", error) if isinstance(error, dict) else error
        raise ApiRefused(describe(message), str(reason))
    if "return" not in reply:
        if message["execute"] == "list_hostfwd" and "entries" in reply:
            return reply  # slirp4netns 1.x answers list_hostfwd without the "return" wrapper
        raise ApiRefused(describe(message), f"reply without 'return': {reply!r}")
    return reply["return"]


def call(path, message, timeout=5.0):
    """Send one request to the API socket at ``path`` and return its ``return`` value."""
    try:
        return call_raw(path, message, timeout)
    except OSError as e:
        raise ApiRefused(describe(message), f"API socket {path}: {e.strerror or e}") from None


def call_raw(path, message, timeout=5.0):
    """``call``, but a socket that cannot be reached raises its OSError (ENOENT: no socket
    file, ECONNREFUSED: nobody listens, so slirp4netns is gone)."""
    data = encode(message)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return decode(message, b"".join(chunks))
