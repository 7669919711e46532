"""ID shifting: make a container whose root is host ID N see its image's files as its own.

The cheap way is an idmapped mount (mount_setattr(2) with MOUNT_ATTR_IDMAP, Linux 5.12+): a
clone of a layer's mount whose owners the kernel translates through a user namespace's maps,
nothing copied. It needs a user namespace file descriptor with those maps. We make one with a
holder process (``syscalls.UsernsHolder``): clone(2) with CLONE_VM | CLONE_VFORK |
CLONE_NEWUSER, running libc's getpid and exiting, no Python and no page-table copy. The parent
(root in the initial namespace, which may map any IDs) writes the zombie's uid_map and gid_map,
opens /proc/PID/ns/user and reaps it. The namespace lives on as long as the fd (and each mount
made with it). That clone is a documented exception to "only kago.process makes processes":
the child runs libc's getpid, then exit(2), and execs nothing. It costs ~0.15-0.4 ms (the
Python fork it replaced cost 1.5-3.5 ms), once per distinct map per process
(``UsernsCache``).

The fallback, where a filesystem cannot be idmapped, is ``chown_tree``: re-own every file of
the container's own copy, keeping setuid bits and file capabilities that chown(2) clears.
"""

import os
import stat

from kago.kernel import consts as C
from kago.kernel import libc
from kago.kernel import idmap as kernel_idmap
from kago.storage import syscalls
from kago.storage.errors import StoreError

# holders whose make_userns was interrupted before it reaped them (zombies: nothing runs on
# their stacks any more); reaped by the next make_userns, or UsernsCache.close
_abandoned = []


def reap_helpers(block=False):
    """Reap abandoned holders; ``block`` waits for each."""
    for pid in _abandoned.copy():
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = True
        if done and pid in _abandoned:
            _abandoned.remove(pid)


def _reap(holder):
    """Reap ``holder``'s child; False if someone else already had (its PID may have been
    reused since: what was opened through /proc/PID cannot be trusted). An interrupted wait
    leaves the PID to reap_helpers."""
    pid = holder.pid
    if pid <= 0:  # the clone failed
        return True
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        return False
    except BaseException:
        _abandoned.append(pid)
        raise
    return True


def make_userns(idmap):
    """A new user namespace with ``idmap``'s maps; returns an O_RDONLY fd of it."""
    reap_helpers()
    holder = syscalls.UsernsHolder()
    try:
        pid = holder.start()
        kernel_idmap.write_maps(pid, idmap.uids, idmap.gids)
        nsfd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        _reap(holder)
        raise
    try:
        if not _reap(holder):
            raise StoreError(f"the user namespace helper {pid} was reaped by someone else (a "
                             "waitpid(-1) in another thread?); retry")
    except BaseException:
        os.close(nsfd)
        raise
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
    return kernel_idmap.idmapped_tree(path, userns_fd, recursive_bind=recursive,
                                     recursive_idmap=recursive)


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
