"""``create``: a container made, no process yet.

In order, each step named in the record's ``intents`` before it is made (journal.py), so
that whatever dies, ``ps -a`` shows the record and ``rm -f`` / ``system prune`` find what it
names: the record, its name, the image, the user-namespace ID range (idranges.py), the rootfs
(rootfs.py), the network attachment and /etc files (attachments.py), then the OCI bundle
(spec.build). Any failure undoes what was made, in reverse. The fault-injection steps
(``create.*``, KAGO_FAULT_STEP) are named here.
"""

import json
import os
import time

from kago.errors import KagoError
from kago.manager import attachments, events, idranges, journal, perms, rootfs, rootless
from kago.manager.context import describe
from kago.manager.definition import Definition, IdRange, to_json
from kago.manager.errors import BadValue, ImageNotFound, ManagerError
from kago.manager.journal import fault
from kago.manager.records import Records, new_state, random_name
from kago.runtime import Undo


def create(ctx, definition, group=None):
    """Prepare a container (no process yet) as its Definition (kago.manager.definition,
    checked when it was built) asks; returns its record."""
    if not isinstance(definition, Definition):
        raise TypeError(f"create takes a Definition (kago.manager.definition's builders make "
                        f"one), not {type(definition).__name__}")
    cid = Records.new_id()
    name = definition.name or random_name()
    definition = definition.but(name=name)
    undo = Undo()
    try:
        return _create(ctx, cid, name, definition, group, undo)
    except BaseException as e:
        failed = undo.run()
        if failed:
            from kago.errors import describe as describe_each
            raise ManagerError(f"{describe(e)}; cleanup also failed: "
                               + "; ".join(describe_each(f) for f in failed)) from e
        if isinstance(e, KagoError) and not isinstance(e, ManagerError):
            raise ManagerError(str(e)) from e
        raise


def _create(ctx, cid, name, d, group, undo):
    # the record first (journal.py): from here on, whatever dies, ps -a shows it and
    # rm -f / system prune find what its intents name
    record = {
        "id": cid, "name": name, "created": time.time(), "definition": to_json(d),
        "image": d.image, "image_id": "", "image_config": {},
        "rootfs": None, "network": None, "uid_map": None, "gid_map": None,
        "runtime": ctx.runtime_path, "runtime_root": ctx.runtime_root(ctx.runtime_path),
        "cgroups_path": rootless.cgroups_path(cgroups_path_of(d, cid, name)), "group": group,
        "state": journal.begin(new_state()), "intents": [],
    }
    ctx.records.create(record)
    undo.push(ctx.records.remove, cid)
    fault("create.record")
    ctx.records.reserve_name(name, cid)
    fault("create.name")
    image = _image(ctx, d)
    # the steps this create takes, in one write (each undo is idempotent: one never taken
    # undoes nothing); a journal write per step was 4 more renames per container. A
    # directory rootfs's "mount" only when it is made (its undo unmounts the record's path)
    journal.intend(ctx.records, record, "ids", *(("layer", "mount") if d.image else ()),
                   "network", "bundle")
    uid_map, gid_map = idranges.reserve(ctx.paths, cid, d.ids, ctx.name_of)
    fault("create.ids")
    if uid_map:
        undo.push(idranges.release, ctx.paths, cid)
        _check_reachable(ctx.paths.container(cid))
    made = rootfs.make(ctx, record, d, uid_map, gid_map, undo)
    from kago.manager.rootfs_files import resolve_user
    from kago.manager.spec import ImageConfig, build
    image_cfg = ImageConfig(image.config if image else None)
    user = resolve_user(made["path"], d.user or image_cfg.user)
    d = _docker_extras(ctx, d, image, made["path"], user)
    hostname = d.hostname or cid[:12]
    journal.intend(ctx.records, record, "network")
    netns, attachment, etc = attachments.attach(ctx, cid, d, hostname, undo)
    fault("create.network")
    volumes = attachments.volumes(ctx, d, uid_map, gid_map)
    cgroups_path = record["cgroups_path"]
    spec = build(d, cid=cid, rootfs=made["path"], image=image_cfg, user=user,
                 netns=netns, etc=etc, uid_map=_ranges(uid_map), gid_map=_ranges(gid_map),
                 volumes=volumes, cgroups_path=cgroups_path, init_binary=_init_binary(d),
                 devices=_devices(d), host_caps=_host_caps(d))
    rootless.fit_limits(spec)
    bundle = ctx.paths.bundle(cid)
    journal.intend(ctx.records, record, "bundle")
    os.mkdir(bundle, perms.SEARCH)
    os.chmod(bundle, perms.SEARCH)  # mkdir's mode passed through the umask
    # dumps without indent is the C encoder: ~8x faster
    journal.write_atomic(os.path.join(bundle, "config.json"), json.dumps(spec).encode())
    fault("create.bundle")
    record.update({
        "image_id": image.id if image else "",
        "image_config": image.config if image else {}, "rootfs": made,
        "network": attachment, "uid_map": uid_map, "gid_map": gid_map,
        "args": spec["process"]["args"][2 if d.init else 0:], "env": spec["process"]["env"],
        "hostname": hostname, "definition": to_json(d),
        "stop_signal": d.stop_signal or image_cfg.stop_signal or "SIGTERM",
    })
    journal.finish(record["state"])
    ctx.records.save(record, existing=True)
    undo.steps = []  # made: nothing to undo any more
    fault("create.done")
    events.container(ctx.paths, "create", record)
    events.networks(ctx.paths, record, "connect")
    return record


