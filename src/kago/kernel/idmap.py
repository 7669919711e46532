"""User-namespace ID maps, written by the parent for the child (user_namespaces(7)).

The parent (root in the initial user namespace) writes /proc/CHILD/uid_map and gid_map. Because
it holds CAP_SETGID in the parent namespace, setgroups(2) stays allowed inside the container, so
additionalGids work; several ranges may be given (up to 340 lines since Linux 4.15).
"""

import os

from kago.errors import KernelError


def format_map(mappings):
    return "".join(f"{cid} {hid} {size}\n" for cid, hid, size in mappings)


def write_maps(pid, uid_maps, gid_maps):
    _write(f"/proc/{pid}/uid_map", format_map(uid_maps))
    _write(f"/proc/{pid}/gid_map", format_map(gid_maps))


def _write(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise KernelError("write", e.errno, path, text.strip().replace("\n", ", ")) from None


def make_userns(uid_maps, gid_maps):
    """A new user namespace with these maps, as an O_RDONLY fd (for MOUNT_ATTR_IDMAP).

    Made by a ``kernel.userns.UsernsHolder`` (the store's idshift.make_userns is the same,
    with a cache and the bookkeeping a long-lived process needs): the holder is a zombie by
    the time its maps are written and its namespace opened, and is reaped last.
    """
    from kago.errors import KagoError
    from kago.kernel.userns import UsernsHolder
    holder = UsernsHolder()
    try:
        pid = holder.start()
        write_maps(pid, uid_maps, gid_maps)
        nsfd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        _reap(holder.pid)
        raise
    if not _reap(pid):
        os.close(nsfd)
        raise KagoError(f"the user namespace holder {pid} was reaped by someone else")
    return nsfd


def _reap(pid):
    """Reap the holder; False if it was not ours to reap (its PID may be another's now)."""
    if pid <= 0:
        return True
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        return False
    return True


def idmapped_tree(source, userns_fd, recursive_bind, recursive_idmap):
    """A detached clone of the host path ``source``, idmapped through ``userns_fd``; its fd.

    open_tree(OPEN_TREE_CLONE) (the whole tree under it for an ``rbind``), then
    mount_setattr(MOUNT_ATTR_IDMAP) on its top mount, or on every mount of it (``ridmap``).
    The caller needs CAP_SYS_ADMIN over the source's filesystem: host root, never the
    container's root in its user namespace (process.child's opener does it for those).
    """
    from kago.kernel import consts as C
    from kago.kernel import libc
    fd = libc.open_tree(C.AT_FDCWD, source, C.OPEN_TREE_CLONE | C.OPEN_TREE_CLOEXEC
                        | (C.AT_RECURSIVE if recursive_bind else 0))
    try:
        libc.mount_setattr(fd, "", C.AT_EMPTY_PATH | (C.AT_RECURSIVE if recursive_idmap else 0),
                           C.MOUNT_ATTR_IDMAP, userns_fd=userns_fd, shown=source)
    except BaseException:
        os.close(fd)
        raise
    return fd
