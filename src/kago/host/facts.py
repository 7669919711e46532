"""Facts about this host, read from /proc, /sys and its file system (cheap; no ctypes, nothing cached)."""

import os


def last_cap(path="/proc/sys/kernel/cap_last_cap"):
    """The highest capability number this kernel knows (40 on 5.9+)."""
    try:
        with open(path, "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


def enabled_lsms(path="/sys/kernel/security/lsm"):
    """The Linux security modules the kernel runs ("apparmor", "selinux", ...).

    securityfs is not always mounted, so the modules' own traces are checked too."""
    found = set()
    try:
        with open(path) as f:
            found.update(f.read().strip().split(","))
    except OSError:
        pass
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            if f.read().strip() == "Y":
                found.add("apparmor")
    except OSError:
        pass
    if os.path.exists("/sys/fs/selinux/enforce"):
        found.add("selinux")
    return tuple(sorted(found - {""}))


def closed_ancestor(path, cache=None):
    """The first directory above ``path`` that others may not search (no o+x), as
    ``(directory, mode)``, or None when every one of them is open.

    Root in a user namespace is an unprivileged host ID: a path below such a directory is out
    of its reach. A directory that cannot be examined counts as closed, with mode None.
    ``cache`` (a dict) keeps the modes seen, for callers that check many paths.
    """
    cache = {} if cache is None else cache
    parent = os.path.dirname(path.rstrip("/"))
    while True:
        if parent not in cache:
            try:
                cache[parent] = os.stat(parent).st_mode
            except OSError:
                cache[parent] = None
        mode = cache[parent]
        if mode is None or not mode & 0o001:
            return parent, mode
        if parent == "/":
            return None
        parent = os.path.dirname(parent)


def cgroup2_unified(root="/sys/fs/cgroup"):
    """True on a pure cgroup v2 host: /sys/fs/cgroup is itself the cgroup2 tree (runc's
    IsCgroup2UnifiedMode; only a cgroup2 mount's root has cgroup.controllers)."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))
