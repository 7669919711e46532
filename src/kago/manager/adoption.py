"""What a supervisor takes over from processes that died: starts and foreground runs.

A start worker (supervisor/starts.py) records itself in the container's state as ``starter`` (pid
and start time) in the same save that marks the start ``fresh``; a foreground ``kago run -i``
records its command line as ``client`` and keeps a connection to the supervisor open
(``{"op": "foreground", "id": ID}``) while it runs. So a supervisor knows, from the record
alone, of a start whose supervisor died before the worker's report reached it, and learns at
once (the connection ends) of a foreground run whose command line died:

- ``adopt_start``: the worker is waited for (bounded), then the runtime says how it went: a
  running container is recorded with its real pid and start time and watched through a
  pidfd (its exit status will be unknown: it is not our child); a container left in the
  runtime's "created" state is deleted and the start recorded as failed; no container at all
  is a failed start too. Either way the record tells the truth and, once ended, it is
  released.
- ``adopt_foreground``: a running container is recorded and watched the same way; an ended
  one is recorded as ended (status unknown) and released.
"""

import os
import time

from kago.host.procfs import alive, start_time
from kago.manager.errors import ManagerError, NoSuchContainer
from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.state import Watched, started

STARTER_WAIT = 10.0  # how long a new supervisor waits for an orphaned start worker


def lives(who):
    return bool(who) and alive(who.get("pid"), who.get("start"))


def adopt_start(sup, record):
    """``record``'s start, begun under a supervisor that died; the Watched, or None."""
    cid = record["id"]
    state = record.get("state") or {}
    if not state.get("starter") or cid in sup.watched or cid in sup.starting_ids():
        return None
    deadline = time.monotonic() + STARTER_WAIT
    while lives(state["starter"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _from_runtime(sup, record, "its start was interrupted: the supervisor died")


def adopt_foreground(sup, cid, dropped=False):
    """A foreground run whose command line died: watch it, or record its end. ``dropped``:
    its connection ended while the record still says foreground (a command line that ends
    normally records its end first), so it died, even if /proc does not show it yet."""
    try:
        record = sup.records.load(cid)
    except NoSuchContainer:
        return None
    state = record.get("state") or {}
    if not state.get("foreground") or cid in sup.watched or (
            not dropped and lives(state.get("client"))):
        return None
    return _from_runtime(sup, record, None)


def _from_runtime(sup, record, failure):
    cid = record["id"]
    runtime = sup.runtime_for(record)
    rt = runtime.state(cid)
    pid = (rt or {}).get("pid")
    if rt is not None and rt.get("status") in ("running", "paused") and pid:
        return watch(sup, record, pid, start_time(pid))
    if rt is not None:
        try:
            runtime.delete(cid, force=True)
        except ManagerError:
            pass
    if failure is None:  # a foreground run that ended while nobody watched it
        try:
            sup.records.update(cid, _not_foreground)
        except NoSuchContainer:
            return None
        sup._finish(cid, None, unknown=True)
        return None
    error = ManagerError(f"container {cid[:12]}: {failure}")
    sup._failed_start(cid, error)
    return None


def watch(sup, record, pid, pid_start):
    """Record ``pid`` as the running container's and watch it through a pidfd."""
    cid = record["id"]

    def running(r):
        started(r, pid, pid_start, False)
        _not_foreground(r)
    try:
        record = sup.records.update(cid, running)
    except NoSuchContainer:
        return None
    w = Watched(cid, pid, pid_start, child=False)
    try:
        w.pidfd = os.pidfd_open(pid)
    except OSError:
        sup._finish(cid, None, unknown=True)  # it ended just now
        return None
    sup.sel.register(w.pidfd, EVENT_READ, ("pidfd", w))
    sup._open_output(w, record, create=False)
    sup.watched[cid] = w
    sup._health_watch(cid, record)
    return w


def _not_foreground(r):
    s = r["state"]
    s["foreground"] = False
    s.pop("client", None)
    s.pop("starter", None)
