"""``kago ps FILE``, the table ``up`` prints, and ``up``'s following of its detach=False
containers' output."""

import sys
import time

from kago.manager.define.group import Group, is_agent


def ps(mgr, file, env=None, out=print, **_):
    from kago.manager import format as F
    group = Group(mgr, file)
    states = mgr.states()
    rows = []
    for name, record in group.records():
        if record is None:
            rows.append((name, "-", "removed", "", ""))
            continue
        live = mgr.live(record, states)
        pid = record["state"].get("pid") if live == "running" else ""
        rows.append((name, record["id"][:12], F.status_text(record, live), pid or "",
                     _address(record)))
    out(F.table(("NAME", "CONTAINER ID", "STATUS", "PID", "PORTS/ADDRESS"), rows))
    agent = group.data.get("agent")
    if agent and is_agent(agent):
        out(f"agent: pid {agent} (timers, signal, pressure and exit hooks)")
    return 0


def up_table(mgr, group, out, ready_at, warm=()):
    from kago.manager import format as F
    states = mgr.states()
    rows = []
    for name, record in group.records():
        if record is None:
            continue
        live = mgr.live(record, states)
        ready = ready_at.get(name)
        rows.append((name, record["id"][:12], F.status_text(record, live),
                     record["state"].get("pid") or "",
                     "" if ready is None else f"{ready:.2f}s" + (" warm" if name in warm else ""),
                     _address(record)))
    out(F.table(("NAME", "CONTAINER ID", "STATUS", "PID", "READY", "PORTS/ADDRESS"), rows))


def _address(record):
    """PORTS/ADDRESS: published ports, else the address (none once its end released it)."""
    from kago.manager import format as F
    if F.released(record):
        return ""
    return F.ports_text(record) or (record.get("network") or {}).get("ipv4") or ""


def follow(mgr, group, names):
    """detach=False containers: stream their output (name-prefixed) until they all end;
    the worst exit status is ``up``'s."""
    from kago.manager import logs
    paths = {n: mgr.paths.log(group.containers[n]) for n in names}
    offsets = {n: 0 for n in names}
    codes = {}
    while len(codes) < len(names):
        for name in names:
            for entry in logs.read(paths[name])[offsets[name]:]:
                offsets[name] += 1
                stream = sys.stdout if entry.get("stream") == "stdout" else sys.stderr
                stream.write(f"{name} | {entry.get('log', '')}")
                stream.flush()
            record = mgr.records.load(group.containers[name])
            if name not in codes and mgr.live(record) == "exited":
                codes[name] = record["state"].get("exit_code") or 0
        time.sleep(0.1)
    return max(codes.values()) if codes else 0

