"""A container's row in the console's list, and one metrics sample, as plain JSON values.

Pure functions: the manager's record and live state, two readings of ``manager.views.sample``
(the reading ``kago stats`` takes: cgroup CPU time, memory without inactive file pages, pids,
block I/O and the cgroup2 ``*.pressure`` files' ``some avg10``) and the time in, dicts out.
A value the host cannot measure (no reading, no PSI) is None.
"""

import os

# the keys of a sample and of a history (each a list in a history)
SERIES = ("cpu_pct", "mem_bytes", "io_read_bytes", "io_write_bytes", "pids",
          "psi_cpu_some10", "psi_mem_some10", "psi_io_some10")
_PSI = (("psi_cpu_some10", "cpu"), ("psi_mem_some10", "memory"), ("psi_io_some10", "blkio"))


def host_memory():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


HOST_MEMORY = host_memory()


def cpu_pct(before, after):
    """CPU % of one core between two readings (None without both)."""
    if before is None or after is None:
        return None
    wall = after["t"] - before["t"]
    if wall <= 0:
        return None
    return round(max(after["cpu"] - before["cpu"], 0) / (wall * 1e9) * 100, 2)


def sample(t, before, after):
    """One sample (``SERIES`` keys and ``t``, epoch seconds) from two readings."""
    if after is None:
        return {"t": t, **{k: None for k in SERIES}}
    psi = after.get("psi") or {}
    out = {"t": t, "cpu_pct": cpu_pct(before, after), "mem_bytes": after["mem"],
           "io_read_bytes": after["read"], "io_write_bytes": after["write"],
           "pids": after["pids"]}
    for key, name in _PSI:
        out[key] = psi.get(name)
    return out


def mem_limit(reading):
    """The reading's memory limit, None when there is none (the host's memory)."""
    if reading is None:
        return None
    limit = reading.get("limit")
    return None if not limit or limit >= HOST_MEMORY else limit


def ports(record):
    """docker ps's published ports as a list: ["127.0.0.1:8080->80/tcp", ...]."""
    from kago.manager import format as F
    text = F.ports_text(record)
    return text.split(", ") if text else []


def group_name(record):
    """The name of the definition file that made the container (its stem), or None."""
    group = record.get("group") or {}
    if not group.get("file"):
        return None
    return os.path.splitext(os.path.basename(group["file"]))[0]


def row(record, live, now, last=None, reading=None):
    """The list's row for a container: ``last`` its latest sample (or None), ``reading``
    its latest raw reading (for the memory limit)."""
    from kago.manager import format as F
    run = record.get("state") or {}
    running = live in ("running", "paused")
    started = run.get("started_at") or None
    if not running or (last is not None and started and last["t"] < started):
        last = None  # not running, or a sample of its run before a restart
    out = {
        "id": record["id"], "name": record["name"],
        "image": record.get("image") or record.get("rootfs"),
        "state": live, "status": F.status_text(record, live, now=now),
        "created": record.get("created"), "started_at": started,
        "uptime_s": round(now - started, 1) if running and started else None,
        "cpu_pct": None, "mem_bytes": None,
        "mem_limit": mem_limit(reading) if running else None, "pids": None,
        "psi_cpu_some10": None, "psi_mem_some10": None, "psi_io_some10": None,
        "ports": ports(record) if running else [],
        "group": group_name(record),
    }
    if last is not None:
        for key in ("cpu_pct", "mem_bytes", "pids", "psi_cpu_some10", "psi_mem_some10",
                    "psi_io_some10"):
            out[key] = last.get(key)
    return out
