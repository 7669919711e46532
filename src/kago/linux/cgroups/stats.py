"""Statistics of a container cgroup in the JSON shape of ``runc events --stats``, and PSI.

Parsers (pure, text in, numbers out) for the kernel's formats:

- flat keyed "key value" lines: cpu.stat, memory.stat, memory.events, memory.oom_control,
  cpuacct.stat, pids.events (cgroup-v2.rst "Conventions": "Flat keyed");
- nested keyed "8:0 rbytes=1 wbytes=2": io.stat (cgroup-v2.rst "Nested keyed");
- PSI "some avg10=0.00 avg60=0.00 avg300=0.00 total=0": Documentation/accounting/psi.rst;
- v1 blkio "8:0 Read 4096" lines with a "Total N" trailer: cgroup-v1/blkio-controller.rst;
- cpuacct.usage_percpu / usage_all (cgroup-v1/cpuacct.rst); cpuset lists "0-3,5".

Collectors build runc's ``types.Stats`` (runc/types/events.go) from whichever files the
manager's hierarchies have: v1 controller directories where mounted, else the cgroup2 directory.
PSI always comes from the cgroup2 directory (per cgroup only there; the hybrid tree has it).
Units are runc's: nanoseconds for CPU time, bytes for memory, and "max" reads as 2**64-1
(as runc's GetCgroupParamUint) except pids.max, where runc reports 0 for no limit.
"""

import errno
import os

from .mountinfo import UNIFIED

MAX_UINT64 = (1 << 64) - 1
USER_HZ = 100  # cpuacct.stat counts in USER_HZ ticks; runc also assumes 100
PSI_RESOURCES = ("cpu", "memory", "io")

# --- parsers ----------------------------------------------------------------------------------


def parse_value(text):
    """One number; "max" (no limit) reads as 2**64-1."""
    text = text.strip()
    return MAX_UINT64 if text == "max" else int(text)


def parse_flat(text):
    """"key value" lines -> {key: int}; lines whose value is not a number are skipped."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = parse_value(parts[1])
            except ValueError:
                pass
    return out


def parse_nested(text):
    """"KEY a=1 b=2" lines -> {KEY: {a: int, b: int}} (io.stat; "max" reads as 2**64-1)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        values = out.setdefault(parts[0], {})
        for item in parts[1:]:
            key, sep, value = item.partition("=")
            if sep:
                try:
                    values[key] = parse_value(value)
                except ValueError:
                    pass
    return out


def parse_pressure(text):
    """A *.pressure file -> {"some": {"avg10", "avg60", "avg300", "total"}, "full": {...}}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        data = {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 0}
        for item in parts[1:]:
            key, _sep, value = item.partition("=")
            if key in data:
                data[key] = int(value) if key == "total" else float(value)
        out[parts[0]] = data
    return out


def parse_blkio(text):
    """v1 blkio "MAJ:MIN Op N" lines -> runc BlkioEntry dicts; "Total N" lines are dropped."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _sep, minor = parts[0].partition(":")
            out.append({"major": int(major), "minor": int(minor), "op": parts[1],
                        "value": int(parts[2])})
        elif len(parts) == 2 and ":" in parts[0]:  # blkio.time / sectors: "MAJ:MIN N"
            major, _sep, minor = parts[0].partition(":")
            out.append({"major": int(major), "minor": int(minor), "op": "",
                        "value": int(parts[1])})
    return out


def parse_io_stat(text):
    """v2 io.stat -> (ioServiceBytesRecursive, ioServicedRecursive), mapped as runc does."""
    nbytes, nios = [], []
    for device, values in parse_nested(text).items():
        major, sep, minor = device.partition(":")
        if not sep:
            continue
        for key, op, table in (("rbytes", "Read", nbytes), ("wbytes", "Write", nbytes),
                               ("rios", "Read", nios), ("wios", "Write", nios)):
            if key in values:
                table.append({"major": int(major), "minor": int(minor), "op": op,
                              "value": values[key]})
    return nbytes, nios


def parse_ints(text):
    """"1 2 3" -> [1, 2, 3] (cpuacct.usage_percpu)."""
    return [int(x) for x in text.split()]


def parse_usage_all(text):
    """cpuacct.usage_all "cpu user system" table -> (percpu_user, percpu_kernel)."""
    user, kernel = [], []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 3:
            user.append(int(parts[1]))
            kernel.append(int(parts[2]))
    return user, kernel


