"""Entering namespaces: join the ones the spec names by path, unshare the new ones.

Rules (namespaces(7), setns(2), unshare(2)):
- every namespace file is opened before the first setns, because joining a mount namespace
  changes what paths mean;
- the user namespace is joined first: the others may be owned by it, and joining it is what
  grants the capabilities to join them;
- CLONE_NEWPID and CLONE_NEWTIME only affect children, so the caller forks after this.
"""

import errno
import os

from kago.kernel import consts as C
from kago.kernel import libc

# spec namespace type -> /proc/PID/ns file name
NS_FILES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "user": "user", "cgroup": "cgroup", "time": "time"}


def open_paths(namespaces):
    """Open every joined namespace file: list of (type, flag, fd, path), user first."""
    opened = []
    try:
        for kind, flag, path in namespaces:
            if path:
                opened.append((kind, flag, _open_ns(path), path))
    except BaseException:
        close_all(opened)
        raise
    opened.sort(key=lambda item: item[0] != "user")
    return opened


def _open_ns(path):
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        from kago.errors import KernelError
        raise KernelError("open namespace", e.errno, path) from None


def close_all(opened):
    for _k, _f, fd, _p in opened:
        os.close(fd)


def join(opened):
    """setns into every opened namespace.

    The others before the user namespace where we can: a namespace that the container's user
    namespace does not own (a network namespace made on the host by ``kago.network``, joined
    by a user-namespaced container) cannot be entered from inside it, where we hold no
    capability over its owner. A namespace refused now (EPERM: an unprivileged caller needs
    the user namespace's capabilities first) is joined again after the user namespace.
    """
    user = [item for item in opened if item[0] == "user"]
    later = []
    for item in opened:
        if item[0] == "user":
            continue
        try:
            _setns(item)
        except OSError as e:
            if e.errno != errno.EPERM or not user:
                raise
            later.append(item)
    for item in user + later:
        _setns(item)


def _setns(item):
    kind, flag, fd, path = item
    libc.setns(fd, flag, path=f"{kind} namespace {path}")


# namespaces a process cannot enter itself, only its children (the caller forks afterwards)
FOR_CHILDREN = ("pid", "time")


class ForChildren:
    """Put the caller's future children into the spec's pid/time namespaces, then back.

    unshare(CLONE_NEWPID/NEWTIME) and setns to a pid/time namespace change only where the
    caller's children go; the caller keeps its own. So the runtime can fork the container
    straight into them and then point its later children (hooks) home again with setns.
    """

    __slots__ = ("saved",)

    def __init__(self):
        self.saved = []

    def enter(self, plan_namespaces, time_offsets):
        for kind, flag, path in plan_namespaces:
            if kind not in FOR_CHILDREN:
                continue
            self.saved.append((flag, os.open(f"/proc/self/ns/{NS_FILES[kind]}_for_children",
                                              os.O_RDONLY | os.O_CLOEXEC)))
            if path:
                fd = _open_ns(path)
                try:
                    libc.setns(fd, flag, path=path)
                finally:
                    os.close(fd)
            else:
                libc.unshare(flag)
                if kind == "time":
                    write_time_offsets(time_offsets)

    def restore(self):
        while self.saved:
            flag, fd = self.saved.pop()
            try:
                libc.setns(fd, flag, path="the runtime's own namespace")
            finally:
                os.close(fd)


def unshare_flags(namespaces, skip=("user", "cgroup")):
    """The CLONE_NEW* flags of the namespaces the container gets fresh, but for ``skip``:
    the user namespace comes first, alone (its ID maps must be written before the rest), and
    the cgroup namespace last, by the container process once it is inside its cgroups (a new
    cgroup namespace is rooted at the caller's cgroups at that moment)."""
    flags = 0
    for kind, flag, path in namespaces:
        if path is None and kind not in skip:
            flags |= flag
    return flags


def write_time_offsets(offsets):
    """/proc/self/timens_offsets, written after unshare(CLONE_NEWTIME) and before the fork."""
    if not offsets:
        return
    clocks = {"monotonic": 1, "boottime": 7}
    lines = "".join(f"{clocks[name]} {v.get('secs', 0)} {v.get('nanosecs', 0)}\n"
                    for name, v in offsets.items())
    with open("/proc/self/timens_offsets", "w") as f:
        f.write(lines)


def ns_inode(pid, kind):
    try:
        return os.stat(f"/proc/{pid}/ns/{NS_FILES[kind]}").st_ino
    except OSError:
        return None


def differing(pid):
    """Namespaces of ``pid`` that differ from ours: (type, flag, /proc path), for exec."""
    me = os.getpid()
    out = []
    for kind, name in NS_FILES.items():
        theirs = ns_inode(pid, kind)
        if theirs is not None and theirs != ns_inode(me, kind):
            out.append((kind, _FLAG[kind], f"/proc/{pid}/ns/{name}"))
    return out


_FLAG = {"pid": C.CLONE_NEWPID, "network": C.CLONE_NEWNET, "mount": C.CLONE_NEWNS,
         "ipc": C.CLONE_NEWIPC, "uts": C.CLONE_NEWUTS, "user": C.CLONE_NEWUSER,
         "cgroup": C.CLONE_NEWCGROUP, "time": C.CLONE_NEWTIME}
