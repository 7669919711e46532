"""Cgroup placement: find the hierarchies, make a container's cgroup, put processes in it.

Extractable (like youki's libcgroups): imports only ``kago.errors`` and the stdlib, and nothing
that costs start-up time (no enum/signal/dataclasses/re), because ``kago-oci create`` loads it.

    layout = detect()                                  # v1, v2 or hybrid, from mountinfo
    m = open_manager("/kago-" + container_id, layout)  # absolute: from each hierarchy's top
    m.create(); m.add(pid)
    record = m.to_record()                             # stored beside state.json
    ...
    m = Manager.from_record(record)                    # a later `kago-oci kill` / `delete`
    m.kill_all(9); m.destroy()

Limits, stats and OOM (resources/ is the pure plan, one module per section; limits.py,
stats.py, oom.py the I/O):

    m.create(); m.apply(spec["linux"]["resources"]); m.add(pid)   # kago-oci create
    m.update(resources_from_flags({"memory": "512m"}))             # kago-oci update
    m.stats(); m.pressure(); m.oom_count(); m.oom_watch()          # kago-oci events / state

Cgroups paths follow runc's cgroupfs drivers: "/a/b" hangs from each hierarchy's top, "a/b"
from the caller's (or ``owner_pid``'s) own cgroup in each v1 hierarchy, and from that cgroup's
parent on a pure v2 host (runc's fs2); ".." components, "/" and "" are refused.
Hierarchies are named as /proc/PID/cgroup names them, controllers sorted (``memory``,
``cpu,cpuacct``, ``name=systemd``); the cgroup2 tree is ``unified``.

The Manager protocol (V1Manager, V2Manager and HybridManager implement it):

    create()                mkdir -p in every hierarchy, remembering which directories it made;
                            v1 cpuset gets cpus/mems copied from its parent so tasks can join.
                            On failure it removes what it made, then raises. A container
                            directory already there becomes the container's (runc).
    check_reusable()        for a cgroup already at the path: CgroupError if it holds a
                            process or is frozen (runc's checks), else it may be reused.
    add(pid)                write pid to cgroup.procs in every hierarchy.
    pids() -> list[int]     every process in the cgroup and its children, deduplicated, sorted:
                            from the cgroup2 tree when there is one, else pids/freezer/first v1.
    kill_all(sig=9)         SIGKILL by cgroup.kill where present; otherwise each pid, the cgroup
                            frozen around a SIGKILL walk so forks cannot race it (as runc).
    freeze(timeout=2.0)     v1 freezer.state until FROZEN (the v1 freezer is preferred on hybrid),
    thaw(), frozen()        v2 cgroup.freeze until cgroup.events says "frozen 1".
    can_freeze() -> bool    whether a freezer is there at all (v1 without a freezer mount: no).
    exists() -> bool        any of its directories still exists.
    destroy(timeout=2.0)    rmdir the directories it made, deepest first, in every hierarchy,
                            with any cgroups the container made inside its own; EBUSY is
                            retried until timeout (exiting tasks leave late), then a
                            CgroupError says which processes remain. Gone already is fine.
                            A parent it made that holds other containers' cgroups is kept.
    path_in(name) -> str    the directory in one hierarchy (``memory``, ``cpuacct``, ``unified``).
    paths() -> dict         hierarchy name -> absolute directory.
    to_record() -> dict     str/list values only; ``Manager.from_record(d)`` rebuilds it.
    apply(resources)        plan_writes() for this host, every write checked, then made in order;
                            -> the Write tuples made. Before add(): cpuset/rt must come first.
                            v2 device rules are one Write (DEVICE_FILTER): an eBPF program
                            attached to the cgroup2 directory (device_filter, devices_v2).
    update(resources)       apply() for a running container: devices left alone (as runc update),
                            memory.checkBeforeUpdate honoured.
    available() -> dict     {"v1": controllers, "unified": usable v2 controllers, "files": [...]}.
    stats() -> dict         runc ``events --stats`` data (cpu, cpuset, memory, pids, blkio,
                            hugetlb; PSI under cpu/memory/blkio "psi" where cgroup2 has it).
    pressure() -> dict      {"cpu"|"memory"|"io": {"some"|"full": {avg10, avg60, avg300, total}}}
                            from the cgroup2 directory (the unified tree on hybrid).
    oom_count() -> int      oom_kill of memory.oom_control (v1) or memory.events (v2).
    oom_watch() -> OomWatch wait(timeout) -> OOM kills since the last call (v1: eventfd).

Every failure is ``kago.errors.CgroupError(path, message, errno)`` naming the file or directory;
a resources field this host cannot honour, or a bad value, is ``SpecError(field, message)``.
"""

from kago.errors import CgroupError

from .common import SIGKILL, Manager
from .hybrid import HybridManager
from .mountinfo import (UNIFIED, Hierarchy, Layout, detect, parse_mountinfo, parse_proc_cgroup,
                        read_proc_cgroup, split_path)
from .v1 import V1Manager
from .v2 import V2Manager

_BY_MODE = {"v1": V1Manager, "v2": V2Manager, "hybrid": HybridManager}


def open_manager(cgroups_path, layout=None, owner_pid=None):
    """The Manager of ``cgroups_path`` (not created yet: call create()).

    ``layout`` defaults to detect(); a relative path is resolved against the cgroups of
    ``owner_pid`` (default: the calling process), read from /proc/PID/cgroup.
    """
    layout = layout or detect()
    split_path(cgroups_path)  # refuse ".." before reading anything else
    own = None if cgroups_path.startswith("/") else read_proc_cgroup(owner_pid)
    return _BY_MODE[layout.mode](cgroups_path, layout.resolve(cgroups_path, own))


__all__ = ["CgroupError", "Hierarchy", "HybridManager", "Layout", "Manager", "SIGKILL", "UNIFIED",
           "V1Manager", "V2Manager", "Write", "detect", "open_manager", "parse_mountinfo",
           "parse_proc_cgroup", "plan_writes", "read_proc_cgroup", "resources_from_flags",
           "split_path"]


_LAZY = ("Write", "plan_writes", "resources_from_flags")


def __getattr__(name):
    """The resources plan is loaded on first use: ``create`` without limits never needs it."""
    if name in _LAZY:
        from . import resources
        return getattr(resources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
