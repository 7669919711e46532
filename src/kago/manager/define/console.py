"""A definition's web console: ``console(listen="127.0.0.1:9090")`` in the file makes
``kago up`` start ``kago console`` for the root, detached (its own session; the pid and its
start time in the group file), and ``kago down`` stop it.

The console runs as its own process (``python -m kago.console.server``), so the manager never
imports the web stack. ``up`` waits until it listens: the server binds first, writes its
lines (the address; the token, the one time it makes it) on the pipe ``up`` reads and then
closes it; a bind that fails ends it with the reason in ROOT/groups/<key>.console.log, which
``up`` reports. Nothing it writes later goes anywhere but that log.
"""

import os
import select
import sys
import time

from kago.manager.errors import ManagerError

START_TIMEOUT = 20.0  # seconds for the server's imports and bind on a busy host


def start_console(mgr, group, listen, out):
    """Start the group's console (stopping one it had); its lines go to ``out``."""
    stop_console(group)
    log_path = group.file[:-5] + ".console.log"
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    r, w = os.pipe2(os.O_CLOEXEC)
    argv = [sys.executable, "-m", "kago.console.server", mgr.paths.root, mgr.paths.runroot,
            listen]
    try:
        pid = os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, w, 1),
            (os.POSIX_SPAWN_DUP2, log, 2)])
    finally:
        for fd in (log, null, w):
            os.close(fd)
    try:
        lines = _lines_until_eof(r, START_TIMEOUT)
    finally:
        os.close(r)
    from kago.host.procfs import start_time
    ended = os.waitpid(pid, os.WNOHANG)[0] == pid
    if ended or not lines:
        if not ended:
            _end(pid, start_time(pid))
        raise ManagerError(f"console {listen}: {_last_line(log_path) or 'did not start'}"
                           f" (log {log_path})")
    for line in lines:
        out(line)
    group.data["console"] = {"pid": pid, "start": start_time(pid), "listen": listen}
    group.save()


def stop_console(group):
    """Stop the group's console if it is still the process ``up`` started."""
    known = group.data.get("console")
    if not known:
        return
    from kago.host.procfs import start_time
    pid = known.get("pid")
    if pid and _is_console(pid) and start_time(pid) == known.get("start"):
        _end(pid, known.get("start"))
    group.data["console"] = None


def _end(pid, started, grace=5.0):
    from kago.host.procfs import alive
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid, started):
        os.kill(pid, 9)


def _is_console(pid):
    from kago.manager.define.group import runs
    return runs(pid, b"kago.console.server")


def _lines_until_eof(fd, timeout):
    data, deadline = b"", time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return []
        chunk = os.read(fd, 4096)
        if not chunk:
            return data.decode(errors="replace").splitlines()
        data += chunk


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""
