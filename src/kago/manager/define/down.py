"""``kago down FILE``: stop and remove a definition's containers, all at once.

The work per container is the same as ``rm -f``'s, in the same order (marked removing before
its signal, each teardown step in reverse, the record last), so a ``down`` killed at any
point is finished by another ``down`` or ``rm -f``. Containers go through it side by side in
a few threads: most of a teardown waits on the kernel (an RCU grace period per unmount, a
cgroup's removal, a rename or rmdir on the disk) with the GIL released, and waits overlap.
With a timeout of 0 every container is marked and killed first (its init's pidfd kept), then
each taken apart as soon as its init ended, none waiting for the slowest one to stop; the ID
ranges are then given back in one write, and the records removed last.
"""

import os
import threading
import time

from kago.errors import KagoError
from kago.manager.define.group import Group, stop_agent
from kago.manager.errors import DefinitionError, ManagerError, NoSuchContainer
from kago.manager.journal import batch, fault

WORKERS = 8  # threads; measured (100 containers): see docs/latency.md


def own_pid_namespace(record):
    """Whether the container's init is the init of a PID namespace of its own (SIGKILL to it
    ends every process in it); False for a record without its definition."""
    from kago.manager.definition import stored
    definition = stored(record)
    return definition is not None and all(ns.how == "new" for ns in definition.namespaces
                                          if ns.kind == "pid")


def down(mgr, file, env=None, out=print, timeout=10, **_):
    with batch() as written:  # its record edits reach the disk together, at the end
        written.dirs.add(mgr.paths.root)
        return _down(mgr, file, out, timeout)


def _down(mgr, file, out, timeout):
    group = Group(mgr, file)
    records = [r for _n, r in group.records() if r is not None]
    listed = {r["id"] for r in records}
    # a container whose up died before the group file named it: its record names the group
    records += [r for r in mgr.records.all() if r["id"] not in listed
                and (r.get("group") or {}).get("key") == group.key]
    if not records and not group.containers and not os.path.exists(group.file):
        raise DefinitionError(group.path, 0, "no containers of this definition are known "
                                             "(was it started with kago up?)")
    stop_agent(group)
    from kago.manager.define.console import stop_console
    stop_console(group)
    if any((r.get("rootfs") or {}).get("kind") == "image" for r in records):
        mgr.store  # noqa: B018 - made once here, not by each thread (two would still agree)
    from kago.manager.removal import dismantle, forget

    def take_apart(record):
        """rm -f's teardown but the ID range and the record (both below), anything left
        killed by the runtime's forced delete; an error as one line."""
        try:
            dismantle(mgr.ctx, record, ids=False)
        except KagoError as e:
            return f"{record['name']}: {e}"
        return None

    if timeout <= 0:
        # all marked and killed first, then each taken apart once it ended: the kernel ends
        # the later ones while the threads take apart those that ended
        states = mgr.states(records)
        killed = [k for k in fanout(lambda r: _kill_now(mgr, r, states), records)
                  if k is not None]
        done = fanout(lambda k: (k[0], _when_ended(k[1], take_apart, k[0])), killed)
    else:
        records = list(reversed(_stop_many(mgr, records, timeout)))
        done = list(zip(records, fanout(take_apart, records)))
    # their processes are gone: the ID ranges in one write of the table, not one each
    from kago.manager import idranges
    taken = [r for r, error in done if error is None]
    idranges.release_many(mgr.paths, [r["id"] for r in taken])

    # the records last; the first alone, so that the fault hook's "down.removed" (a down
    # killed once a container is gone) leaves the others' records, whatever the threads do
    if taken:
        forget(mgr.ctx, taken[0])
        fault("down.removed")
        fanout(lambda r: forget(mgr.ctx, r), taken[1:])
    errors = [error for _r, error in done if error]
    if errors:
        group.save()
        raise ManagerError("; ".join(errors))
    group.remove()
    out(f"removed {len(done)} container(s)")
    return 0


def _stop_many(mgr, records, timeout=10):
    """Each marked removing, then sent its stop signal (all side by side); one wait for
    all; SIGKILL to the rest. Returns the records as marked (less those removed meanwhile by
    another command)."""
    from kago.manager.engine import mark_removing
    from kago.oci.names import parse_signal

    states = mgr.states(records)  # one read for all, not one per container

    def signal(record):
        try:  # removed next: its end releases nothing
            record = mgr.records.update(record["id"], mark_removing)
        except NoSuchContainer:
            return None, False
        if mgr.live(record, states) not in ("running", "paused"):
            return record, False
        try:
            mgr.runtime(record).kill(record["id"], parse_signal(record["stop_signal"]))
        except KagoError:
            return record, False
        return record, True

    marked = [(r, sent) for r, sent in fanout(signal, records) if r is not None]
    running = _wait_stopped(mgr, [r for r, sent in marked if sent], timeout)

    def kill(record):
        try:
            mgr.runtime(record).kill(record["id"], 9, all=True)
        except KagoError:
            pass

    fanout(kill, running)
    _wait_stopped(mgr, running, 10)
    return [r for r, _sent in marked]


def _kill_now(mgr, record, states):
    """With a timeout of 0: marked removing, SIGKILLed (the init alone if it is the init of
    its own PID namespace: the kernel ends the rest). Returns (the record as marked, a pidfd
    of the init to wait on or None), or None if another command removed it meanwhile."""
    from kago.manager.engine import mark_removing
    try:  # removed next: its end releases nothing
        record = mgr.records.update(record["id"], mark_removing)
    except NoSuchContainer:
        return None
    status = mgr.live(record, states)
    ended = None
    if status in ("running", "paused"):
        alone = status == "running" and own_pid_namespace(record)
        ended = _pidfd((states.get(record["id"]) or {}).get("pid")) if alone else None
        try:
            mgr.runtime(record).kill(record["id"], 9, all=not alone)
        except KagoError:
            pass  # it ended meanwhile
    return record, ended


def _when_ended(ended, then, record):
    """``then(record)`` once the init behind the pidfd ``ended`` (closed here) has ended (at
    most 5 s: the runtime's forced delete waits for anything left)."""
    if ended is not None:
        import select
        try:
            waiter = select.poll()
            waiter.register(ended, select.POLLIN)
            waiter.poll(5000)
        finally:
            os.close(ended)
    return then(record)


def _pidfd(pid):
    """A pidfd of ``pid`` (opened before the signal, so it is the process signalled), or
    None."""
    try:
        return os.pidfd_open(pid) if pid else None
    except OSError:
        return None


def _wait_stopped(mgr, running, timeout):
    """``running`` less those that stopped within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while running:
        states = mgr.states(running)
        running = [r for r in running if mgr.live(r, states) in ("running", "paused")]
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return running


def fanout(fn, items, workers=WORKERS):
    """[fn(item) for item in items], run in up to ``workers`` threads. ``fn`` reports its
    own failures in its result; anything it raises is raised here after all have run."""
    results = [None] * len(items)
    raised = []
    todo = iter(enumerate(items))
    take = threading.Lock()

    def work():
        while True:
            with take:
                nxt = next(todo, None)
            if nxt is None:
                return
            try:
                results[nxt[0]] = fn(nxt[1])
            except BaseException as e:  # noqa: BLE001 - raised by the caller's thread below
                raised.append(e)
                return

    if len(items) <= 1 or workers <= 1:
        return [fn(item) for item in items]
    threads = [threading.Thread(target=work, daemon=True)
               for _ in range(min(workers, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if raised:
        raise raised[0]
    return results
