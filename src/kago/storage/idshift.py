"""ID shifting: make a container whose root is host ID N see its image's files as its own.

The cheap way is an idmapped mount (mount_setattr(2) with MOUNT_ATTR_IDMAP, Linux 5.12+): a
clone of a layer's mount whose owners the kernel translates through a user namespace's maps,
nothing copied. It needs a user namespace file descriptor with those maps. We make one by
forking a child that unshares CLONE_NEWUSER and waits; the parent writes its uid_map and gid_map
(root in the initial namespace may map any IDs), opens /proc/CHILD/ns/user, then releases and
reaps it. The namespace lives on as long as the fd (and each mount made with it).

That fork is a documented exception to "only kago.process forks": the child runs no Python
after the fork beyond two pipe operations and one unshare(2), execs nothing and joins nothing;
it never becomes a container. Its cost is ~2-3 ms, once per distinct map per process
(``UsernsCache``).

The fallback, where a filesystem cannot be idmapped, is ``chown_tree``: re-own every file of
the container's own copy, keeping setuid bits and file capabilities that chown(2) clears.
"""

import os
import stat

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.kernel import libc
from kago.linux import idmap as linux_idmap
from kago.storage import syscalls
from kago.storage.errors import StoreError

_exiting = []  # helper children released but not reaped yet (see make_userns)


def reap_helpers(block=False):
    """Reap released helper children; ``block`` waits for each."""
    for pid in list(_exiting):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _exiting.remove(pid)


def make_userns(idmap):
    """A new user namespace with ``idmap``'s maps; returns an O_RDONLY fd of it.

    The helper is not waited for here: it exits while we go on (its exit costs as much as the
    fork), and is reaped by the next call or by ``UsernsCache.close``."""
    reap_helpers()
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: unshare, say so, wait until the parent has the fd
        try:
            os.close(ready_r)
            os.close(hold_w)
            err = syscalls.unshare_in_child(C.CLONE_NEWUSER)
            os.write(ready_w, bytes([min(err, 255)]))
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        status = os.read(ready_r, 1)
        if status != b"\x00":
            err = status[0] if status else 0
            raise KernelError("unshare", err, detail="CLONE_NEWUSER for an idmapped mount")
        linux_idmap.write_maps(pid, idmap.uids, idmap.gids)
        nsfd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(hold_w)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(ready_r)
    os.close(hold_w)  # the child's read returns: it exits
    _exiting.append(pid)
    return nsfd


class UsernsCache:
    """User namespace fds by map, the ``size`` most recently used kept open (a mount made
    with one keeps its namespace alive by itself; the fd only saves a fork next time)."""

    def __init__(self, size=16):
        self._fds = {}
        self.size = size

    def get(self, idmap):
        key = idmap.key()
        fd = self._fds.pop(key, None)
        if fd is None:
            fd = make_userns(idmap)
            while len(self._fds) >= self.size:
                os.close(self._fds.pop(next(iter(self._fds))))
        self._fds[key] = fd  # (re)inserted last: dicts keep insertion order
        return fd

    def close(self):
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        reap_helpers(block=True)


def idmapped_clone(path, userns_fd, recursive=False):
    """A detached clone of the mount at ``path``, idmapped through ``userns_fd``; returns its fd.

    Used as an overlay lower layer through /proc/self/fd/N (overlayfs keeps its own private
    clone, so the fd may be closed once the overlay is mounted), or attached with move_mount.
    """
    flags = C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC | (C.AT_RECURSIVE if recursive else 0)
    fd = libc.open_tree(C.AT_FDCWD, path, flags)
    try:
        libc.mount_setattr(fd, "", C.AT_EMPTY_PATH | (C.AT_RECURSIVE if recursive else 0),
                           C.MOUNT_ATTR_IDMAP, userns_fd=userns_fd, shown=path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def attach(fd, target):
    """Attach the detached mount ``fd`` at ``target``."""
    libc.move_mount(fd, "", C.AT_FDCWD, target, C.MOVE_MOUNT_F_EMPTY_PATH, shown=target)


def bind(source, target, idmap=None, userns=None):
    """Bind ``source`` at ``target``, idmapped when ``idmap`` is given (userns: a UsernsCache)."""
    if idmap is None:
        libc.mount(source, target, None, C.MS_BIND, shown=target)
        return
    fd = idmapped_clone(source, userns.get(idmap))
    try:
        attach(fd, target)
    finally:
        os.close(fd)


# --- the chown fallback ---------------------------------------------------------------------

_CAPS = "security.capability"


def shift_owner(st, idmap, path, reverse=False):
    """The (uid, gid) ``st``'s owner has on the other side of ``idmap``.

    Forward (container -> host) an unmapped ID is an error: the container could not use the
    file. Reverse (host -> container, for commit) an unmapped ID is kept as is.
    """
    if reverse:
        uid = idmap.uid_to_container(st.st_uid)
        gid = idmap.gid_to_container(st.st_gid)
        return (st.st_uid if uid is None else uid), (st.st_gid if gid is None else gid)
    uid = idmap.uid_to_host(st.st_uid)
    gid = idmap.gid_to_host(st.st_gid)
    if uid is None or gid is None:
        raise StoreError(f"{path}: owner {st.st_uid}:{st.st_gid} is not mapped by the "
                         f"container's idmap {idmap.key()} (widen the map)")
    return uid, gid


def chown_tree(root, idmap):
    """Re-own every file under ``root`` (not following symlinks, not crossing mounts) from
    container IDs to host IDs. Returns the number of entries changed."""
    count = 0
    root_dev = os.lstat(root).st_dev
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            count += _chown_one(os.path.join(dirpath, name), idmap)
        dirnames[:] = [d for d in dirnames
                       if os.lstat(os.path.join(dirpath, d)).st_dev == root_dev]
    count += _chown_one(root, idmap)
    return count


def _chown_one(path, idmap):
    st = os.lstat(path)
    uid, gid = shift_owner(st, idmap, path)
    if (uid, gid) == (st.st_uid, st.st_gid):
        return 0
    caps = None
    if stat.S_ISREG(st.st_mode):
        try:
            caps = os.getxattr(path, _CAPS)
        except OSError:
            caps = None
    os.chown(path, uid, gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o6000:
        os.chmod(path, stat.S_IMODE(st.st_mode))  # chown cleared setuid/setgid
    if caps is not None:
        os.setxattr(path, _CAPS, caps)
    return 1
