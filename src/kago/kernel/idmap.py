"""User-namespace ID maps, written by the parent for the child (user_namespaces(7)).

The parent (root in the initial user namespace) writes /proc/CHILD/uid_map and gid_map. Because
it holds CAP_SETGID in the parent namespace, setgroups(2) stays allowed inside the container, so
additionalGids work; several ranges may be given (up to 340 lines since Linux 4.15).
An unprivileged caller (rootless) writes a single own-ID map itself or has newuidmap/newgidmap
write ranges (write_maps_unprivileged).
"""

import os

from kago.errors import KernelError


def format_map(mappings):
    return "".join(f"{cid} {hid} {size}\n" for cid, hid, size in mappings)


def write_maps(pid, uid_maps, gid_maps):
    _write(f"/proc/{pid}/uid_map", format_map(uid_maps))
    _write(f"/proc/{pid}/gid_map", format_map(gid_maps))


def write_maps_unprivileged(pid, uid_maps, gid_maps, euid, egid):
    """An unprivileged caller's maps for its child's new user namespace (as runc rootless).

    A single line mapping the caller's own ID is written directly; the kernel then requires
    "deny" in /proc/PID/setgroups before gid_map (setgroups(2) stays refused in the
    namespace). Anything else goes through shadow's setuid helpers newuidmap/newgidmap, which
    allow the caller's /etc/subuid and /etc/subgid ranges. Returns True if setgroups was
    denied. The child must be dumpable meanwhile: its /proc files are root's otherwise.
    """
    if _own_single(uid_maps, euid):
        _write(f"/proc/{pid}/uid_map", format_map(uid_maps))
    else:
        _helper("newuidmap", pid, uid_maps)
    if _own_single(gid_maps, egid):
        _write(f"/proc/{pid}/setgroups", "deny")
        _write(f"/proc/{pid}/gid_map", format_map(gid_maps))
        return True
    _helper("newgidmap", pid, gid_maps)
    return False


def _own_single(maps, own):
    return len(maps) == 1 and maps[0][1] == own and maps[0][2] == 1


def _helper(name, pid, maps):
    """Run newuidmap/newgidmap PID (inside outside count)...; its stderr in the error."""
    path = find_on_path(name)
    if path is None:
        from kago.errors import KagoError
        raise KagoError(f"{name} not found on PATH: ID ranges in a rootless user namespace "
                        "need newuidmap and newgidmap (apt-get install uidmap)")
    argv = [path, str(pid)] + [str(n) for line in maps for n in line]
    rfd, wfd = os.pipe()
    try:
        child = os.posix_spawn(path, argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, wfd, 1), (os.POSIX_SPAWN_DUP2, wfd, 2),
            (os.POSIX_SPAWN_CLOSE, rfd)])
    except OSError:
        os.close(rfd)
        raise
    finally:
        os.close(wfd)
    with os.fdopen(rfd, "rb") as f:
        out = f.read(4096).decode(errors="replace").strip()
    _, status = os.waitpid(child, 0)
    if status != 0:
        from kago.errors import KagoError
        why = out.splitlines()[-1] if out else f"exit status {os.waitstatus_to_exitcode(status)}"
        raise KagoError(f"{name} {' '.join(argv[1:])}: {why}")


def find_on_path(name, path=None):
    """The first executable ``name`` in PATH (default: the environment's, else the usual
    system directories), or None."""
    path = path if path is not None else os.environ.get("PATH") or "/usr/bin:/bin:/usr/sbin"
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


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
