"""Facts about this host, read from /proc and /sys (cheap; no ctypes, nothing cached on disk)."""

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
