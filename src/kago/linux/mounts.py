"""Mounts inside the container's root filesystem, resolved safely.

Every destination is resolved by the kernel under the rootfs (openat2(2) with RESOLVE_IN_ROOT,
so ``..`` and symlinks, absolute or relative, stay inside it), then mounted through the resulting
file descriptor's ``/proc/self/fd/N`` link: the mount lands on the dentry that was resolved, even
if the path is changed afterwards (the CVE-2019-19921 / CVE-2021-30465 class of races). Missing
directories are created one component at a time, each resolved again from the root.

Bind mounts take their flags only on a second MS_REMOUNT|MS_BIND call (mount(2)); in a user
namespace, that remount must keep the flags the kernel locked on the source (nosuid, nodev, ...),
so on EPERM it retries with the source's current flags added, as runc does.
Man pages: mount(2), openat2(2), mount_setattr(2), mount_namespaces(7).
"""

import errno
import os
import stat

from kago import log
from kago.errors import KagoError, KernelError, MountError
from kago.kernel import consts as C
from kago.kernel import libc
from kago.kernel.rooted import (  # noqa: F401 - the mount steps' callers use them here
    RESOLVE, create_file_in_root, fdpath, mkdirs_in_root, open_in_root, resolve_in_root)

# statvfs f_flag bits -> the MS_* flags a user-namespaced remount must keep
_LOCKED = ((os.ST_RDONLY, C.MS_RDONLY), (os.ST_NOSUID, C.MS_NOSUID), (os.ST_NODEV, C.MS_NODEV),
           (os.ST_NOEXEC, C.MS_NOEXEC), (os.ST_NOATIME, C.MS_NOATIME),
           (os.ST_NODIRATIME, C.MS_NODIRATIME), (os.ST_RELATIME, C.MS_RELATIME))


def _source_is_dir(op, source_fd=None):
    if not op.is_bind:
        return True
    try:
        st = os.stat(op.source) if source_fd is None else os.fstat(source_fd)
    except OSError as e:
        raise MountError("stat", e.errno, op.source, f"source of mount {op.destination}") from None
    return stat.S_ISDIR(st.st_mode)


def prepare_target(rootfd, op, source_fd=None):
    """Return an O_PATH fd of the mount point, creating it (dir or file like the source)."""
    if _source_is_dir(op, source_fd):
        return mkdirs_in_root(rootfd, op.destination)
    return create_file_in_root(rootfd, op.destination)


def mount_one(rootfd, op, userns=False, source_fd=None):
    """Perform one MountOp inside the root.

    ``source_fd``: the bind source, opened beforehand by a process with the host's credentials
    (see process.child.SourceOpener): an O_PATH fd, or for an idmapped bind the detached
    idmapped tree; it is closed here.
    """
    if op.source is None and op.fstype is None:  # change the flags of what is mounted there
        mnt = open_in_root(rootfd, op.destination)
        try:
            return remount_bind(fdpath(mnt), op.remount_flags or 0, op.destination)
        finally:
            os.close(mnt)
    image_dir = None
    try:
        target = prepare_target(rootfd, op, source_fd)
        try:
            if op.copy_up:  # the image's directory, before the tmpfs covers it
                image_dir = _reopen_dir(target, op.destination)
            if op.idmap is not None:
                fell_back = _attach_idmapped(op, target, source_fd)
            else:
                fell_back = _first_mount(op, target, userns, source_fd)
        finally:
            os.close(target)
        if image_dir is not None:
            _copy_up(rootfd, image_dir, op.destination)
    finally:
        if source_fd is not None:
            os.close(source_fd)
        if image_dir is not None:
            os.close(image_dir)
    if fell_back:
        return _seal_readonly(rootfd, op.destination)
    if op.remount_flags is not None or op.propagation or op.attr_set or op.attr_clr:
        mnt = open_in_root(rootfd, op.destination)
        try:
            _finish_mount(op, mnt)
        finally:
            os.close(mnt)


