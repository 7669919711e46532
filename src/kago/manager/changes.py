"""What docker changes on an existing container: ``rename`` (its name) and ``update`` (its
cgroup limits and restart policy, applied to a running one through the runtime's update and
recorded in its definition); and what it reads back: ``ports`` (``kago port``) and ``diff``
(its writable layer's changes)."""

from kago.manager import events
from kago.manager.definition import of, to_json
from kago.manager.errors import BadValue, ManagerError


def rename(ctx, ref, new):
    """The container ``ref`` named ``new`` (docker's rules: a valid name, not in use)."""
    from kago.manager.definition import values as V
    record = ctx.records.resolve(ref)
    cid, old = record["id"], record["name"]
    new = V.name(new.lstrip("/") if isinstance(new, str) else new, "rename")
    if new == old:
        raise BadValue("rename", f'renaming a container with the same name as its current '
                                 f'name: "{new}"')
    ctx.records.reserve_name(new, cid)
    try:
        def change(r):
            r["name"] = new
            if r.get("definition") is not None:
                r["definition"] = to_json(of(r).but(name=new))
        ctx.records.update(cid, change)
    except BaseException:
        ctx.records.release_name(new, cid)
        raise
    ctx.records.release_name(old, cid)
    events.container(ctx.paths, "rename", dict(record, name=new), oldName="/" + old)
    return ctx.records.load(cid)


def update(ctx, ref, limits=None, restart=None):
    """New cgroup ``limits`` (a dict of Limits fields: memory, memory_swap, cpus, pids...)
    and/or a ``restart`` policy; a running container gets the limits now, through its
    runtime's ``update``. Returns the record with its new definition."""
    from dataclasses import replace

    from kago.manager import spec
    record = ctx.records.resolve(ref)
    cid = record["id"]
    old = of(record)
    new = old
    if limits:
        new = new.but(limits=replace(old.limits, **limits))
        memory, swap = new.limits.memory, new.limits.memory_swap
        if swap not in (None, -1) and memory is not None and swap < memory:
            raise BadValue("--memory-swap", "minimum memoryswap limit should be larger than "
                                            "memory limit, see usage")
    if restart is not None:
        if old.auto_remove and restart.name != "no":
            raise BadValue("--restart", "restart policy cannot be updated because AutoRemove "
                                        "is enabled for the container")
        if old.tty and restart.name != "no":
            raise BadValue("--restart", "a container with a terminal (-t) runs in the "
                                        "foreground and cannot have a restart policy")
        new = new.but(restart=restart)
    if new == old:
        return record
    if ctx.live(record) in ("running", "paused") and new.limits != old.limits:
        res_old, res_new = spec.resources(old), spec.resources(new)
        if res_old != res_new:
            from kago.manager.define.reload import _with_resets
            ctx.runtime(record).update(cid, _with_resets(res_old, res_new))
    updated = ctx.records.update(cid, lambda r: r.update(definition=to_json(new)))
    events.container(ctx.paths, "update", updated)
    return updated


def ports(record):
    """[(container "PORT/PROTO", host "IP:PORT")] of its published ports, as ``docker port``
    lists them (every local address: 0.0.0.0, and [::] when the container has an IPv6
    address for kago.network to forward to)."""
    att = record.get("network") or {}
    found = att.get("ports")
    if found is None:
        found = [{"host_port": p.host_port, "container_port": p.container_port,
                  "proto": p.proto, "host_ip": p.host_ip} for p in of(record).ports]
    out = []
    for p in sorted(found, key=lambda p: (p["container_port"], p.get("proto", "tcp"))):
        inside = f"{p['container_port']}/{p.get('proto', 'tcp')}"
        ip = p.get("host_ip") or ""
        if ip:
            out.append((inside, f"[{ip}]:{p['host_port']}" if ":" in ip
                        else f"{ip}:{p['host_port']}"))
        else:
            out.append((inside, f"0.0.0.0:{p['host_port']}"))
            if att.get("ipv6"):
                out.append((inside, f"[::]:{p['host_port']}"))
    return out


def diff(ctx, ref):
    """[(A|C|D, path)]: what the container changed over its image (docker's diff)."""
    record = ctx.records.resolve(ref)
    rootfs = record.get("rootfs") or {}
    if rootfs.get("kind") != "image":
        raise ManagerError(f"{record['name']}: runs on a directory (--rootfs), not on an "
                           f"image's layers: it has no changes of its own to list")
    return ctx.store.changes(record["id"])
