"""``kago reload FILE``: a definition's changed cgroup limits and rlimits applied to its
running containers, without restarts; what needs a restart is named."""

import json

from kago.manager.define import hooks as H
from kago.manager.define.group import Group, start_agent
from kago.manager.define.load import load
from kago.manager.definition import RESTART_FIELDS, of, to_json
from kago.manager.errors import ManagerError


def reload(mgr, file, env=None, out=print, **_):
    """Apply changed cgroup limits and rlimits to running containers, without restarts."""
    from kago.manager import spec
    group = Group(mgr, file, env)
    definition = load(file, group.data["env"] if env is None else env)
    changed = 0
    for c in definition.containers:
        cid = group.containers.get(c.name)
        if cid is None:
            out(f"{c.name}: not started by kago up (kago up starts it)")
            continue
        record = mgr.records.load(cid)
        new = definition.definitions[c.name]
        old = of(record)
        notes = _needs_restart(old, new)
        res_old, res_new = spec.resources(old), spec.resources(new)
        lim_old, lim_new = spec.rlimits_for(old), spec.rlimits_for(new)
        if mgr.live(record) == "running" and (res_old != res_new or lim_old != lim_new):
            if res_old != res_new:
                mgr.runtime(record).update(cid, _with_resets(res_old, res_new))
            if lim_old != lim_new:
                _apply_rlimits(mgr, record, lim_new)
            changed += 1
            out(f"{c.name}: limits applied")
        mgr.records.update(cid, lambda r, new=new: _keep_live_fields(r, new))
        for note in notes:
            out(f"{c.name}: {note} changed: kago down and up to apply it")
    if definition.resident():
        start_agent(mgr, group)
    out(f"reloaded {changed} running container(s)")
    return 0


def _keep_live_fields(record, new):
    """The record's definition with the new limits and rlimits (what reload applied)."""
    record["definition"] = to_json(of(record).but(limits=new.limits, rlimits=new.rlimits))


def _needs_restart(old, new):
    """The fields that changed but only apply to a new container (the mount ``up`` adds
    for root-switch hooks is not the definition's)."""
    old = old.but(mounts=tuple(m for m in old.mounts if m.destination != H.INSIDE))
    return [f for f in RESTART_FIELDS if getattr(old, f) != getattr(new, f)]


def _with_resets(old, new):
    """A limit the definition no longer sets goes back to "no limit"."""
    out = json.loads(json.dumps(new))
    resets = {("cpu", "quota"): -1, ("memory", "limit"): -1, ("memory", "swap"): -1,
              ("pids", "limit"): -1}
    for section, fields in old.items():
        for field in fields:
            if field not in (new.get(section) or {}):
                if section == "unified":
                    out.setdefault("unified", {})[field] = "max"
                elif (section, field) in resets:
                    out.setdefault(section, {})[field] = resets[(section, field)]
    return out


def _apply_rlimits(mgr, record, limits):
    import resource
    errors = []
    for pid in mgr.runtime(record).pids(record["id"]):
        for limit in limits:
            which = getattr(resource, limit["type"], None)
            if which is None:
                continue
            try:
                resource.prlimit(pid, which, (limit["soft"], limit["hard"]))
            except PermissionError:
                errors.append(f"{limit['type']} of pid {pid}: raising a hard limit needs "
                              f"CAP_SYS_RESOURCE")
            except ProcessLookupError:
                break
    if errors:
        raise ManagerError(f"container {record['name']}: " + "; ".join(errors[:3]))