def parse_cpu_list(text):
    """"0-3,5" -> [0, 1, 2, 3, 5] (cpuset.cpus, cpuset.mems)."""
    out = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _sep, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


# --- reading ----------------------------------------------------------------------------------

def read_files(d, names):
    """{name: text} for those of ``names`` that ``d`` has; absent or unreadable ones are left out.

    ENOTSUP/EOPNOTSUPP: a PSI file of a kernel booted with psi=0; ENODEV/ENOENT: the cgroup or
    the file is gone (a racing rmdir, a kernel without that file).
    """
    out = {}
    for name in names:
        try:
            with open(f"{d}/{name}") as f:
                out[name] = f.read()
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP, errno.EINVAL):
                raise
    return out


def pressure_of(d, read=read_files):
    """PSI of cgroup2 directory ``d``: {"cpu": {"some": ..., "full": ...}, "memory", "io"}
    (``read``: read_files or another function of the same shape)."""
    texts = read(d, [r + ".pressure" for r in PSI_RESOURCES])
    return {r: parse_pressure(texts[r + ".pressure"]) for r in PSI_RESOURCES
            if r + ".pressure" in texts}


# --- builders (pure: {file name: text} in, runc's dicts out) ----------------------------------

def _entry(texts, usage, peak, failcnt, limit):
    """runc's MemoryEntry from the files named (any may be absent)."""
    def value(name):
        return parse_value(texts[name]) if name in texts else 0
    return {"limit": value(limit), "usage": value(usage), "max": value(peak),
            "failcnt": value(failcnt)}


