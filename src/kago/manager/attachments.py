"""A container's network attachment (kago.network) and volumes, as its record knows them.

``attach`` at create: the network its Definition asks for (bridge, host, none, a network's
name, container:REF), and the /etc files to bind (hosts, hostname, resolv.conf); ``reattach`` at a
start after a release (or a reboot): the same request again, the bundle's netns path moved
if the new one is elsewhere; the detach is the release's and the removal's (``nets.detach``).
``shared_by_running``: whether a running container uses another's network (--network
container:ID), which then keeps it. ``volumes``: named volumes made under ROOT/volumes.
"""

import json
import os

from kago.manager import perms
from kago.manager.definition import stored
from kago.manager.errors import BadValue, NoSuchContainer


def attach(ctx, cid, definition, hostname, undo):
    """(netns for the spec, attachment dict, {dest: host file} to bind)."""
    net = definition.network
    mode, network = net.mode, net.name or None
    if mode == "container":
        other = ctx.records.resolve(net.container)
        if other["id"] == cid:
            raise BadValue("--network", "a container cannot join its own network")
        mode = f"container:{other['id']}"
    etc_dir = ctx.paths.etc(cid)
    att = attach_network(ctx, cid, definition, mode, network, hostname)
    undo.push(ctx.nets.detach, cid)
    netns = "host" if att.mode == "host" else att.netns_path
    if definition.network_etc == "host":
        etc = {d: d for d in ("/etc/resolv.conf", "/etc/hosts") if os.path.exists(d)}
    else:
        etc = {d: os.path.join(etc_dir, os.path.basename(d))
               for d in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
               if os.path.exists(os.path.join(etc_dir, os.path.basename(d)))}
    return netns, att.to_dict(), etc


def attach_network(ctx, cid, definition, mode, network, hostname, ip=None):
    """kago.network's attach with what create asked for (again at a start after a
    release: the same static --ip and published ports; a dynamic address may change,
    unless ``ip`` asks for it: a restored checkpoint's)."""
    from kago.network import PortMapping
    net = definition.network
    ports = [PortMapping(p.host_port, p.container_port, p.proto, p.host_ip)
             for p in definition.ports]
    return ctx.nets.attach(cid, mode=mode, network=network, ip=net.ip or ip, ports=ports,
                           hostname=hostname, aliases=net.aliases + (definition.name,),
                           etc_dir=ctx.paths.etc(cid), **etc_lines(definition))


def etc_lines(definition):
    """--add-host and --dns... as kago.network's attach takes them."""
    out = {}
    if definition.extra_hosts:
        out["extra_hosts"] = [(h.name, h.ip) for h in definition.extra_hosts]
    if definition.dns:
        dns = definition.dns
        out["dns"] = {"servers": list(dns.servers), "search": list(dns.search),
                      "options": list(dns.options)}
    return out


def reattach(ctx, record):
    """The network again if it is not there: the new attachment dict, or None."""
    cid = record["id"]
    old = record.get("network") or {}
    mode = old.get("mode")
    if not mode or mode == "host":
        return None  # a host-network container holds nothing: never released
    current = ctx.nets.attachment(cid)
    if current is not None:
        if not current.netns_path or os.path.exists(current.netns_path):
            return None  # never released, or kept for a running container sharing it
        ctx.nets.detach(cid)  # half there: a reboot emptied /run, or a release failed
    att = None
    keep = (record["state"].get("restoring") or {}).get("ip")
    if keep:  # a restore: the address it was checkpointed with, if it is free
        from kago.errors import KagoError
        try:
            att = attach_network(ctx, cid, stored(record), mode, old.get("network"),
                                 record.get("hostname"), ip=keep)
        except KagoError:
            att = None
    if att is None:
        att = attach_network(ctx, cid, stored(record), mode, old.get("network"),
                             record.get("hostname"))
    try:
        if att.netns_path != old.get("netns_path"):
            retarget_bundle(ctx, cid, att.netns_path)
    except BaseException:
        ctx.nets.detach(cid)
        raise
    return att.to_dict()


def retarget_bundle(ctx, cid, netns_path):
    """The bundle's network namespace path, when a new attach put it elsewhere (the
    root's network settings changed since create)."""
    path = os.path.join(ctx.paths.bundle(cid), "config.json")
    with open(path) as f:
        spec = json.load(f)
    for ns in (spec.get("linux") or {}).get("namespaces") or ():
        if ns.get("type") == "network" and ns.get("path"):
            ns["path"] = netns_path
    with perms.private_file(path + ".tmp") as f:
        f.write(json.dumps(spec))
    os.rename(path + ".tmp", path)


def shared_by_running(ctx, cid):
    """Whether a running container uses ``cid``'s network (--network container:ID)."""
    for att in ctx.nets.attachments():
        if att.shares == cid and att.cid != cid:
            try:
                other = ctx.records.load(att.cid)
            except NoSuchContainer:
                continue
            if ctx.live(other) in ("running", "paused"):
                return True
    return False


def volumes(ctx, definition, uid_map=None, gid_map=None):
    """{volume name: host directory} of the definition's named volumes (made if new, by
    kago.manager.volumes: an ID-mapped container's new volume is its root's); a bind mount's
    missing source is an error here, before anything runs."""
    out = {}
    for m in definition.mounts:
        if m.kind == "volume":
            from kago.manager import volumes as named
            out[m.source] = named.ensure(ctx, m.source, uid_map, gid_map)
        elif m.kind == "bind" and not os.path.exists(m.source):
            # (-v, --mount, a definition's bind() or a compose volume: no flag named)
            raise BadValue(None, f'invalid mount config for type "bind": bind source path '
                                 f"does not exist: {m.source} (mounted on {m.destination})")
    return out
