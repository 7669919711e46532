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
from kago.manager import attachments, idranges, journal, perms, rootfs
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
        "cgroups_path": f"/kago-{cid}", "group": group,
        "state": journal.begin(new_state()), "intents": [],
    }
    ctx.records.create(record)
    undo.push(ctx.records.remove, cid)
    fault("create.record")
    ctx.records.reserve_name(name, cid)
    fault("create.name")
    image = _image(ctx, d)
    journal.intend(ctx.records, record, "ids")
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
    hostname = d.hostname or cid[:12]
    journal.intend(ctx.records, record, "network")
    netns, attachment, etc = attachments.attach(ctx, cid, d, hostname, undo)
    fault("create.network")
    volumes = attachments.volumes(ctx, d, uid_map, gid_map)
    cgroups_path = record["cgroups_path"]
    spec = build(d, cid=cid, rootfs=made["path"], image=image_cfg, user=user,
                 netns=netns, etc=etc, uid_map=_ranges(uid_map), gid_map=_ranges(gid_map),
                 volumes=volumes, cgroups_path=cgroups_path)
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
        "args": spec["process"]["args"], "env": spec["process"]["env"],
        "hostname": hostname,
        "stop_signal": d.stop_signal or image_cfg.stop_signal or "SIGTERM",
    })
    journal.finish(record["state"])
    ctx.records.save(record, existing=True)
    undo.steps = []  # made: nothing to undo any more
    fault("create.done")
    return record


def _image(ctx, d):
    if not d.image:
        if not os.path.isdir(d.rootfs):
            raise BadValue("--rootfs", f"{d.rootfs}: not a directory")
        return None
    from kago.storage import ImageNotFound as StoreImageNotFound
    try:
        return ctx.store.image(d.image)
    except StoreImageNotFound:
        raise ImageNotFound(d.image) from None


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
