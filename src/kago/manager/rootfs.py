"""A container's root filesystem on the host: the store's rootfs (kago.storage) bind-mounted
at ROOT/containers/<id>/rootfs for the bundle, or a directory given with --rootfs.

Made at create (``make``), unmounted when the container ends and released (``unmount``: the
writable layer stays), mounted again by the next start (``mount``), and mounted for a while
for ``export`` of an ended container (``mounted``). Its removal is removal.py's.

A directory rootfs (--rootfs, a definition's ``rootfs=``) of a container with an ID range is
shifted as an image's layers are (kago.storage.idshift): an idmapped bind of the directory at
ROOT/containers/<id>/rootfs (``shift`` "idmapped": the directory keeps its owners, the
container sees them as its own IDs), or where the kernel cannot idmap its filesystem, its
files re-owned in place to the container's host IDs (``shift`` "chown", once: a directory
whose top already belongs to the range's root is left as it is). Without the shift its root
would own nothing of it (files of host root show as nobody) and the runtime could not even
make /etc/hosts' mount point.
"""

import contextlib
import errno
import os

from kago.errors import KagoError
from kago.manager import journal
from kago.manager.journal import fault


def make(ctx, record, definition, uid_map, gid_map, undo):
    """The record's "rootfs" dict; what it made is pushed on ``undo``."""
    cid = record["id"]
    idmap = _idmap(uid_map, gid_map)
    if not definition.image:
        if idmap is None:
            return {"kind": "dir", "path": definition.rootfs}
        return _shifted_dir(ctx, record, definition.rootfs, idmap, undo)
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


def _idmap(uid_map, gid_map):
    if not uid_map:
        return None
    from kago.storage import IdMap
    return IdMap([tuple(r) for r in uid_map], [tuple(r) for r in gid_map or uid_map])


def _shifted_dir(ctx, record, source, idmap, undo, shift=None):
    """A directory rootfs for a container with an ID range (see the module's docstring);
    ``shift`` forces "idmapped" or "chown"."""
    from kago.storage import idshift
    path = os.path.join(ctx.paths.container(record["id"]), "rootfs")
    if shift != "chown":
        journal.intend(ctx.records, record, "mount")
        os.mkdir(path, 0o755)
        undo.push(unbind, path)
        try:
            bind_idmapped(source, path, idmap)
            fault("create.mount")
            return {"kind": "dir", "path": path, "source": source, "shift": "idmapped"}
        except (KagoError, OSError) as e:
            if shift == "idmapped" or getattr(e, "errno", None) not in _NO_IDMAP:
                raise
    st = os.lstat(source)
    if (st.st_uid, st.st_gid) != (idmap.uid_to_host(0), idmap.gid_to_host(0)):
        idshift.chown_tree(source, idmap)
    return {"kind": "dir", "path": source, "source": source, "shift": "chown"}


# the kernel or the directory's filesystem cannot idmap: EINVAL (no FS_ALLOW_IDMAP),
# ENOSYS/EOPNOTSUPP (no mount_setattr), EPERM (a mount it will not clone)
_NO_IDMAP = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM)


def bind_idmapped(source, target, idmap):
    from kago.storage import idshift
    userns = idshift.UsernsCache(size=1)
    try:
        idshift.bind(source, target, idmap, userns)
    finally:
        userns.close()


def _idmapped_dir(rootfs):
    return rootfs.get("kind") == "dir" and rootfs.get("shift") == "idmapped"


def mount(ctx, record):
    """Mount an image rootfs (or an idmapped directory) again if it is not; whether it did."""
    rootfs = record.get("rootfs") or {}
    if _idmapped_dir(rootfs):
        from kago.storage import syscalls
        if syscalls.is_mountpoint(rootfs["path"]):
            return False
        bind_idmapped(rootfs["source"], rootfs["path"],
                      _idmap(record.get("uid_map"), record.get("gid_map")))
        return True
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
    if _idmapped_dir(rootfs):
        from kago.storage import syscalls
        syscalls.unmount(rootfs["path"])
        return
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
        yield rootfs.get("source") or rootfs["path"]   # a directory: its own owners
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