def empty_stats():
    entry = {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    return {
        "cpu": {"usage": {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [],
                          "kernel": 0, "user": 0},
                "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0}},
        "cpuset": {},
        "memory": {"cache": 0, "usage": dict(entry), "swap": dict(entry),
                   "kernel": dict(entry), "kernelTCP": dict(entry), "raw": {}},
        "pids": {"current": 0, "limit": 0},
        "blkio": {key: [] for key in _BLKIO_V1},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


CPU_V1_FILES = ("cpu.stat",)
CPUACCT_FILES = ("cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.usage_all", "cpuacct.stat")
CPU_V2_FILES = ("cpu.stat",)


def throttling_v1(texts):
    stat = parse_flat(texts.get("cpu.stat", ""))
    return {"periods": stat.get("nr_periods", 0), "throttledPeriods": stat.get("nr_throttled", 0),
            "throttledTime": stat.get("throttled_time", 0)}


def usage_v1(texts):
    """cpuacct: total/percpu in ns; user/kernel from cpuacct.stat ticks, as runc converts."""
    ticks = parse_flat(texts.get("cpuacct.stat", ""))
    user, kernel = parse_usage_all(texts.get("cpuacct.usage_all", ""))
    return {"total": parse_value(texts["cpuacct.usage"]) if "cpuacct.usage" in texts else 0,
            "percpu": parse_ints(texts.get("cpuacct.usage_percpu", "")),
            "percpu_kernel": kernel, "percpu_user": user,
            "kernel": ticks.get("system", 0) * (10**9 // USER_HZ),
            "user": ticks.get("user", 0) * (10**9 // USER_HZ)}


def cpu_v2(texts):
    """cpu.stat of cgroup2 (µs) -> runc's Cpu (ns); the cgroup2 core has the usage lines."""
    stat = parse_flat(texts.get("cpu.stat", ""))
    return {"usage": {"total": stat.get("usage_usec", 0) * 1000, "percpu": [],
                      "percpu_kernel": [], "percpu_user": [],
                      "kernel": stat.get("system_usec", 0) * 1000,
                      "user": stat.get("user_usec", 0) * 1000},
            "throttling": {"periods": stat.get("nr_periods", 0),
                           "throttledPeriods": stat.get("nr_throttled", 0),
                           "throttledTime": stat.get("throttled_usec", 0) * 1000}}


MEMORY_V1_FILES = tuple(f"memory.{p}{f}" for p in ("", "memsw.", "kmem.", "kmem.tcp.")
                        for f in ("usage_in_bytes", "max_usage_in_bytes", "failcnt",
                                  "limit_in_bytes")) + ("memory.stat",)
MEMORY_V2_FILES = ("memory.current", "memory.peak", "memory.max", "memory.events",
                   "memory.swap.current", "memory.swap.peak", "memory.swap.max",
                   "memory.swap.events", "memory.stat")


def memory_v1(texts):
    def entry(prefix):
        return _entry(texts, f"{prefix}usage_in_bytes", f"{prefix}max_usage_in_bytes",
                      f"{prefix}failcnt", f"{prefix}limit_in_bytes")
    raw = parse_flat(texts.get("memory.stat", ""))
    return {"cache": raw.get("cache", 0), "usage": entry("memory."),
            "swap": entry("memory.memsw."), "kernel": entry("memory.kmem."),
            "kernelTCP": entry("memory.kmem.tcp."), "raw": raw}


def memory_v2(texts):
    """As runc: swap is reported as memory+swap (v1's memsw), failcnt is memory.events max."""
    raw = parse_flat(texts.get("memory.stat", ""))
    usage = _entry(texts, "memory.current", "memory.peak", "", "memory.max")
    usage["failcnt"] = parse_flat(texts.get("memory.events", "")).get("max", 0)
    swap = _entry(texts, "memory.swap.current", "memory.swap.peak", "", "memory.swap.max")
    swap["failcnt"] = parse_flat(texts.get("memory.swap.events", "")).get("fail", 0)
    swap["usage"] += usage["usage"]
    if MAX_UINT64 not in (swap["limit"], usage["limit"]):
        swap["limit"] += usage["limit"]
    else:
        swap["limit"] = MAX_UINT64
    entry = {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    return {"cache": raw.get("file", 0), "usage": usage, "swap": swap, "kernel": dict(entry),
            "kernelTCP": dict(entry), "raw": raw}


PIDS_FILES = ("pids.current", "pids.max")


def pids(texts):
    limit = texts.get("pids.max", "max").strip()
    return {"current": parse_value(texts["pids.current"]) if "pids.current" in texts else 0,
            "limit": 0 if limit == "max" else int(limit)}


# runc key -> candidate files, first present and non-empty wins: CFQ's (gone since 5.0), BFQ's
# (debug ones only with CONFIG_BFQ_CGROUP_DEBUG), then the throttle layer's, which always counts.
_BLKIO_V1 = {
    "ioServiceBytesRecursive": ("blkio.io_service_bytes_recursive",
                                "blkio.bfq.io_service_bytes_recursive",
                                "blkio.throttle.io_service_bytes_recursive"),
    "ioServicedRecursive": ("blkio.io_serviced_recursive", "blkio.bfq.io_serviced_recursive",
                            "blkio.throttle.io_serviced_recursive"),
    "ioQueueRecursive": ("blkio.io_queued_recursive", "blkio.bfq.io_queued_recursive"),
    "ioServiceTimeRecursive": ("blkio.io_service_time_recursive",
                               "blkio.bfq.io_service_time_recursive"),
    "ioWaitTimeRecursive": ("blkio.io_wait_time_recursive", "blkio.bfq.io_wait_time_recursive"),
    "ioMergedRecursive": ("blkio.io_merged_recursive", "blkio.bfq.io_merged_recursive"),
    "ioTimeRecursive": ("blkio.time_recursive", "blkio.bfq.time_recursive"),
    "sectorsRecursive": ("blkio.sectors_recursive", "blkio.bfq.sectors_recursive"),
}
BLKIO_V1_FILES = tuple(f for files in _BLKIO_V1.values() for f in files)
BLKIO_V2_FILES = ("io.stat",)


def blkio_v1(texts):
    out = {}
    for key, candidates in _BLKIO_V1.items():
        out[key] = next((parse_blkio(texts[f]) for f in candidates
                         if parse_blkio(texts.get(f, ""))), [])
    return out


def blkio_v2(texts):
    out = {key: [] for key in _BLKIO_V1}
    nbytes, nios = parse_io_stat(texts.get("io.stat", ""))
    out["ioServiceBytesRecursive"], out["ioServicedRecursive"] = nbytes, nios
    return out


CPUSET_FLAGS = ("cpu_exclusive", "mem_exclusive", "mem_hardwall", "memory_migrate",
                "memory_spread_page", "memory_spread_slab", "memory_pressure",
                "sched_load_balance", "sched_relax_domain_level")
CPUSET_V1_FILES = ("cpuset.cpus", "cpuset.mems") + tuple("cpuset." + f for f in CPUSET_FLAGS)
CPUSET_V2_FILES = ("cpuset.cpus.effective", "cpuset.mems.effective")


def cpuset(texts):
    """runc's CPUSet: the lists, plus the v1 flag files that exist."""
    out = {}
    for key, names in (("cpus", ("cpuset.cpus", "cpuset.cpus.effective")),
                       ("mems", ("cpuset.mems", "cpuset.mems.effective"))):
        text = next((texts[n] for n in names if n in texts), "")
        out[key] = parse_cpu_list(text)
    for flag in CPUSET_FLAGS:
        if "cpuset." + flag in texts:
            out[flag] = int(texts["cpuset." + flag])
    return out


def hugetlb(texts, version):
    """{page size: {"usage", "max", "failcnt"}} from hugetlb.<size>.* files (v1 or v2 names)."""
    out = {}
    for name in texts:
        parts = name.split(".")
        if len(parts) != 3 or parts[2] != ("usage_in_bytes" if version == 1 else "current"):
            continue
        size = parts[1]
        if version == 1:
            out[size] = _entry(texts, name, f"hugetlb.{size}.max_usage_in_bytes",
                               f"hugetlb.{size}.failcnt", "")
        else:
            out[size] = _entry(texts, name, "", "", "")
            out[size]["failcnt"] = parse_flat(texts.get(f"hugetlb.{size}.events", "")).get(
                "max", 0)
        del out[size]["limit"]
    return out


# --- collecting from a manager ----------------------------------------------------------------

def dir_of(manager, controller):
    """(directory, version) answering for ``controller``: v1 where mounted, else cgroup2."""
    d = manager._find(controller) if manager.mode != "v2" else None
    if d is not None:
        return d, 1
    unified = manager.dirs.get(UNIFIED)
    if unified is not None and (manager.mode == "v2" or controller == "cpu"):
        return unified, 2  # the cgroup2 core has cpu.stat even without the cpu controller
    return None, 0


def _hugetlb_names(d):
    """The hugetlb.* files of ``d``: which page sizes there are differs by machine."""
    try:
        names = os.listdir(d)
    except OSError:
        return []
    return [n for n in names if n.startswith("hugetlb.")]


def collect(manager):
    """runc's ``events --stats`` data for the manager's cgroup (missing controllers: zeros)."""
    stats = empty_stats()
    _collect_cpu(manager, stats)
    for controller, v1_files, v2_files, build_v1, build_v2, key in _SECTIONS:
        d, version = dir_of(manager, controller)
        if version == 1:
            stats[key] = build_v1(read_files(d, v1_files))
        elif version == 2:
            stats[key] = build_v2(read_files(d, v2_files))
    d, version = dir_of(manager, "hugetlb")
    if d is not None:
        stats["hugetlb"] = hugetlb(read_files(d, _hugetlb_names(d)), version)
    add_psi(manager, stats)
    return stats


def _collect_cpu(manager, stats):
    d, version = dir_of(manager, "cpu")
    if version == 2:
        stats["cpu"].update(cpu_v2(read_files(d, CPU_V2_FILES)))
        return
    if d is not None:
        stats["cpu"]["throttling"] = throttling_v1(read_files(d, CPU_V1_FILES))
    acct = manager._find("cpuacct") if manager.mode != "v2" else None
    if acct is not None:
        stats["cpu"]["usage"] = usage_v1(read_files(acct, CPUACCT_FILES))


_SECTIONS = (
    ("memory", MEMORY_V1_FILES, MEMORY_V2_FILES, memory_v1, memory_v2, "memory"),
    ("pids", PIDS_FILES, PIDS_FILES, pids, pids, "pids"),
    ("blkio", BLKIO_V1_FILES, BLKIO_V2_FILES, blkio_v1, blkio_v2, "blkio"),
    ("cpuset", CPUSET_V1_FILES, CPUSET_V2_FILES, cpuset, cpuset, "cpuset"),
)


def add_psi(manager, stats, read=read_files):
    """runc 1.2+ puts PSI in cpu, memory and blkio ("psi"), from the cgroup2 directory."""
    unified = manager.dirs.get(UNIFIED)
    if unified is None:
        return
    psi = pressure_of(unified, read)
    for resource, key in (("cpu", "cpu"), ("memory", "memory"), ("io", "blkio")):
        if resource in psi:
            stats[key]["psi"] = psi[resource]
