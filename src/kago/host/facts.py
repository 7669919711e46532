"""Facts about this host, read from /proc and /sys (cheap; no ctypes, nothing cached on disk)."""


def last_cap(path="/proc/sys/kernel/cap_last_cap"):
    """The highest capability number this kernel knows (40 on 5.9+)."""
    try:
        with open(path, "rb") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40
