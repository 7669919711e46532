"""The client side of the supervisor: ``connect`` (starting one when there is none),
a ``Connection`` speaking its protocol, and ``running_pid``. Imports nothing of the server:
a command that only talks to the supervisor loads no more than this.

Protocol: a unix stream socket, one JSON object per line each way.

    {"op": "ping"}                          -> {"ok": true, "pid": N, "watching": [ids],
                                               "restarting": [ids], "idle_timeout": s,
                                               "dropped": {id: log lines dropped},
                                               "run_server": {"pid": N|null, "ready": b,
                                               "requests": n in flight}}
    {"op": "run", "verb": "run"|"create"|   -> with the command line's stdin, stdout and
     "start", "argv": [...], "glob": {root,    stderr attached (SCM_RIGHTS): the connection
     runroot, runtime}, "cwd": DIR,            goes to the run server (runs.py,
     "env": {...}}                             kago/cli/run_server.py), which answers
                                               {"accepted": true}, then {"exit": N} |
                                               {"signal": S}; or {"ok": false, "fallback":
                                               true, ...}: the command line does it itself
    {"op": "start", "id": ID, "attached": b} -> {"ok": true, "pid": N} | {"ok": false,
                                               "error": "...", "code": 125|126|127}
    {"op": "wait", "id": ID}                -> when it has exited: {"ok": true, "exit_code": N,
                                               "oom_killed": b}
    {"op": "events"}                        -> a stream of {"event": "start"|"exit"|
                                               "restart", "id": ID, ...}
    {"op": "quit"}                          -> {"ok": true}, then it exits (containers stay)
    {"op": "adopt", "id": ID}               -> a start whose supervisor died, as it went:
                                               {"ok": true, "pid": N} | {"ok": false, ...}
    {"op": "foreground", "id": ID}          -> {"ok": true}; `kago run -i` keeps this
                                               connection open: its end while the record
                                               still says foreground means the command line
                                               died, and the container is adopted
                                               (adoption.py)
    {"op": "attach", "id": ID,              -> the terminal of a -t container (console.py):
     "before_start": b}                        {"ok": true, "id": ID} with a dup of its pty
                                               master (SCM_RIGHTS), then the container's
                                               output, raw, until it ends (EOF) |
                                               {"ok": false, ...}; ``before_start``: the
                                               start follows (start -ai), the reply comes
                                               with the terminal
"""

import json
import os
import socket
import sys
import time


class Connection:
    """A client connection: ``request(op, **fields)``, or ``send`` many then ``receive``."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, op, **fields):
        fields["op"] = op
        self.sock.sendall((json.dumps(fields) + "\n").encode())

    def receive(self, timeout=None):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return None
            except ConnectionResetError:
                data = b""  # it died with our request unread
            if not data:
                from kago.manager.errors import SupervisorGone
                raise SupervisorGone("the supervisor went away")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, op, timeout=None, **fields):
        self.send(op, **fields)
        return self.receive(timeout)

    def close(self):
        self.sock.close()


def connect(paths, spawn=True, timeout=10.0):
    """A Connection to the root's supervisor, starting one if there is none (and ``spawn``)."""
    conn = _try_connect(paths)
    if conn is not None or not spawn:
        return conn
    _spawn(paths)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _try_connect(paths)
        if conn is not None:
            return conn
        time.sleep(0.01)
    from kago.manager.errors import SupervisorError
    raise SupervisorError(f"the supervisor did not start in {timeout:.0f} s: see "
                          f"{paths.supervisor_log()}")


def _try_connect(paths):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(paths.socket())
    except OSError:
        sock.close()
        return None
    return Connection(sock)


def _spawn(paths):
    """Start a supervisor in its own session, its output to supervisor.log. If another
    command starts one at the same moment, the loser finds the lock taken and exits."""
    from kago.manager import perms
    perms.make_runroot(paths)
    # -c, not -m kago.manager.supervisor: runpy's imports (collections, contextlib...) would
    # stay in its memory for its whole life (~0.7 MB)
    argv = [sys.executable, "-c", "import sys; from kago.manager.supervisor.main import main; "
            "sys.exit(main())", "--root", paths.root, "--runroot", paths.runroot]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    log = os.open(paths.supervisor_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                  0o600)
    try:
        os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2)])
    finally:
        os.close(null)
        os.close(log)


def running_pid(paths):
    """The live supervisor's pid, or None (from its pid file; no connection made)."""
    try:
        with open(paths.supervisor_pid()) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None
