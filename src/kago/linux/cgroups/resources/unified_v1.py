"""Unified (raw v2) keys on v1 hierarchies: cpu.max, io.weight, memory.max... -> v1 files.

The inverses of runc's conversions (in __init__), written in the order the sections' own planners
use: cpu.max as cpu's bandwidth writes (period again after the quota), memory.max and
memory.swap.max as memory's memsw order.
"""

from kago.errors import SpecError

from .values import (INT64, UNLIMITED, Write, _cpulist, _decimal, _dict, _show, io_to_blkio_weight,
                    swap_from_v2, weight_to_shares)
from .blkio import _THROTTLES, v1_weight_file
from .cpu import _bandwidth_writes
from .memory import memsw_order


def unified_to_v1(keys, field, host, res):
    """The v1 writes of unified keys whose controller is not usable in the cgroup2 tree."""
    out = []
    memory = {k: keys.pop(k) for k in ("memory.max", "memory.swap.max") if k in keys}
    if memory:
        out += _memory_keys_to_v1(memory, field, host, res)
    for key, value in keys.items():
        where = f"{field}.{key}"
        translate = _TO_V1.get(key) or _hugetlb_key(key)
        if translate is None:
            raise SpecError(where, f"unified key {key} has no cgroup v1 equivalent on this host")
        for controller, filename, text in translate(value, where, host):
            out.append(_v1_write(controller, filename, text, where, host))
    return out


def _v1_write(controller, filename, text, field, host):
    if controller not in host.v1:
        raise SpecError(field, f"the {controller} controller is not available on this host")
    return Write(controller, filename, text, field)


def _number(value, field, lo=0, hi=INT64[1], allow_max=True):
    """A v2 value: a decimal number or "max" (returned as -1)."""
    value = value.strip()
    if allow_max and value == "max":
        return UNLIMITED
    if not _decimal(value) or not lo <= int(value) <= hi:
        raise SpecError(field, f"must be a number from {lo} to {hi}{' or max' * allow_max}, "
                        f"not {_show(value)}")
    return int(value)


def _cpu_max_to_v1(value, field, host):
    """cpu.max "$MAX [$PERIOD]" -> cfs_period_us, cfs_quota_us, period again (as cpu.py)."""
    parts = value.split()
    if not 1 <= len(parts) <= 2:
        raise SpecError(field, f"must be \"$MAX $PERIOD\", not {_show(value)}")
    quota = _number(parts[0], field, 1)
    period = _number(parts[1], field, 1, allow_max=False) if len(parts) == 2 else None
    writes = _bandwidth_writes(("cpu.cfs_quota_us", str(quota)),
                               ("cpu.cfs_period_us", period and str(period)),
                               (None, None), field)
    return [("cpu", f, v) for f, v, _ in writes]


def _io_weight_to_v1(value, field, host):
    """io.weight lines: "default W", "W" or "MAJ:MIN W" -> blkio.weight(_device)."""
    name = v1_weight_file(host, field)
    out = []
    for line in value.replace(",", "\n").splitlines() or [""]:
        parts = line.split()
        if parts[:1] == ["default"]:
            parts = parts[1:]
        weight = io_to_blkio_weight(_number(parts[-1] if parts else "", field, 1, 10000, False))
        if len(parts) == 1:
            out.append(("blkio", name, str(weight)))
        elif len(parts) == 2 and _is_dev(parts[0]):
            out.append(("blkio", name + "_device", f"{parts[0]} {weight}"))
        else:
            raise SpecError(field, f"must be \"default W\" or \"MAJ:MIN W\", not {_show(line)}")
    return out


def _is_dev(text):
    major, sep, minor = text.partition(":")
    return bool(sep) and _decimal(major) and _decimal(minor)


def _io_max_to_v1(value, field, host):
    """io.max "MAJ:MIN rbps=N wbps=max ..." -> blkio.throttle.*_device ("max" is 0: no limit)."""
    files = {key: v1_file for _k, v1_file, key in _THROTTLES}
    out = []
    for line in value.splitlines():
        parts = line.split()
        if not parts or not _is_dev(parts[0]):
            raise SpecError(field, f"must be \"MAJ:MIN rbps=N ...\", not {_show(line)}")
        for item in parts[1:]:
            key, _sep, rate = item.partition("=")
            if key not in files:
                raise SpecError(field, f"unknown io.max key {_show(key)}")
            out.append(("blkio", files[key], f"{parts[0]} {max(_number(rate, field), 0)}"))
    return out


def _same(controller, filename, parse=None):
    def translate(value, field, host):
        return [(controller, filename, parse(value, field) if parse else value.strip())]
    return translate


def _hugetlb_key(key):
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != "hugetlb" or parts[2] != "max":
        return None
    return _same("hugetlb", f"hugetlb.{parts[1]}.limit_in_bytes",
                 lambda v, f: str(_number(v, f)))


_TO_V1 = {
    "cpu.max": _cpu_max_to_v1,
    "cpu.weight": _same("cpu", "cpu.shares",
                        lambda v, f: str(weight_to_shares(_number(v, f, 1, 10000, False)))),
    "cpu.idle": _same("cpu", "cpu.idle", lambda v, f: str(_number(v, f, 0, 1, False))),
    "cpu.max.burst": _same("cpu", "cpu.cfs_burst_us", lambda v, f: str(_number(v, f, 0,
                                                                              allow_max=False))),
    "cpuset.cpus": _same("cpuset", "cpuset.cpus", _cpulist),
    "cpuset.mems": _same("cpuset", "cpuset.mems", _cpulist),
    # memory.low protects, soft_limit_in_bytes is reclaimed to first: the inverse of runc's
    # reservation -> memory.low, the closest v1 has. memory.high (throttling) has none.
    "memory.low": _same("memory", "memory.soft_limit_in_bytes", lambda v, f: str(_number(v, f))),
    "pids.max": _same("pids", "pids.max", lambda v, f: "max" if _number(v, f) < 0 else v.strip()),
    "io.weight": _io_weight_to_v1,
    "io.max": _io_max_to_v1,
    "rdma.max": _same("rdma", "rdma.max"),
}


def _memory_keys_to_v1(keys, field, host, res):
    """memory.max and memory.swap.max -> limit_in_bytes and memsw (memory+swap), ordered."""
    limit_field, swap_field = f"{field}.memory.max", f"{field}.memory.swap.max"
    limit = _number(keys["memory.max"], limit_field) if "memory.max" in keys else 0
    swap = 0
    if "memory.swap.max" in keys:
        swap_max = _number(keys["memory.swap.max"], swap_field)
        base = limit or _dict(res.get("memory"), "linux.resources.memory").get("limit", 0)
        if swap_max != UNLIMITED and (type(base) is not int or base <= 0):
            raise SpecError(swap_field, "on cgroup v1 memory.swap.max needs a memory limit "
                            "(memory.max or linux.resources.memory.limit): memsw is memory+swap")
        swap = swap_from_v2("max" if swap_max == UNLIMITED else swap_max, base)
    return [_v1_write("memory", f, v, w, host)
            for f, v, w in memsw_order(limit, swap, host, limit_field, swap_field)]
