"""The few kernel calls the store makes that kago.kernel.libc does not wrap for it.

The user namespace holder (``UsernsHolder``, from kago.kernel.userns), the mount
table, read from /proc/self/mountinfo, and btrfs ioctls through fcntl.
"""

import errno
import fcntl
import os
import struct

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.kernel import libc
from kago.kernel.userns import UsernsHolder  # noqa: F401 - idshift.make_userns uses it here
from kago.host import mountinfo as table

# --- mount table ------------------------------------------------------------------------------

def mounts(mountinfo=table.SELF):
    """[(mount point, fstype, source)] in mount order."""
    return [(m.point, m.fstype, m.source) for m in table.read(mountinfo)]


def is_mountpoint(path):
    path = os.path.realpath(path)
    return any(mp == path for mp, _t, _s in mounts())


def fstype_of(path):
    """The filesystem type of the mount that holds ``path`` (longest mount point prefix)."""
    path = os.path.realpath(path)
    best, kind = "", None
    for mp, fstype, _src in mounts():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, kind = mp, fstype
    return kind


def unmount(path):
    """Unmount ``path`` if something is mounted there (every stacked mount); detach when busy.
    Returns True if something was unmounted. No mount table read: umount2 itself says when
    nothing (more) is mounted there (EINVAL; ENOENT for a path gone), and a table read costs
    more than the call (it grows by a mount or two per container)."""
    done = False
    for _ in range(16):  # bounded: a path has few stacked mounts
        try:
            libc.umount2(path, C.UMOUNT_NOFOLLOW)
        except KernelError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return done
            if e.errno != errno.EBUSY:
                raise
            libc.umount2(path, C.MNT_DETACH | C.UMOUNT_NOFOLLOW)
        done = True
    return done


# --- btrfs (ioctl_btrfs(2); struct btrfs_ioctl_vol_args_v2 is 4096 bytes) ---------------------

BTRFS_SUBVOL_RDONLY = 1 << 1
_VOL_ARGS_V2 = 4096
_NAME_OFFSET = 56  # fd, transid, flags, 4 x u64 union


def _iow(nr, size):
    return (1 << 30) | (size << 16) | (0x94 << 8) | nr


BTRFS_IOC_SNAP_CREATE_V2 = _iow(23, _VOL_ARGS_V2)
BTRFS_IOC_SUBVOL_CREATE_V2 = _iow(24, _VOL_ARGS_V2)
BTRFS_IOC_SUBVOL_SETFLAGS = _iow(26, 8)
BTRFS_IOC_SNAP_DESTROY_V2 = _iow(63, _VOL_ARGS_V2)


def _vol_args(name, fd=0, flags=0):
    raw = os.fsencode(name)
    if b"/" in raw or len(raw) >= _VOL_ARGS_V2 - _NAME_OFFSET:
        raise ValueError(name)
    buf = bytearray(_VOL_ARGS_V2)
    struct.pack_into("<qQQ", buf, 0, fd, 0, flags)
    buf[_NAME_OFFSET:_NAME_OFFSET + len(raw)] = raw
    return buf


def _btrfs_ioctl(dirpath, request, buf, op, shown):
    dfd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(dfd, request, buf, True)
    except OSError as e:
        raise KernelError(op, e.errno, shown) from None
    finally:
        os.close(dfd)


def btrfs_subvolume_create(path):
    parent, name = os.path.split(path)
    _btrfs_ioctl(parent, BTRFS_IOC_SUBVOL_CREATE_V2, _vol_args(name), "btrfs subvolume create",
                 path)


def btrfs_snapshot(source, path, readonly=False):
    parent, name = os.path.split(path)
    sfd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        args = _vol_args(name, sfd, BTRFS_SUBVOL_RDONLY if readonly else 0)
        _btrfs_ioctl(parent, BTRFS_IOC_SNAP_CREATE_V2, args, "btrfs subvolume snapshot", path)
    finally:
        os.close(sfd)


def btrfs_set_readonly(path, readonly=True):
    buf = bytearray(struct.pack("<Q", BTRFS_SUBVOL_RDONLY if readonly else 0))
    _btrfs_ioctl(path, BTRFS_IOC_SUBVOL_SETFLAGS, buf, "btrfs property set ro", path)


def btrfs_subvolume_delete(path):
    parent, name = os.path.split(path)
    _btrfs_ioctl(parent, BTRFS_IOC_SNAP_DESTROY_V2, _vol_args(name), "btrfs subvolume delete",
                 path)


def is_btrfs_subvolume(path):
    """A subvolume's root directory has inode number 256 on btrfs."""
    try:
        return os.stat(path, follow_symlinks=False).st_ino == 256
    except FileNotFoundError:
        return False