def _reopen_dir(path_fd, shown):
    """A readable directory fd of the O_PATH ``path_fd`` (through its /proc/self/fd link)."""
    try:
        return os.open(fdpath(path_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise MountError("open", e.errno, shown, "for tmpcopyup") from None


def _copy_up(rootfd, image_dir, destination):
    """tmpcopyup: copy the image's directory into the tmpfs just mounted over it."""
    from kago.linux import copyup
    fs = open_in_root(rootfd, destination, os.O_RDONLY | os.O_DIRECTORY)
    try:
        copyup.copy_tree(image_dir, fs, destination)
        copyup.copy_root_mode(image_dir, fs)
    except OSError as e:
        if isinstance(e, KernelError):
            raise
        raise MountError("tmpcopyup", e.errno, destination) from None
    finally:
        os.close(fs)


def _attach_idmapped(op, target, tree_fd=None):
    """An idmapped bind: attach the detached idmapped tree at ``target`` with move_mount(2).

    ``tree_fd``: the tree, made by the runtime's opener (a container with a user namespace,
    whose root may not idmap host filesystems); else it is made here, as host root.
    Either way the user namespace fd is closed: nothing of the runtime reaches the program.
    """
    from kago.kernel import idmap
    try:
        if tree_fd is None:
            _uids, _gids, _path, recursive = op.idmap
            tree_fd = idmap.idmapped_tree(op.source, op.userns_fd,
                                          bool(op.flags & C.MS_REC), recursive)
            made = True
        else:
            made = False
        try:
            libc.move_mount(tree_fd, "", target, "",
                            C.MOVE_MOUNT_F_EMPTY_PATH | C.MOVE_MOUNT_T_EMPTY_PATH,
                            shown=op.destination)
        finally:
            if made:
                os.close(tree_fd)
    finally:
        if op.userns_fd is not None:
            os.close(op.userns_fd)
            op.userns_fd = None
    return False


def _first_mount(op, target, userns, source_fd=None):
    """Mount ``op`` on ``target``; True if sysfs fell back to a bind that still needs sealing."""
    source = op.source if source_fd is None else fdpath(source_fd)
    try:
        libc.mount(source, fdpath(target), op.fstype, op.flags, op.data or None,
                   shown=op.destination)
    except MountError as e:
        if op.fstype == "sysfs" and userns and e.errno == errno.EPERM:
            # sysfs cannot be mounted in a user namespace that does not own the network
            # namespace; show the host's /sys read-only instead (runc's rootless spec does)
            log.debug("sysfs: falling back to a read-only bind of /sys", dest=op.destination)
            libc.mount("/sys", fdpath(target), None, C.MS_BIND | C.MS_REC, shown=op.destination)
            return True
        raise
    return False


_SEALED = C.MOUNT_ATTR_RDONLY | C.MOUNT_ATTR_NOSUID | C.MOUNT_ATTR_NODEV | C.MOUNT_ATTR_NOEXEC


def _seal_readonly(rootfd, destination):
    """Make the tree at ``destination`` read-only, nosuid, nodev, noexec, sub-mounts included.

    The fd is opened again: the one the mount was made through names the directory underneath,
    and a remount of that would fail with EINVAL (it is not a mount point).
    """
    mnt = open_in_root(rootfd, destination)
    try:
        libc.mount_setattr(mnt, "", C.AT_EMPTY_PATH | C.AT_RECURSIVE, _SEALED, 0,
                           shown=destination)
    finally:
        os.close(mnt)


def _finish_mount(op, mnt):
    path = fdpath(mnt)
    if op.remount_flags is not None:
        remount_bind(path, op.remount_flags, op.destination)
    for flag in op.propagation or ():
        libc.mount(None, path, None, flag, shown=op.destination)
    if op.attr_set or op.attr_clr:
        libc.mount_setattr(mnt, "", C.AT_EMPTY_PATH | C.AT_RECURSIVE, op.attr_set or 0,
                           op.attr_clr or 0, shown=op.destination)


def remount_bind(path, flags, shown):
    """MS_REMOUNT|MS_BIND with ``flags``, keeping any flags the kernel locked on the mount."""
    base = C.MS_REMOUNT | C.MS_BIND | (flags & ~(C.MS_BIND | C.MS_REC | C.MS_REMOUNT))
    try:
        libc.mount(None, path, None, base, shown=shown)
    except MountError as e:
        if e.errno != errno.EPERM:
            raise
        libc.mount(None, path, None, base | locked_flags(path), shown=shown)


def locked_flags(path):
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED if f_flag & st)


def bind_readonly(rootfd, path):
    """readonlyPaths: bind the path over itself and remount it read-only (missing = skip)."""
    try:
        fd = open_in_root(rootfd, path)
    except KernelError as e:
        if e.errno == errno.ENOENT:
            return
        raise
    try:
        libc.mount(fdpath(fd), fdpath(fd), None, C.MS_BIND | C.MS_REC, shown=path)
    finally:
        os.close(fd)
    fd = open_in_root(rootfd, path)
    try:
        remount_bind(fdpath(fd), C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, path)
    finally:
        os.close(fd)


NULL_DEVICE = os.makedev(1, 3)


def open_null(rootfd):
    """The container's own /dev/null (an O_PATH fd), the source every masked file is bound from.

    As runc, which opens /dev/null after pivot_root: the node kago made in the container's /dev
    (or what a bind of /dev holds), resolved inside the root, so the masks show the container's
    /dev filesystem in /proc/self/mountinfo and nothing of the host's devtmpfs. It must be the
    null device: a /dev without one, or with something else there (a symlink is followed inside
    the rootfs only), fails with a clear error, as in runc 1.3.3 and later, rather than binding
    whatever it is over the masked files.
    """
    try:
        fd = open_in_root(rootfd, "/dev/null")
    except KernelError as e:
        raise MountError("mask paths: open", e.errno, "/dev/null",
                         "the container's null device, bound over each masked file") from None
    st = os.fstat(fd)
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == NULL_DEVICE:
        return fd
    os.close(fd)
    raise KagoError("mask paths: the container's /dev/null must be the null device (c 1:3), "
                    f"not {_kind(st)}")


_KINDS = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
          (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"))


def _kind(st):
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
        return f"the device {kind} {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return next((name for test, name in _KINDS if test(st.st_mode)), "another kind of file")


def mask_paths(rootfd, paths):
    """maskedPaths: the container's /dev/null over each file, an empty read-only tmpfs over each
    directory; a path the rootfs lacks is skipped. /dev/null is checked once, up front, when
    there is any path to mask (runc's order)."""
    if not paths:
        return
    null = open_null(rootfd)
    try:
        for path in paths:
            mask(rootfd, path, null)
    finally:
        os.close(null)


def mask(rootfd, path, null):
    """One masked path; ``null``: the O_PATH fd of the container's /dev/null (open_null)."""
    try:
        fd = open_in_root(rootfd, path)
    except KernelError as e:
        if e.errno == errno.ENOENT:
            return
        raise
    try:
        target = fdpath(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            libc.mount("tmpfs", target, "tmpfs", C.MS_RDONLY, shown=path)
        else:
            libc.mount(fdpath(null), target, None, C.MS_BIND, shown=path)
    finally:
        os.close(fd)
