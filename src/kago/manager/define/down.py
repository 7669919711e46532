"""``kago down FILE``: stop and remove a definition's containers, all at once."""

import os
import time

from kago.errors import KagoError
from kago.manager.define.group import Group, stop_agent
from kago.manager.errors import DefinitionError, ManagerError
from kago.manager.journal import batch, fault


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
    _stop_many(mgr, records, timeout)
    errors = []
    for record in reversed(records):
        try:
            mgr.remove(record["id"], force=True)
            fault("down.removed")
        except KagoError as e:
            errors.append(f"{record['name']}: {e}")
    if errors:
        group.save()
        raise ManagerError("; ".join(errors))
    group.remove()
    out(f"removed {len(records)} container(s)")
    return 0


def _stop_many(mgr, records, timeout=10):
    """Stop signals to all at once, one wait for all, then SIGKILL the rest."""
    from kago.manager.engine import mark_removing
    from kago.oci.names import parse_signal
    running = []
    for record in records:
        mgr.records.update(record["id"], mark_removing)  # removed next: nothing to release
        if mgr.live(record) in ("running", "paused"):
            try:
                mgr.runtime(record).kill(record["id"], parse_signal(record["stop_signal"]))
                running.append(record)
            except KagoError:
                pass
    deadline = time.monotonic() + timeout
    while running and time.monotonic() < deadline:
        states = mgr.states()
        running = [r for r in running if mgr.live(r, states) in ("running", "paused")]
        if running:
            time.sleep(0.05)
    for record in running:
        try:
            mgr.runtime(record).kill(record["id"], 9, all=True)
        except KagoError:
            pass
    deadline = time.monotonic() + 10
    while running and time.monotonic() < deadline:
        states = mgr.states()
        running = [r for r in running if mgr.live(r, states) in ("running", "paused")]
        if running:
            time.sleep(0.02)

