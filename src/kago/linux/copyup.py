"""``tmpcopyup``: fill a fresh tmpfs with the image's files at its mount point.

runc (libcontainer/rootfs_linux.go, mountToRootfs case "tmpfs") mounts the tmpfs on a
temporary directory, copies the image's directory into it with mrunalp/fileutils, moves the
mount into place, and gives the tmpfs root the directory's mode. kago keeps a directory fd
of the image's directory, opened before the tmpfs covers it, and copies from that fd into the
mounted tmpfs: no temporary directory, no MS_MOVE, and the copy never looks a path up by name
from anywhere but a directory fd it holds.

Safety: every entry is opened relative to its parent's fd with O_NOFOLLOW and checked with
fstat after the open (a symlink, or an entry swapped for one, is never followed); symlinks are
copied as symlinks, their targets untouched; nothing is resolved against the host's /.

What is kept, per entry: type, content, mode (setuid/setgid/sticky included, set after the
chown that would clear them, never reduced by a umask: runc's copy makes directories under
its umask), owner, extended attributes (as crun copies them; a name the tmpfs or the user
namespace refuses is skipped, runc drops them all), and atime/mtime. Regular files,
directories, symlinks, FIFOs and device nodes are copied (a device node needs CAP_MKNOD: in a
user namespace mknod fails, as it does for runc); sockets are skipped (a socket file without
its listener is meaningless; runc fails on them and on FIFOs). Hard links become separate
files, as with runc.
"""

import errno
import os
import stat

from kago.errors import MountError

MAX_DEPTH = 256
_CHUNK = 1 << 20
_XATTR_SKIP = (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.ENODATA,
               errno.E2BIG, errno.ERANGE, errno.EINVAL)
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src_dir_fd, dst_dir_fd, shown):
    """Copy the entries of the directory ``src_dir_fd`` into the empty ``dst_dir_fd``.

    ``shown`` is the directory's path in the container, for errors ("/tmp/a: reason").
    """
    _copy_entries(src_dir_fd, dst_dir_fd, shown.rstrip("/") or "/", 0)


def copy_root_mode(src_dir_fd, dst_dir_fd):
    """The tmpfs root takes the directory's mode, as runc chmods it after the copy."""
    os.fchmod(dst_dir_fd, stat.S_IMODE(os.fstat(src_dir_fd).st_mode))


def _copy_entries(src, dst, shown, depth):
    if depth > MAX_DEPTH:
        raise MountError("tmpcopyup", errno.ELOOP, shown, f"deeper than {MAX_DEPTH} levels")
    with os.scandir(src) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        path = f"{shown.rstrip('/')}/{name}"
        try:
            _copy_one(src, dst, name, path, depth)
        except MountError:
            raise
        except OSError as e:
            raise MountError("tmpcopyup", e.errno, path) from None


def _copy_one(src, dst, name, path, depth):
    try:
        st = os.lstat(name, dir_fd=src)
    except FileNotFoundError:
        return  # removed since the listing
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        _copy_dir(src, dst, name, path, st, depth)
    elif stat.S_ISREG(mode):
        _copy_file(src, dst, name, st)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
    elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst)
        _copy_special_meta(src, dst, name, st)
    # sockets: skipped (see the module docstring)


def _open_checked(src, name, flags, want):
    """Open ``name`` under ``src`` without following a symlink; the type must be ``want``."""
    fd = os.open(name, flags | _NOFOLLOW, dir_fd=src)
    if stat.S_IFMT(os.fstat(fd).st_mode) != want:
        os.close(fd)
        raise OSError(errno.EAGAIN, "changed while being copied")
    return fd


def _copy_dir(src, dst, name, path, st, depth):
    sfd = _open_checked(src, name, os.O_RDONLY | os.O_DIRECTORY, stat.S_IFDIR)
    try:
        os.mkdir(name, 0o700, dir_fd=dst)
        dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=dst)
        try:
            _copy_entries(sfd, dfd, path, depth + 1)
            _copy_meta(sfd, dfd, st)  # last: the mode may forbid writing into it
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_file(src, dst, name, st):
    # O_NONBLOCK: should the entry have become a FIFO, the open must not wait (fstat refuses it)
    sfd = _open_checked(src, name, os.O_RDONLY | os.O_NONBLOCK, stat.S_IFREG)
    try:
        dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=dst)
        try:
            _copy_data(sfd, dfd)
            _copy_meta(sfd, dfd, st)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_data(sfd, dfd):
    while True:
        try:
            n = os.copy_file_range(sfd, dfd, _CHUNK)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            break
        if n == 0:
            return
    while True:  # the plain way, where copy_file_range cannot be used
        chunk = os.read(sfd, _CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            view = view[os.write(dfd, view):]


def _copy_meta(sfd, dfd, st):
    """Owner, then mode (chown clears setuid/setgid), extended attributes, times."""
    os.fchown(dfd, st.st_uid, st.st_gid)
    os.fchmod(dfd, stat.S_IMODE(st.st_mode))
    _copy_xattrs(sfd, dfd)
    os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_special_meta(src, dst, name, st):
    """A FIFO or device node: opening it could block or touch a device, so by name."""
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
    os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)


def _copy_xattrs(sfd, dfd):
    try:
        names = os.listxattr(sfd)
    except OSError as e:
        if e.errno in _XATTR_SKIP:
            return
        raise
    for attr in names:
        try:
            os.setxattr(dfd, attr, os.getxattr(sfd, attr))
        except OSError as e:
            if e.errno not in _XATTR_SKIP:
                raise
