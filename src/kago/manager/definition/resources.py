"""cgroup and rlimit values -> CgroupKeys and Rlimits (pure; BadValue names the field).

cgroup settings may be written in either vocabulary (``cpu.cfs_quota_us`` or ``cpu.max``):
v1 names that have a ``linux.resources`` field are converted for it here (the runtime writes
them for whatever layout the host has); every other name is kept as text for
``linux.resources.unified``, which the runtime writes to cgroup2 or translates to v1 where an
equivalent exists.
"""

from kago.manager.definition.parts import RLIMITS, CgroupKey, Rlimit
from kago.manager.definition.values import size
from kago.manager.errors import BadValue

# v1 control file -> (linux.resources section, field, kind of value)
V1_FIELDS = {
    "cpu.cfs_quota_us": ("cpu", "quota", "int"),
    "cpu.cfs_period_us": ("cpu", "period", "int"),
    "cpu.shares": ("cpu", "shares", "int"),
    "cpu.rt_runtime_us": ("cpu", "realtimeRuntime", "int"),
    "cpu.rt_period_us": ("cpu", "realtimePeriod", "int"),
    "cpuset.cpus": ("cpu", "cpus", "str"),
    "cpuset.mems": ("cpu", "mems", "str"),
    "memory.limit_in_bytes": ("memory", "limit", "size"),
    "memory.memsw.limit_in_bytes": ("memory", "swap", "size"),
    "memory.soft_limit_in_bytes": ("memory", "reservation", "size"),
    "memory.swappiness": ("memory", "swappiness", "int"),
    "pids.max": ("pids", "limit", "max"),
    "blkio.weight": ("blockIO", "weight", "int"),
}


def cgroup(mapping, field):
    """{"cpu.cfs_quota_us": 30000, "cpu.max": "30000 100000", ...} -> CgroupKeys."""
    out = []
    for key, value in dict(mapping or {}).items():
        key = str(key)
        where = f"{field}[{key!r}]"
        if "." not in key or "/" in key:
            raise BadValue(where, "cgroup keys are control file names like cpu.max or "
                                  "cpu.cfs_quota_us")
        known = V1_FIELDS.get(key)
        if known is None:
            out.append(CgroupKey(key, str(value)))
            continue
        section, name, kind = known
        if kind == "size":
            value = -1 if value in (-1, "-1", "max") else size(value, where)
        elif kind == "max":
            value = -1 if value in (-1, "-1", "max") else _convert(value, where, int)
        else:
            value = _convert(value, where, int if kind == "int" else str)
        out.append(CgroupKey(key, value, section, name))
    return tuple(out)


def _convert(value, where, conv):
    try:
        if isinstance(value, bool):
            raise ValueError
        return conv(value)
    except ValueError:
        raise BadValue(where, f"invalid value {value!r}") from None


def rlimits(mapping, field):
    """{"nofile": (soft, hard) or n, "RLIMIT_NPROC": ...} -> Rlimits (names without
    RLIMIT_, lower case)."""
    out = {}
    for name, value in dict(mapping or {}).items():
        key = str(name).lower().replace("rlimit_", "")
        where = f"{field}.{name}"
        if key not in RLIMITS:
            raise BadValue(where, f"unknown resource limit: use one of {', '.join(RLIMITS)}")
        try:
            soft, hard = (value, value) if isinstance(value, int) else tuple(value)
            soft, hard = int(soft), int(hard)
        except (TypeError, ValueError):
            raise BadValue(where, f"invalid limit {value!r}: use N or (soft, hard)") from None
        if soft > hard:
            raise BadValue(where, f"soft limit {soft} is above the hard one {hard}")
        out[key] = Rlimit(key, soft, hard)
    return tuple(out.values())
