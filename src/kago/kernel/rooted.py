"""Paths inside a root directory, resolved by the kernel so that nothing escapes it.

openat2(2) with RESOLVE_IN_ROOT resolves ``..`` and symlinks (absolute or relative) as if the
root fd were "/"; RESOLVE_NO_MAGICLINKS refuses /proc/PID/fd-style links. Missing directories
are made one component at a time, each resolved again from the root, and a file is created with
O_EXCL|O_NOFOLLOW, so a path swapped during the walk lands inside the root or fails. Container
mounts (kago.linux.mounts) and image layer extraction (kago.storage) both build on it.
"""

import errno
import os

from kago.errors import KernelError, MountError
from kago.kernel import consts as C
from kago.kernel import libc

RESOLVE = C.RESOLVE_IN_ROOT | C.RESOLVE_NO_MAGICLINKS


def fdpath(fd):
    return f"/proc/self/fd/{fd}"


def open_in_root(rootfd, path, flags=os.O_PATH):
    """Open ``path`` (relative to the container's /) with the rootfs as the resolution root."""
    return libc.openat2(rootfd, path.lstrip("/") or ".", flags, RESOLVE, shown=path)


def _split(path):
    return [p for p in path.split("/") if p and p != "."]


MAX_SYMLINKS = 40  # as the kernel's path walk (ELOOP beyond)


def resolve_in_root(rootfd, path):
    """Split ``path`` into (existing, missing) component lists, resolved inside the root.

    ``existing`` is a symlink-free path of an entry that exists under the root; ``missing``
    are the names still to be made below it. Symlinks met on the way, absolute or relative,
    are followed with the rootfs as "/", so a dangling one (``/etc/resolv.conf ->
    ../run/x``) names the place inside the rootfs to create, as runc's SecureJoin does. After
    the first missing name nothing can be a symlink, so ``..`` there is taken lexically.
    """
    parts = _split(path)
    done = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            done = done[:-1]
            continue
        target = _readlink_in_root(rootfd, done, name)
        if target is _MISSING:
            return done, _lexical(done, [name] + parts)
        if target is None:
            done.append(name)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise MountError("resolve", errno.ELOOP, path)
        if target.startswith("/"):
            done = []
        parts = _split(target) + parts
    return done, []


_MISSING = object()


def _readlink_in_root(rootfd, done, name):
    """The target of ``done/name`` if it is a symlink, None if it is not, _MISSING if absent."""
    parent = open_in_root(rootfd, "/".join(done), os.O_PATH | os.O_DIRECTORY)
    try:
        return os.readlink(name, dir_fd=parent)
    except FileNotFoundError:
        return _MISSING
    except OSError as e:
        if e.errno == errno.EINVAL:  # exists, not a symlink
            return None
        raise MountError("readlink", e.errno, "/" + "/".join(done + [name])) from None
    finally:
        os.close(parent)


def _lexical(done, rest):
    """Clean the not-yet-existing tail: ``..`` eats a missing name, else an existing one."""
    missing = []
    for name in rest:
        if name != "..":
            missing.append(name)
        elif missing:
            missing.pop()
        elif done:
            done.pop()
    return missing


def mkdirs_in_root(rootfd, path, mode=0o755):
    """Create ``path`` and its parents inside the root; return an O_PATH fd of the directory."""
    try:
        return open_in_root(rootfd, path, os.O_PATH | os.O_DIRECTORY)
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
    fd = _mkdir_last(rootfd, path, mode)
    if fd is not None:
        return fd
    done, missing = resolve_in_root(rootfd, path)
    return _make_dirs(rootfd, done, missing, mode)


def _mkdir_last(rootfd, path, mode):
    """The common case in three calls: the parent exists and only the last name is missing.

    None when it is not that simple (a missing parent, ``..``, a dangling symlink at the name:
    mkdir never follows one, it fails with EEXIST), and the careful walk takes over.
    """
    parent, _, name = path.rstrip("/").rpartition("/")
    if name in ("", ".", "..") or ".." in parent.split("/"):
        return None
    try:
        pfd = open_in_root(rootfd, parent or "/", os.O_PATH | os.O_DIRECTORY)
    except KernelError:
        return None
    try:
        os.mkdir(name, mode, dir_fd=pfd)
    except OSError:
        return None
    finally:
        os.close(pfd)
    return open_in_root(rootfd, path, os.O_PATH | os.O_DIRECTORY)


def _make_dirs(rootfd, done, missing, mode):
    """mkdir each of ``missing`` under the existing ``done``; return an O_PATH fd of the last."""
    fd = open_in_root(rootfd, "/".join(done), os.O_PATH | os.O_DIRECTORY)
    for name in missing:
        done = done + [name]
        try:
            try:
                os.mkdir(name, mode, dir_fd=fd)  # mkdir never follows a symlink at ``name``
            except OSError as e:
                raise MountError("mkdir", e.errno, "/" + "/".join(done)) from None
            nxt = open_in_root(rootfd, "/".join(done), os.O_PATH | os.O_DIRECTORY)
        finally:
            os.close(fd)
        fd = nxt
    return fd


def create_file_in_root(rootfd, path, mode=0o644):
    """Create an empty file at ``path`` inside the root (for file bind mounts and devices)."""
    try:
        return open_in_root(rootfd, path)
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
    done, missing = resolve_in_root(rootfd, path)
    if not missing:  # appeared meanwhile
        return open_in_root(rootfd, "/".join(done))
    shown = "/" + "/".join(done + missing)
    pfd = _make_dirs(rootfd, done, missing[:-1], 0o755)
    try:
        # O_NOFOLLOW|O_EXCL: a symlink planted at the last component since is never followed
        os.close(os.open(missing[-1], os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
                         | os.O_CLOEXEC, mode, dir_fd=pfd))
    except OSError as e:
        raise MountError("create", e.errno, shown) from None
    finally:
        os.close(pfd)
    return open_in_root(rootfd, shown)
