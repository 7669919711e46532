"""A compose project's containers on the manager: found by their labels
(com.docker.compose.project and .service), as compose finds them, so ``down``, ``ps``,
``logs`` and ``stop_all`` need no state of their own. ``up`` is up.py.
"""

import json
import os
import sys
import time

from kago.errors import KagoError
from kago.manager.compose.translate import LABEL
from kago.manager.errors import ManagerError

PROJECT = f"{LABEL}.project"
SERVICE = f"{LABEL}.service"
HASH = f"{LABEL}.config-hash"


def project_records(mgr, name):
    """The records of project ``name``'s containers, oldest first."""
    from kago.manager.definition import of
    records = [r for r in mgr.records.all() if of(r).label_dict.get(PROJECT) == name]
    return sorted(records, key=lambda r: r.get("created") or 0)


def labels_of(record):
    from kago.manager.definition import of
    return of(record).label_dict


# --- down ----------------------------------------------------------------------------------------

def down(mgr, name, plan=None, volumes=False, remove_orphans=False, timeout=None, out=print,
         warn=None):
    """Stop the project's containers all at once (SIGKILL after ``timeout``, else each one's
    stop_grace_period, else 10 s), remove them, its networks, and with ``volumes`` its
    named volumes. Without ``remove_orphans``, containers of services the
    file no longer has are left (and named in a warning), as compose."""
    warn = warn or _stderr
    records = project_records(mgr, name)
    if plan is not None:
        known = set(plan.services)
        orphans = [r for r in records if labels_of(r).get(SERVICE) not in known]
        if orphans and not remove_orphans:
            warn(f"found orphan containers ({', '.join(r['name'] for r in orphans)}) for "
                 f"this project: remove them with --remove-orphans")
            records = [r for r in records if r not in orphans]
    stop_all(mgr, records, timeout, removing=True)
    errors = []
    for record in reversed(records):
        try:
            mgr.remove(record["id"], force=True)
            out(f" Container {record['name']}  Removed")
        except KagoError as e:
            errors.append(f"{record['name']}: {e}")
    if plan is not None:
        nets = [n.name for n in plan.networks.values() if not n.external]
    else:
        nets = [f"{name}_default"]
    if os.path.isdir(mgr.paths.network()):
        from kago.network.errors import NetworkNotFound
        for net in nets:
            try:
                mgr.nets.remove(net)
                out(f" Network {net}  Removed")
            except NetworkNotFound:
                pass
            except KagoError as e:
                errors.append(f"network {net}: {e}")
    if volumes:
        from kago.manager import volumes as VOL
        if plan is not None:
            names = [v.name for v in plan.volumes.values() if not v.external]
        else:  # no file: the volumes up made carry the project's label
            names = [v.name for v in VOL.list_volumes(mgr, [f"label={PROJECT}={name}"])]
        for volume in names:
            if not os.path.isdir(VOL.mountpoint(mgr, volume)):
                continue
            try:
                VOL.remove(mgr, volume, force=True)
                out(f" Volume {volume}  Removed")
            except KagoError as e:
                errors.append(str(e))
    if errors:
        raise ManagerError("; ".join(errors))
    return 0


# --- ps, logs ------------------------------------------------------------------------------------

def ps(mgr, name, all=False):
    """[(name, image, service, status, ports)] of the project's containers."""
    from kago.manager import format as F
    states = mgr.states()
    rows = []
    for record in project_records(mgr, name):
        live = mgr.live(record, states)
        if not all and live not in ("running", "paused", "restarting"):
            continue
        ports = "" if F.released(record) else F.ports_text(record)
        rows.append((record["name"], record.get("image") or "", labels_of(record).get(SERVICE),
                     F.status_text(record, live), ports))
    return rows


def prefixes(records):
    """compose's prefix of each container's lines: SERVICE-N, padded to one width."""
    names = {r["id"]: f"{labels_of(r).get(SERVICE)}-{labels_of(r).get(LABEL + '.container-number')}"
             for r in records}
    width = max((len(n) for n in names.values()), default=0)
    return {cid: f"{n:<{width}} | " for cid, n in names.items()}


