"""The caller's terminal joined to a container's: ``attach`` and ``start -ai`` to a container
started with -t (its pty master held by the supervisor: manager/supervisor/console.py), the
detach keys, and docker's refusal of -it without a terminal on stdin.

The supervisor's attach reply brings a dup of the pty master: keystrokes are written to it
here (and its size set from our terminal, again on each SIGWINCH); the container's output comes
from the supervisor on the same connection, which it closes when the container ends. The
detach keys (docker's default ctrl-p,ctrl-q) leave the container running.
"""

import json
import os
import socket
import sys

from kago.cli.common import Usage

NOT_A_TTY = "the input device is not a TTY"
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"
_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def stdin_is_a_terminal():
    return os.isatty(0)


def not_a_tty():
    """docker's line and status for -it when stdin is not a terminal."""
    print(NOT_A_TTY, file=sys.stderr)
    return 1


def detach_keys(text):
    """docker's --detach-keys: comma-separated keys, each one character or ``ctrl-X``
    (X a letter or one of @[\\]^_) -> the bytes they type."""
    out = bytearray()
    for key in (text or "").split(","):
        if key.startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
                continue
            if c in _CTRL:
                out.append(_CTRL[c])
                continue
        elif len(key) == 1:
            out.append(ord(key))
            continue
        raise Usage(f"--detach-keys: invalid key {key!r}: use a character or ctrl-<letter>, "
                    f"comma-separated (default {DEFAULT_DETACH_KEYS})")
    return bytes(out)


class DetachMatcher:
    """Finds the detach sequence in what is typed; a partial match is held back until the
    next key says whether it completes (docker's escape proxy)."""

    def __init__(self, keys):
        self.keys = keys
        self.held = 0

    def feed(self, data):
        """(bytes to pass on, detach?)"""
        out = bytearray()
        for b in data:
            if self.keys and b == self.keys[self.held]:
                self.held += 1
                if self.held == len(self.keys):
                    self.held = 0
                    return bytes(out), True
                continue
            if self.held:
                out += self.keys[:self.held]
                self.held = 0
                if b == self.keys[0]:
                    self.held = 1
                    if len(self.keys) == 1:
                        return bytes(out), True
                    continue
            out.append(b)
        return bytes(out), False


def attach(paths, cid, keys, stdin=True, start=None, timeout=30.0):
    """Join our terminal to the container's; ``start`` (``start -ai``) starts it once the
    supervisor waits with our attach. Returns the container's exit status, or None when the
    detach keys left it running (docker then exits 0)."""
    from kago.manager import supervisor
    from kago.manager.errors import ManagerError
    conn = supervisor.connect(paths)
    try:
        conn.send("attach", id=cid, before_start=start is not None)
        if start is not None:
            _size_at_start(paths, cid)
            start()
        reply, master, early = _reply(conn.sock, timeout)
        if not reply.get("ok"):
            raise ManagerError(reply.get("error") or f"cannot attach to {cid[:12]}")
        if master is None:
            raise ManagerError(f"attach {cid[:12]}: the supervisor sent no terminal")
        try:
            detached = _join(conn.sock, master, early, keys, stdin)
        finally:
            os.close(master)
    finally:
        conn.close()
    if detached:
        return None
    done = supervisor.connect(paths)
    try:
        code = done.request("wait", id=cid, timeout=timeout).get("exit_code")
    finally:
        done.close()
    return 255 if code is None else code


def _size_at_start(paths, cid):
    from kago.process.tty import terminal_size
    size = terminal_size(1) or terminal_size(0)
    if size is not None:
        from kago.manager.console_size import set_console_size
        set_console_size(paths, cid, *size)


def _reply(sock, timeout):
    """The attach reply's JSON line, the fd it carries (or None) and the output after it."""
    import array
    sock.settimeout(timeout)
    buf, master = b"", None
    while b"\n" not in buf:
        data, anc, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    if master is None:
                        master = fd
                    else:
                        os.close(fd)
        if not data:
            from kago.manager.errors import SupervisorGone
            raise SupervisorGone("the supervisor went away")
        buf += data
    line, rest = buf.split(b"\n", 1)
    return json.loads(line), master, rest


def _join(sock, master, early, keys, stdin):
    """Copy until the container's output ends (False) or the detach keys (True)."""
    import select
    import signal
    import termios
    import tty

    from kago.process.tty import copy_size
    sock.settimeout(None)
    typing = stdin and os.isatty(0)
    size_from = 1 if os.isatty(1) else 0
    saved = termios.tcgetattr(0) if typing else None
    old_ends = {}
    if typing:
        tty.setraw(0, termios.TCSANOW)  # keys typed ahead are kept, not flushed

        def end(signum, _frame):  # our terminal back as it was (docker's attach exits too)
            raise SystemExit(128 + signum)
        old_ends = {s: signal.signal(s, end) for s in (signal.SIGTERM, signal.SIGHUP)}
    copy_size(size_from, master)
    old_winch = signal.signal(signal.SIGWINCH, lambda _s, _f: copy_size(size_from, master))
    matcher = DetachMatcher(keys)
    try:
        _write_all(1, early)
        fds = [sock.fileno()] + ([0] if stdin else [])
        while True:
            ready, _, _ = select.select(fds, [], [], 1.0)
            if sock.fileno() in ready:
                data = sock.recv(65536)
                if not data:
                    return False
                _write_all(1, data)
            if 0 in ready:
                data = os.read(0, 4096)
                if not data:
                    fds.remove(0)  # our stdin ended: the container's goes on
                    continue
                data, detach = matcher.feed(data)
                if data:
                    _write_all(master, data)
                if detach:
                    return True
    finally:
        signal.signal(signal.SIGWINCH, old_winch)
        for sig, handler in old_ends.items():
            signal.signal(sig, handler)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _write_all(fd, data):
    """All of ``data``; the master is non-blocking (the supervisor's open file, shared)."""
    import select
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
