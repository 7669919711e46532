"""A container's root filesystem on the host: the store's rootfs (kago.storage) bind-mounted
at ROOT/containers/<id>/rootfs for the bundle, or a directory given with --rootfs.

Made at create (``make``), unmounted when the container ends and released (``unmount``: the
writable layer stays), mounted again by the next start (``mount``), and mounted for a while
for ``export`` of an ended container (``mounted``). Its removal is removal.py's.
"""

import contextlib
import os

from kago.manager import journal
from kago.manager.journal import fault


def make(ctx, record, definition, uid_map, gid_map, undo):
    """The record's "rootfs" dict; what it made is pushed on ``undo``."""
    cid = record["id"]
    if not definition.image:
        return {"kind": "dir", "path": definition.rootfs}
    idmap = None
    if uid_map:
        from kago.storage import IdMap
        idmap = IdMap([tuple(r) for r in uid_map], [tuple(r) for r in gid_map or uid_map])
    journal.intend(ctx.records, record, "layer")
    undo.push(ctx.store.remove_rootfs, cid)
    info = ctx.store.create_rootfs(cid, definition.image, idmap=idmap)
    fault("create.layer")
    path = os.path.join(ctx.paths.container(cid), "rootfs")
    journal.intend(ctx.records, record, "mount")
    os.mkdir(path, 0o755)
    undo.push(unbind, path)
    bind(info.path, path)
    fault("create.mount")
    return {"kind": "image", "path": path, "store_path": info.path, "driver": info.driver,
            "shift": info.shift}


def mount(ctx, record):
    """Mount an image rootfs again if it is not; whether it did."""
    rootfs = record.get("rootfs") or {}
    if rootfs.get("kind") != "image":
        return False
    from kago.storage import syscalls
    if syscalls.is_mountpoint(rootfs["path"]):
        return False
    source = ctx.store.mount_rootfs(record["id"])
    bind(source, rootfs["path"])
    return True


def unmount(ctx, record):
    rootfs = record.get("rootfs") or {}
    if rootfs.get("kind") != "image":
        return
    from kago.storage import syscalls
    syscalls.unmount(rootfs["path"])  # every stacked bind, lazily when busy
    ctx.store.unmount_rootfs(record["id"])


@contextlib.contextmanager
def mounted(ctx, record):
    """The container's root filesystem as the host sees it, mounted for the duration
    (``export`` of an ended container) and unmounted again if it was released."""
    rootfs = record.get("rootfs") or {}
    if rootfs.get("kind") != "image":
        yield rootfs["path"]
        return
    from kago.storage import syscalls
    if syscalls.is_mountpoint(rootfs["path"]):
        yield rootfs["path"]
        return
    source = ctx.store.mount_rootfs(record["id"])
    try:
        yield source
    finally:
        with ctx.records.lock(record["id"]):
            state = ctx.records.load(record["id"])["state"]
            if state.get("released") and not state.get("fresh") and \
                    not syscalls.is_mountpoint(rootfs["path"]):
                ctx.store.unmount_rootfs(record["id"])


def bind(source, target):
    """The store's rootfs, bind-mounted at ROOT/containers/<id>/rootfs for the bundle.

    Why not hand the runtime the store's own path: the store keeps its directories 0700, and
    a container with a user namespace sets its root up as the namespace's root, which may not
    search them (EACCES). Our container directory is 0755 and the mount's root is the
    rootfs itself, whose ownership the ID shift already made right."""
    from kago.kernel import consts, libc
    libc.mount(source, target, None, consts.MS_BIND)


def unbind(target):
    from kago.errors import KernelError
    from kago.kernel import consts, libc
    try:
        libc.umount2(target, consts.MNT_DETACH)
    except KernelError as e:
        if e.errno not in (22, 2):  # EINVAL: not a mount point (any more); ENOENT: gone
            raise
