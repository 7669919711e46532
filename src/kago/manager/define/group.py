"""A definition's containers as one group, remembered in ROOT/groups/<key>.json (the file's
path, its ``-e`` values, the container IDs, the agent's pid), so ``down`` and ``ps`` find the
containers even if the file has changed since; and the group's agent process (agent.py),
started by ``up`` and ``reload``, stopped by ``down``.

The verbs on a group are modules of their own: up.py (``kago up``), down.py, table.py
(``kago ps FILE`` and the tables ``up`` prints), reload.py, archive.py; bootstrap.py holds the
bootstrap and provision steps ``up`` and ``archive`` run.
"""

import hashlib
import json
import os
import sys
import time

from kago.host import procfs
from kago.manager import perms
from kago.manager.errors import NoSuchContainer


def key_of(path):
    return hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]


class Group:
    """ROOT/groups/<key>.json: what ``up`` made for one definition file."""

    def __init__(self, mgr, path, env=None):
        self.mgr = mgr
        self.path = os.path.abspath(path)
        self.key = key_of(path)
        self.file = os.path.join(mgr.paths.groups(), self.key + ".json")
        self.data = {"file": self.path, "env": env or {}, "containers": {}, "agent": None}
        try:
            with open(self.file) as f:
                self.data.update(json.load(f))
        except FileNotFoundError:
            pass
        if env is not None:
            self.data["env"] = env

    @property
    def containers(self):
        return self.data["containers"]

    def save(self):
        os.makedirs(os.path.dirname(self.file), perms.PRIVATE_DIR, exist_ok=True)
        with perms.private_file(self.file + ".tmp") as f:  # its env (up -e) too
            f.write(json.dumps(self.data))
        os.rename(self.file + ".tmp", self.file)

    def remove(self):
        for path in (self.file, self.file[:-5] + ".log", self.file[:-5] + ".console.log"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def records(self):
        """(name, record or None) in definition order."""
        out = []
        for name, cid in self.containers.items():
            try:
                out.append((name, self.mgr.records.load(cid)))
            except NoSuchContainer:
                out.append((name, None))
        return out


def start_agent(mgr, group):
    stop_agent(group)
    log = os.open(group.file[:-5] + ".log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                  0o640)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    argv = [sys.executable, "-m", "kago.manager.define.agent", "--root", mgr.paths.root,
            "--runroot", mgr.paths.runroot, group.path]
    argv += [f"{k}={v}" for k, v in group.data["env"].items()]
    try:
        pid = os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2)])
    finally:
        os.close(log)
        os.close(null)
    group.data["agent"] = pid
    group.save()


def stop_agent(group):
    pid = group.data.get("agent")
    if not pid:
        return
    from kago.host.procfs import alive, start_time
    started = start_time(pid) if is_agent(pid) else None
    if started is not None:
        os.kill(pid, 15)
        deadline = time.monotonic() + 5
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.02)
    group.data["agent"] = None


def is_agent(pid):
    return runs(pid, b"kago.manager.define.agent")


def runs(pid, module):
    """Whether process ``pid``'s command line names ``module`` (bytes)."""
    return any(module in word for word in procfs.argv(pid) or ())

