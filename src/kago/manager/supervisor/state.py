"""What the supervisor holds and writes: a watched container (``Watched``), a client
connection (``Client``), the idle timeout, the edits it makes to records (under each record's
lock), and its own log lines (``say``). Imports nothing of the supervisor's own modules, so
adoption.py takes ``Watched`` and ``started`` from here without importing the server.
"""

import _socket
import errno
import os
import sys
import time

from kago.jsonio import std_dumps, std_loads
from kago.manager import logs

IDLE_TIMEOUT = 30.0


def idle_timeout(paths=None):
    """Seconds without anything to do before the supervisor exits: KAGO_SUPERVISOR_IDLE, else
    ROOT/kago.json's {"supervisor": {"idle_timeout": N}}, else 30."""
    text = os.environ.get("KAGO_SUPERVISOR_IDLE")
    if text is None and paths is not None:
        try:
            with open(os.path.join(paths.root, "kago.json")) as f:
                text = ((std_loads(f.read()).get("supervisor") or {}).get("idle_timeout"))
        except (OSError, ValueError, AttributeError):
            text = None
    try:
        value = float(IDLE_TIMEOUT if text is None else text)
    except (TypeError, ValueError):
        return IDLE_TIMEOUT
    return value if value >= 0 else IDLE_TIMEOUT


class Watched:
    """A running container this supervisor looks after."""

    __slots__ = (
        "attached",
        "attachers",
        "child",
        "cid",
        "console",
        "log",
        "master",
        "pid",
        "pid_start",
        "pidfd",
        "readers",
        "started",
    )

    def __init__(self, cid, pid, pid_start, child):
        self.cid, self.pid, self.pid_start, self.child = cid, pid, pid_start, child
        self.pidfd = None
        self.readers = {}
        self.log = None
        self.started = time.monotonic()
        self.attached = False
        self.console = None   # the console socket of a tty start (listening, then connected)
        self.master = None    # its pty master, once the runtime sent it
        self.attachers = []   # clients attached to that terminal


class Client:
    __slots__ = ("attached", "buf", "foreground", "sock", "subscribed")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.subscribed = False
        self.foreground = None  # the cid of a `kago run -i` that holds this connection
        self.attached = None    # the Watched whose terminal output this connection carries

    def send(self, doc):
        try:
            self.sock.sendall((std_dumps(doc) + "\n").encode())
            return True
        except OSError:
            return False


# --- record edits (run under the record's lock) ----------------------------------------------

def started(r, pid, pid_start, attached):
    s = r["state"]
    s.pop("starter", None)
    s.update(status="running", pid=pid, pid_start=pid_start, started_at=time.time(),
             finished_at=0.0, exit_code=None, oom_killed=False, error="", attached=attached)
    from kago.manager import health
    from kago.manager.supervisor import settings
    health.at_start(r, settings.of(r))  # State.Health: starting again, or none without one


def ended(r, code, oom, unknown, restart):
    s = r["state"]
    s.update(status="restarting" if restart else "exited", pid=0, pid_start=None,
             finished_at=time.time(), exit_code=code, oom_killed=oom, fresh=False)
    if s.pop("checkpointing", False) and not restart:
        s["status"] = "checkpointed"  # CRIU's dump ended it: kago restore brings it back
        s["checkpoint"] = s.pop("checkpoint_pending", None) or s.get("checkpoint")
    if unknown:
        s["error"] = "exited while no supervisor was watching: exit status unknown"


def abandoned(r):
    if r["state"]["status"] == "restarting":
        r["state"]["status"] = "exited"


def count_restart(r):
    r["state"]["restart_count"] = r["state"].get("restart_count", 0) + 1


def oom_killed(record):
    """Read before the runtime deletes the cgroup (runc's state has no such field)."""
    path = record.get("cgroups_path")
    if not path:
        return False
    from kago.runtime import container
    from kago.runtime.resources import oom_killed_at
    container.keep_layout()  # once: the supervisor no longer runs warm(), which did it
    return oom_killed_at(path)


def alive(pid, start):
    from kago.host.procfs import alive as procfs_alive
    return bool(pid) and procfs_alive(pid, start)


def note(signum, frame):
    """Signals only wake the loop (set_wakeup_fd); the work happens there."""


_TRANSIENT = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOSPC, errno.EDQUOT, errno.ENOMEM,
                        errno.ENOBUFS, errno.EAGAIN, errno.EINTR))


def transient(error):
    """An error that passes when fds, space or memory come back (also found as the cause of
    a KagoError)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _TRANSIENT:
            return True
        error = error.__cause__ or error.__context__
    return False


def say(text):
    try:
        sys.stderr.write(f"{logs.timestamp()} {text}\n")
        sys.stderr.flush()
    except OSError:
        pass  # its own log on a full disk: nothing better to do


# Sockets are _socket's (socket.py's class adds enums, and imports enum, selectors and
# collections: ~0.3 MB of the supervisor's memory): ``accept`` is socket.socket.accept's part.

def listen_unix(path, backlog):
    """A listening unix socket at ``path`` (a leftover file there is replaced: the caller
    holds what makes it the owner), 0600 from its birth."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    old = os.umask(0o077)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(backlog)
    return sock


def accept(listener):
    """A connection waiting on ``listener`` (close-on-exec, blocking, as socket.accept's)."""
    fd, _addr = listener._accept()
    return _socket.socket(fileno=fd)