def logs(mgr, records, write, follow=False, stop=None, interval=0.1, exits=False):
    """The containers' output, each line prefixed; ``follow``: then what they write until
    they have all ended (or ``stop()``); ``exits``: a line when one ends ("web-1 exited with
    code 0", as compose up). Without follow, entries are in time order."""
    from kago.manager import logs as L
    prefix = prefixes(records)
    offsets = {}
    if not follow:
        entries = []
        for r in records:
            entries += [(e.get("time", ""), r["id"], e) for e in L.read(mgr.paths.log(r["id"]))]
        for _t, cid, e in sorted(entries, key=lambda x: x[0]):
            write(e.get("stream"), prefix[cid] + e.get("log", ""))
        return
    ended, seen_end = set(), {}
    while True:
        for r in records:
            if r["id"] in ended:
                continue
            now = mgr.records.load(r["id"])
            over = mgr.live(now) not in ("running", "paused", "restarting")
            if over and (now.get("state") or {}).get("status") == "running":
                # the runtime has it ended; the supervisor records its status once its
                # output has drained: wait for that (a few seconds at most)
                first = seen_end.setdefault(r["id"], time.monotonic())
                over = time.monotonic() - first > 5
            offsets[r["id"]], entries = _new_entries(mgr.paths.log(r["id"]),
                                                     offsets.get(r["id"], 0))
            for e in entries:
                write(e.get("stream"), prefix[r["id"]] + e.get("log", ""))
            if over:
                ended.add(r["id"])
                if exits:
                    code = (now.get("state") or {}).get("exit_code")
                    name = prefix[r["id"]].split(" | ")[0].rstrip()
                    write("stdout", f"{name} exited with code "
                                    f"{'unknown' if code is None else code}\n")
        if len(ended) == len(records) or (stop is not None and stop()):
            return
        time.sleep(interval)


def _new_entries(path, offset):
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:  # rotated
                offset = 0
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset, []
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return offset + end, out


def stop_all(mgr, records, timeout=None, removing=False):
    """docker compose's stop of many: the stop signals all at once, SIGKILL to each one
    still running after its stop timeout (``timeout``, else its stop_grace_period, else
    10 s); the containers stay (ended, what they held released), or, ``removing``, are
    left for their removal to free all (down)."""
    from kago.manager.definition import of
    from kago.manager.release import mark_removing, mark_stopped
    from kago.oci.names import parse_signal
    now = time.monotonic()
    running = {}
    for record in records:
        # no restart policy brings it back
        mgr.records.update(record["id"], mark_removing if removing else mark_stopped)
        if mgr.live(record) in ("running", "paused"):
            try:
                mgr.runtime(record).kill(record["id"], parse_signal(record["stop_signal"]))
            except KagoError:
                continue
            wait = timeout if timeout is not None else of(record).stop_timeout
            running[record["id"]] = (record, now + (10 if wait is None else wait))
    killed_at = None
    while running:
        states = mgr.states()
        running = {cid: v for cid, v in running.items()
                   if mgr.live(v[0], states) in ("running", "paused")}
        for cid, (record, deadline) in list(running.items()):
            if time.monotonic() > deadline:
                try:
                    mgr.runtime(record).kill(cid, 9, all=True)
                except KagoError:
                    pass
                running[cid] = (record, float("inf"))
                killed_at = killed_at or time.monotonic()
        if killed_at and time.monotonic() - killed_at > 10:
            break  # SIGKILLed and still listed: what remove or the next up finds
        if running:
            time.sleep(0.05)
    if not removing:
        for record in records:
            mgr.release_quietly(record["id"])


def start(mgr, plan, records, services, out):
    """``compose start``: the services' existing containers that are not running, started
    in the plan's order (dependencies first); their container names."""
    by_service = {}
    for record in records:
        by_service.setdefault(labels_of(record).get(SERVICE), []).append(record)
    names = plan.selected(services)
    missing = [n for n in names if n not in by_service]
    if missing:
        from kago.manager.compose.errors import ComposeError
        raise ComposeError(f"service {missing[0]} has no container (kago compose up makes "
                           "it)")
    started = []
    for name in names:
        for record in by_service[name]:
            if mgr.live(record) in ("running", "paused"):
                continue
            mgr.start(record["id"])
            out(f" Container {record['name']}  Started")
            started.append(record["name"])
    return started


def _stderr(line):
    sys.stderr.write(f"kago: {line}\n")


__all__ = ["down", "labels_of", "logs", "project_records", "ps", "start", "stop_all"]