def cgroups_path_of(d, cid, name):
    """The container's cgroup path (from each hierarchy's top): kago-<id>, or its name with
    the "name" layout, under ``cgroup_parent`` ("/group/name", haconiwa's layout)."""
    leaf = name if d.cgroup_layout == "name" else f"kago-{cid}"
    return f"{d.cgroup_parent}/{leaf}"


def _image(ctx, d):
    if not d.image:
        if not os.path.isdir(d.rootfs):
            raise BadValue("--rootfs", f"{d.rootfs}: not a directory")
        return None
    from kago.storage import ImageNotFound as StoreImageNotFound
    if d.pull == "always":
        return _pull(ctx, d.image)
    try:
        return ctx.store.image(d.image)
    except StoreImageNotFound:
        if d.pull == "missing" and _names_registry(d.image):
            import sys
            print(f"Unable to find image '{d.image}' locally", file=sys.stderr)
            return _pull(ctx, d.image)
        raise ImageNotFound(d.image) from None


def _names_registry(ref):
    """Whether ``ref`` names its registry (host[:port]/...): ``--pull missing`` pulls only
    from a registry the reference names, never from Docker Hub unasked."""
    from kago.storage import reference
    try:
        return reference.parse(ref).domain is not None
    except Exception:
        return False


def _pull(ctx, ref):
    import sys

    from kago.storage import registry
    print(f"kago: pulling {ref}", file=sys.stderr)
    registry.pull(ctx.store, ref)
    return ctx.store.image(ref)


def _docker_extras(ctx, d, image, rootfs_path, user):
    """What docker's flags resolve at create: --group-add names (the image's /etc/group)
    into ``user``, and -P's exposed ports (--expose and the image's ExposedPorts) onto free
    host ports. Returns the Definition as it is recorded."""
    from kago.manager.rootfs_files import resolve_groups
    names = [g for g in d.group_add if not g.isdigit()]
    if names:
        user.groups = sorted(set(user.groups) | set(resolve_groups(rootfs_path, names)))
    if not d.publish_all or d.network.mode in ("host", "none", "container"):
        return d
    from kago.manager.definition import Port
    exposed = list(d.expose)
    for key in ((image.config if image else None) or {}).get("ExposedPorts") or {}:
        number, _, proto = str(key).partition("/")
        if number.isdigit():
            exposed.append((int(number), proto or "tcp"))
    published = {(p.container_port, p.proto) for p in d.ports}
    taken = {(p.host_port, p.proto) for att in ctx.nets.attachments() for p in att.ports}
    from kago.manager.definition import of
    taken |= {(p.host_port, p.proto) for r in ctx.records.all() for p in of(r).ports}
    taken |= {(p.host_port, p.proto) for p in d.ports}
    ports = list(d.ports)
    for number, proto in sorted(set(exposed)):
        if (number, proto) not in published:
            port = _free_port(proto, taken)
            taken.add((port, proto))
            ports.append(Port(port, number, proto))
    return d.but(ports=tuple(ports))


def _free_port(proto, taken):
    """A host port the kernel gives out as free (its ephemeral range, as docker's) that no
    other container publishes (a published port is a DNAT rule, not a bound socket)."""
    import socket
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    for _ in range(64):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        if (port, proto) not in taken:
            return port
    raise ManagerError(f"-P: no free {proto} host port found")


def _host_caps(d):
    if not d.privileged:
        return None
    from kago.manager import devices
    return devices.host_capabilities()


def _devices(d):
    if not d.devices and not d.privileged:
        return None
    from kago.manager import devices
    return devices.for_definition(d)


def _ranges(table_ranges):
    """The ID table's [[inside, host, size], ...] as IdRanges for spec.build."""
    return tuple(IdRange(*r) for r in table_ranges or ())


def _check_reachable(path):
    """A container with its own user namespace reaches its bundle as an unprivileged host ID:
    say so before the runtime fails with a bare EACCES (a missing directory it reports)."""
    from kago.host.facts import closed_ancestor
    closed = closed_ancestor(path)
    if closed and closed[1] is not None:
        parent, mode = closed
        raise ManagerError(
            f"{parent} is not searchable by others (mode {mode & 0o777:o}): a container "
            f"with its own user namespace could not reach its files under it; "
            f"chmod o+x {parent}, or use another --root")


def _init_binary(d):
    """--init: the host's tini (a clear error when it is missing); None without --init."""
    if not d.init:
        return None
    from kago.manager.init_binary import host_binary
    return host_binary()
