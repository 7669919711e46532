"""The container's root: propagation, the root bind, pivot_root (or chroot), read-only root.

Order (runc's prepareRootfs, see mount_namespaces(7) and pivot_root(2)):
1. make the whole tree rslave (or the spec's rootfsPropagation) so nothing we mount propagates
   back to the host;
2. make the rootfs's parent mount private (pivot_root refuses a shared parent) and bind the
   rootfs onto itself so it is a mount point;
3. the spec's mounts, devices, masked and read-only paths (mounts.py, devices.py);
4. pivot_root(".", ".") on the rootfs and detach the old root, which is stacked underneath;
5. remount / read-only if root.readonly.

Without a mount namespace (a spec that lists none: the container shares the host's) runc and
crun still make the spec's mounts under the rootfs, in the host's mount table, and then only
chroot into it; so does kago, but without runc's other steps there (runc makes the host's
whole tree rslave and binds the rootfs onto itself; crun does neither): steps 1, 2 and 5 and
the rootfsPropagation are skipped (plan.validate warns about a read-only root). The mounts
are the host's while the container lives; ``unmount_new`` takes away every mount under the
rootfs that was not there before create, at delete or when create fails (runc and crun leave
them behind).
"""

import errno
import os

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.kernel import libc

SELF_MOUNTINFO = "/proc/self/mountinfo"


def isolate_propagation(propagation):
    """Step 1: stop mount events reaching the host (default rslave, as runc)."""
    flags = propagation or (C.MS_SLAVE | C.MS_REC)
    # a plain shared/slave/private without MS_REC would leave sub-mounts as they are
    libc.mount(None, "/", None, flags | C.MS_REC if flags & C.MS_PROPAGATION else flags)


def _mount_point_of(path):
    """The mount point holding ``path`` (walking up until st_dev changes)."""
    path = os.path.realpath(path)
    dev = os.stat(path).st_dev
    while path != "/":
        parent = os.path.dirname(path)
        if os.stat(parent).st_dev != dev:
            return path
        path = parent
    return "/"


def bind_rootfs(rootfs, userns=False):
    """Step 2: the rootfs becomes its own mount point; its parent mount becomes private."""
    try:
        try:
            parent = _mount_point_of(os.path.dirname(rootfs.rstrip("/")) or "/")
        except OSError as e:
            raise KernelError("stat", e.errno, e.filename) from None
        libc.mount(None, parent, None, C.MS_PRIVATE)
        libc.mount(rootfs, rootfs, None, C.MS_BIND | C.MS_REC)
        try:
            return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise KernelError("open", e.errno, rootfs) from None
    except KernelError as e:
        if userns and e.errno == errno.EACCES:
            raise _closed_to_mapped_root(e) from None
        raise


def _closed_to_mapped_root(e):
    """In a user namespace we are an unprivileged host ID: a directory closed to others above
    the rootfs is the usual reason for EACCES here. Say so, keeping the error's own words."""
    hint = ("every directory above the rootfs must be searchable by others (o+x) for a "
            "container with a user namespace")
    detail = f"{e.detail}; {hint}" if e.detail else hint
    return type(e)(e.op, e.errno, e.path, detail)


def pivot(rootfs):
    """Step 4: make ``rootfs`` the root and drop every trace of the old one."""
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        # pivot_root(".", ".") stacks the old root on top of the new one, so no put_old
        # directory is needed inside the (possibly read-only) rootfs
        libc.pivot_root(".", ".")
        os.fchdir(old)
        # the old root must not propagate its unmount to the host
        libc.mount(None, ".", None, C.MS_SLAVE | C.MS_REC)
        libc.umount2(".", C.MNT_DETACH)
    finally:
        os.close(old)
        os.close(new)
    os.chdir("/")


def move_root(rootfs):
    """``--no-pivot``: move the rootfs over / and chroot into it (for ramfs roots)."""
    os.chdir(rootfs)
    libc.mount(rootfs, "/", None, C.MS_MOVE)
    os.chroot(".")
    os.chdir("/")


def apply_root_propagation(propagation):
    """After the switch, the spec's rootfsPropagation (e.g. rshared) is applied to /."""
    if propagation:
        libc.mount(None, "/", None, propagation)


def make_root_readonly():
    from kago.linux.mounts import remount_bind
    remount_bind("/", C.MS_RDONLY, "/")


# --- without a mount namespace -----------------------------------------------------------------

def open_root(rootfs):
    """The rootfs as it is (no bind, no propagation change: those would be the host's)."""
    try:
        return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError("open", e.errno, rootfs) from None


def chroot_into(rootfs):
    """The root switch without a mount namespace of our own (runc's and crun's chroot)."""
    try:
        os.chdir(rootfs)
        os.chroot(".")
    except OSError as e:
        raise KernelError("chroot", e.errno, rootfs) from None
    os.chdir("/")


def mounts_under(path, mountinfo=SELF_MOUNTINFO):
    """[(mount ID, mount point)] of the mounts at or under ``path`` (resolved), in mount
    order (parents before children)."""
    from kago.host import mountinfo as table
    return [(m.id, m.point) for m in table.under(table.read(mountinfo), os.path.realpath(path))]


def unmount_new(path, before, mountinfo=SELF_MOUNTINFO):
    """Unmount (lazily) every mount under ``path`` whose ID is not in ``before``, deepest
    first; returns the mount points. One already gone is fine."""
    keep = set(before)
    new = [(mid, point) for mid, point in mounts_under(path, mountinfo) if mid not in keep]
    done = []
    for _mid, point in reversed(new):
        try:
            libc.umount2(point, C.MNT_DETACH)
        except KernelError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):  # gone with its parent
                raise
        done.append(point)
    return done
