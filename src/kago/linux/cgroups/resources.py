"""OCI ``linux.resources`` -> cgroup file writes, for v1, v2 and hybrid hosts. Pure: no I/O.

    plan_writes(resources, version, available, current=None) -> [Write(target, filename, value)]

``target`` is a v1 controller name (``memory``, ``cpu``, ``blkio``...; the Manager finds the
hierarchy that carries it, ``cpu,cpuacct`` included) or ``unified`` for the cgroup2 directory.
Each Write also carries ``.field``, the spec field it comes from, for error messages.

``version`` is ``v1``, ``v2`` or ``hybrid``. On hybrid a setting goes to its v1 controller when
that is mounted, else to the cgroup2 tree when the v2 controller is usable there, else it is an
error. ``available`` is ``{"v1": v1 controllers mounted, "unified": v2 controllers usable in the
container's cgroup2 directory, "files": optional control files known to exist}``; a plain set is
taken as the controllers of ``version``. ``current`` maps a file name to the value it holds now,
for writes whose order depends on it (v1 ``memory.limit_in_bytes`` vs ``memory.memsw.*``).

Rules, from the kernel docs and the runtime spec, as runc applies them:

- Documentation/admin-guide/cgroup-v1/memory.rst: memsw.limit_in_bytes >= limit_in_bytes at every
  moment, so raising writes memsw first and lowering writes the limit first; -1 is unlimited.
- Documentation/scheduler/sched-bwc.rst: cfs_quota_us/cfs_period_us (v1) and cpu.max
  "$MAX $PERIOD" (v2); a new period can be refused until the quota is written (EINVAL), so it is
  written again after it. sched-rt-group.rst: rt_period before rt_runtime.
- Documentation/admin-guide/cgroup-v2.rst: cpu.weight 1..10000, memory.max/low/swap.max "max",
  io.max "MAJ:MIN rbps= wbps= riops= wiops=", pids.max "max".
- OCI runtime-spec config-linux.md and runc's libcontainer/cgroups/utils.go conversions:
  weight = 1 + (shares - 2) * 9999 // 262142, io.weight = 1 + (blkio - 10) * 9999 // 990,
  v2 swap.max = swap - limit (the spec's swap is memory+swap, as v1 memsw).
- cgroup-v1/devices.rst: "a" in devices.deny clears every rule and denies all; runc starts there.

The v2 device filter is an eBPF program, not a file: on v2 ``devices`` is an error here.
"""

from kago.errors import SpecError

UNIFIED = "unified"
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64 = (0, (1 << 64) - 1)
UNLIMITED = -1

# Files whose presence changes what is written; assumed for a plain host when not probed.
OPTIONAL_FILES = ("memory.memsw.limit_in_bytes", "blkio.weight", "blkio.bfq.weight",
                  "io.bfq.weight", "memory.swap.max")
DEFAULT_FILES = frozenset(("memory.memsw.limit_in_bytes", "blkio.weight", "memory.swap.max"))


class Write(tuple):
    """(target, filename, value); ``.field`` names the spec field it comes from."""

    def __new__(cls, target, filename, value, field=""):
        self = super().__new__(cls, (target, filename, value))
        self.field = field
        return self

    target = property(lambda self: self[0])
    filename = property(lambda self: self[1])
    value = property(lambda self: self[2])


# --- conversions (runc's libcontainer/cgroups/utils.go and their inverses) --------------------

def shares_to_weight(shares):
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], linear (runc, OCI)."""
    return 1 + ((shares - 2) * 9999) // 262142


def weight_to_shares(weight):
    """cpu.weight [1, 10000] -> cpu.shares [2, 262144], the inverse mapping (crun)."""
    return 2 + ((weight - 1) * 262142) // 9999


def blkio_to_io_weight(weight):
    """blkio.weight [10, 1000] -> io.weight [1, 10000] (runc)."""
    return 1 + ((weight - 10) * 9999) // 990


def io_to_blkio_weight(weight):
    """io.weight [1, 10000] -> blkio.weight [10, 1000]."""
    return 10 + ((weight - 1) * 990) // 9999


def swap_to_v2(swap, limit):
    """The spec's swap (memory+swap, v1 memsw) -> memory.swap.max; None means no write.

    As runc: unlimited memory with swap unset means unlimited swap too; swap == limit is "0".
    """
    if limit == UNLIMITED and swap == 0:
        return "max"
    if swap in (0, UNLIMITED):
        return None if swap == 0 else "max"
    return str(swap - limit)


def swap_from_v2(swap_max, limit):
    """memory.swap.max (swap alone) -> v1 memsw (memory+swap); -1 for "max"."""
    if swap_max == "max":
        return UNLIMITED
    return limit + swap_max


def _v1_limit(value):
    return str(value)


def _v2_limit(value):
    return "max" if value == UNLIMITED else str(value)


# --- value checks: every bad value is a SpecError naming its field ----------------------------

def _decimal(text):
    """Only ASCII digits: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def _show(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(value, field, lo=INT64[0], hi=INT64[1]):
    if type(value) is not int or not lo <= value <= hi:
        raise SpecError(field, f"must be an integer from {lo} to {hi}, not {_show(value)}")
    return value


def _limit(value, field):
    """A byte or count limit: -1 unlimited, 0 unset, else positive (int64)."""
    return _int(value, field, UNLIMITED, INT64[1])


def _bool(value, field):
    if type(value) is not bool:
        raise SpecError(field, f"must be true or false, not {_show(value)}")
    return value


def _str(value, field):
    if type(value) is not str or "\0" in value or "\n" in value:
        raise SpecError(field, f"must be a one-line string, not {_show(value)}")
    return value


def _dict(value, field):
    if value is None:
        return {}
    if type(value) is not dict:
        raise SpecError(field, f"must be an object, not {_show(value)}")
    return value


def _list(value, field):
    if value is None:
        return []
    if type(value) is not list:
        raise SpecError(field, f"must be an array, not {_show(value)}")
    return value


def _cpulist(value, field):
    """cpuset.cpus/mems: the kernel parses "0-3,5"; refuse anything else before it gets there.

    Whether the CPUs exist and are online is the kernel's to say (ERANGE/EINVAL on write).
    """
    value = _str(value, field).strip()
    if value.strip("0123456789,-"):
        raise SpecError(field, f"must be a list like 0-3,5, not {_show(value)}")
    return value or None


# --- the host as plan_writes sees it ----------------------------------------------------------

class _Host:
    """Which vocabulary each controller speaks here, and what the ordering rules need."""

    __slots__ = ("version", "v1", "v2", "files", "current")

    def __init__(self, version, available, current):
        if version not in ("v1", "v2", "hybrid"):
            raise ValueError(f"cgroup version must be v1, v2 or hybrid, not {version!r}")
        self.version = version
        if isinstance(available, dict):
            self.v1 = frozenset(available.get("v1") or ())
            self.v2 = frozenset(available.get(UNIFIED) or ())
            files = available.get("files")
        else:
            mine = frozenset(available or ())
            self.v1, self.v2 = (frozenset(), mine) if version == "v2" else (mine, frozenset())
            files = None
        self.files = DEFAULT_FILES if files is None else frozenset(files)
        self.current = dict(current or {})

    def vocabulary(self, v1_controller, v2_controller):
        """"v1", "v2" or None (not available) for a setting of these controllers."""
        if self.version != "v2" and v1_controller in self.v1:
            return "v1"
        if self.version != "v1" and v2_controller in self.v2:
            return "v2"
        return None

    def has(self, filename):
        return filename in self.files


# --- cpu ------------------------------------------------------------------------------------

def _shares(cpu, field):
    shares = cpu.get("shares")
    if shares in (None, 0):
        return None
    return _int(shares, field + ".shares", 2, 262144)


def _cpu_v1(cpu, field, host):
    out = _rt_v1(cpu, field)
    shares = _shares(cpu, field)
    out += _weight_and_idle(cpu, field, shares and ("cpu.shares", str(shares)))
    quota, period, burst = _bandwidth(cpu, field)
    return out + _bandwidth_writes(("cpu.cfs_quota_us", quota and str(quota)),
                                   ("cpu.cfs_period_us", period and str(period)),
                                   ("cpu.cfs_burst_us", burst), field)


def _cpu_v2(cpu, field, host):
    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key) not in (None, 0):
            _int(cpu[key], f"{field}.{key}")
            raise SpecError(f"{field}.{key}", "cgroup v2 has no real-time group scheduling "
                            "(cpu.rt_runtime_us); run the container without it")
    shares = _shares(cpu, field)
    out = _weight_and_idle(cpu, field, shares and ("cpu.weight", str(shares_to_weight(shares))))
    quota, period, burst = _bandwidth(cpu, field)
    cpu_max = None
    if quota or period:
        # as runc: a period alone is "max PERIOD" (cpu.max cannot keep the quota unchanged)
        cpu_max = (str(quota) if quota and quota > 0 else "max") + (f" {period}" if period else "")
    return out + _bandwidth_writes(("cpu.max", cpu_max), (None, None),
                                   ("cpu.max.burst", burst), field)


def _rt_v1(cpu, field):
    out = []
    for key, filename in (("realtimePeriod", "cpu.rt_period_us"),
                          ("realtimeRuntime", "cpu.rt_runtime_us")):
        value = cpu.get(key)
        if value not in (None, 0):
            out.append((filename, str(_int(value, f"{field}.{key}", -1)), f"{field}.{key}"))
    return out


def _bandwidth(cpu, field):
    """(quota, period, burst): quota -1 unlimited, 0 or None unset; as ints or None."""
    quota = cpu.get("quota")
    quota = None if quota in (None, 0) else _int(quota, field + ".quota", -1)
    period = cpu.get("period")
    period = None if period in (None, 0) else _int(period, field + ".period", 1, UINT64[1])
    burst = cpu.get("burst")
    burst = None if burst is None else str(_int(burst, field + ".burst", 0, UINT64[1]))
    return quota, period, burst


def _bandwidth_writes(quota, period, burst, field):
    """period, burst, quota, then period and burst again when the quota is written too.

    A period or burst the kernel refuses before the new quota is in place (EINVAL: the old
    quota with the new period breaks a parent's limit, or burst > old quota) is retried after
    it; the executor skips EINVAL on a write that recurs later in the plan.
    """
    (qfile, qvalue), (pfile, pvalue), (bfile, bvalue) = quota, period, burst
    out = []
    if pvalue:
        out.append((pfile, pvalue, field + ".period"))
    if bvalue is not None:
        out.append((bfile, bvalue, field + ".burst"))
    if qvalue:
        out.append((qfile, qvalue, field + ".quota"))
        out += out[:-1]  # the retries
    return out


def _weight_and_idle(cpu, field, weight):
    """cpu.shares/weight and cpu.idle: the kernel refuses a weight while the group is idle
    (EINVAL), so idle 0 is written before the weight and idle 1 after it."""
    out = [(weight[0], weight[1], field + ".shares")] if weight else []
    idle = cpu.get("idle")
    if idle is None:
        return out
    idle = [("cpu.idle", str(_int(idle, field + ".idle", 0, 1)), field + ".idle")]
    return idle + out if idle[0][1] == "0" else out + idle


def _cpuset(cpu, field, host):
    out = []
    for key, filename in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        text = None if cpu.get(key) is None else _cpulist(cpu[key], f"{field}.{key}")
        if text:
            out.append((filename, text, f"{field}.{key}"))
    return out


# --- memory ---------------------------------------------------------------------------------

def _limit_and_swap(memory, field):
    # null is unset, as a Go *int64 reads it
    limit = _limit(0 if memory.get("limit") is None else memory["limit"], field + ".limit")
    swap = _limit(0 if memory.get("swap") is None else memory["swap"], field + ".swap")
    if limit > 0 and swap > 0 and swap < limit:
        raise SpecError(field + ".swap", f"memory+swap limit {swap} must not be below the "
                        f"memory limit {limit}")
    return limit, swap


def _memory_v1(memory, field, host):
    limit, swap = _limit_and_swap(memory, field)
    out = memsw_order(limit, swap, host, field + ".limit", field + ".swap")
    out += _simple(memory, field, _MEMORY_V1)
    return out


def memsw_order(limit, swap, host, limit_field, swap_field):
    """v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes, in an order the kernel takes.

    memsw must stay >= limit after each write: memsw first when it is unlimited or above the
    current limit (raising), else the limit first (lowering). As runc, unlimited memory with swap
    unset makes swap unlimited too, where swap accounting exists.
    """
    if limit == UNLIMITED and swap == 0 and host.has("memory.memsw.limit_in_bytes"):
        swap = UNLIMITED
    lw = [("memory.limit_in_bytes", _v1_limit(limit), limit_field)] if limit else []
    sw = [("memory.memsw.limit_in_bytes", _v1_limit(swap), swap_field)] if swap else []
    current = host.current.get("memory.limit_in_bytes")
    if swap == UNLIMITED or (current is not None and 0 <= current < swap):
        return sw + lw
    return lw + sw


def _memory_v2(memory, field, host):
    limit, swap = _limit_and_swap(memory, field)
    if swap > 0 and limit in (0, UNLIMITED):
        raise SpecError(field + ".swap", "cgroup v2 cannot set a swap limit without a memory "
                        "limit (memory.swap.max is swap alone, the spec's swap is memory+swap)")
    out = []
    swap_max = swap_to_v2(swap, limit)
    if swap_max is not None and (host.has("memory.swap.max") or swap_max not in ("max", "0")):
        out.append(("memory.swap.max", swap_max, field + ".swap"))
    if limit:
        out.append(("memory.max", _v2_limit(limit), field + ".limit"))
    return out + _simple(memory, field, _MEMORY_V2)


def _swappiness(value, field):
    # uint64 in the spec, but -1 ("leave it") is what clients send for unset
    value = _int(value, field, -1, UINT64[1])
    if value > 100:
        raise SpecError(field, f"must be from 0 to 100, not {value}")
    return None if value == -1 else str(value)


def _kernel(value, field):
    _limit(value, field)
    if value == 0:
        return None
    raise SpecError(field, "kernel memory limits are not supported: linux 6.x accepts "
                    "memory.kmem.limit_in_bytes and ignores it (deprecated in the runtime spec)")


def _no_v2(key, what):
    """A converter for a field cgroup v2 has no file for: an error only when it is set."""
    def refuse(value, field):
        if _V1_CONVERTERS[key](value, field) is not None:  # checks the value too
            raise SpecError(field, f"cgroup v2 has no equivalent of {what}")
    return refuse


# (spec key, file, converter(value, field) -> str or None for no write)
_MEMORY_V1 = (
    ("reservation", "memory.soft_limit_in_bytes",
     lambda v, f: _v1_limit(v) if _limit(v, f) else None),
    ("kernel", "memory.kmem.limit_in_bytes", _kernel),
    ("kernelTCP", "memory.kmem.tcp.limit_in_bytes",
     lambda v, f: _v1_limit(v) if _limit(v, f) else None),
    ("disableOOMKiller", "memory.oom_control", lambda v, f: "1" if _bool(v, f) else None),
    ("swappiness", "memory.swappiness", _swappiness),
    ("useHierarchy", "memory.use_hierarchy", lambda v, f: "1" if _bool(v, f) else "0"),
)

_MEMORY_V2 = (
    # runc maps the reservation (a soft limit) to memory.low (best-effort protection)
    ("reservation", "memory.low", lambda v, f: _v2_limit(v) if _limit(v, f) else None),
    ("kernel", None, _kernel),
    ("kernelTCP", None, _no_v2("kernelTCP", "memory.kmem.tcp.limit_in_bytes")),
    ("disableOOMKiller", None, _no_v2("disableOOMKiller", "memory.oom_control")),
    ("swappiness", None, _no_v2("swappiness", "memory.swappiness")),
    # cgroup v2 is always hierarchical: true is what it does anyway
    ("useHierarchy", None, lambda v, f: None if _bool(v, f) else _refuse_flat(f)),
)

_V1_CONVERTERS = {row[0]: row[2] for row in _MEMORY_V1}


def _refuse_flat(field):
    raise SpecError(field, "cgroup v2 is always hierarchical")


def _simple(section, field, table):
    out = []
    for key, filename, convert in table:
        value = section.get(key)
        if value is None:
            continue
        text = convert(value, f"{field}.{key}")  # raises where v2 has no such file
        if text is not None and filename is not None:
            out.append((filename, text, f"{field}.{key}"))
    return out


# --- pids -----------------------------------------------------------------------------------

def _pids(pids, field, host):
    limit = pids.get("limit")
    if limit is None:
        return []
    limit = _int(limit, field + ".limit")
    # 0 and negative mean unlimited (runtime-spec: "-1 for unlimited"; runc treats 0 alike)
    return [("pids.max", str(limit) if limit > 0 else "max", field + ".limit")]


# --- block I/O ------------------------------------------------------------------------------

def _weight(value, field, lo=10, hi=1000):
    return _int(value, field, lo, hi)


def _device(entry, field):
    entry = _dict(entry, field)
    major = _int(entry.get("major"), field + ".major", 0, 0xFFFFFFFF)
    minor = _int(entry.get("minor"), field + ".minor", 0, 0xFFFFFFFF)
    return entry, f"{major}:{minor}"


_THROTTLES = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
              ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
              ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
              ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"))


def _throttles(blkio, field):
    """(v1 file, v2 key, "MAJ:MIN", rate, field) for every throttle entry, checked."""
    out = []
    for key, v1_file, v2_key in _THROTTLES:
        for i, entry in enumerate(_list(blkio.get(key), f"{field}.{key}")):
            where = f"{field}.{key}[{i}]"
            entry, dev = _device(entry, where)
            rate = _int(entry.get("rate"), where + ".rate", 0, UINT64[1])
            out.append((v1_file, v2_key, dev, rate, where))
    return out


def _bfq_v1(host):
    """CFQ (blkio.weight) left linux in 5.0; BFQ's blkio.bfq.weight takes the same values."""
    return not host.has("blkio.weight") and host.has("blkio.bfq.weight")


def _blkio_v1(blkio, field, host):
    weight_file = "blkio.bfq.weight" if _bfq_v1(host) else "blkio.weight"
    out = []
    if blkio.get("weight") not in (None, 0):
        out.append((weight_file, str(_weight(blkio["weight"], field + ".weight")),
                    field + ".weight"))
    if blkio.get("leafWeight") not in (None, 0):
        out.append(("blkio.leaf_weight", str(_weight(blkio["leafWeight"], field + ".leafWeight")),
                    field + ".leafWeight"))
    for i, entry in enumerate(_list(blkio.get("weightDevice"), field + ".weightDevice")):
        out += _weight_device_v1(entry, f"{field}.weightDevice[{i}]", weight_file)
    for v1_file, _key, dev, rate, where in _throttles(blkio, field):
        out.append((v1_file, f"{dev} {rate}", where))
    return out


def _weight_device_v1(entry, field, weight_file):
    entry, dev = _device(entry, field)
    out = []
    for key, filename in (("weight", weight_file + "_device"),
                          ("leafWeight", "blkio.leaf_weight_device")):
        if entry.get(key) is not None:
            out.append((filename, f"{dev} {_weight(entry[key], f'{field}.{key}')}",
                        f"{field}.{key}"))
    return out


def _blkio_v2(blkio, field, host):
    bfq = host.has("io.bfq.weight")
    out = []
    if blkio.get("weight") not in (None, 0):
        weight = _weight(blkio["weight"], field + ".weight")
        # io.bfq.weight takes blkio's own range; io.weight needs the conversion (runc)
        out.append(("io.bfq.weight", str(weight), field + ".weight") if bfq else
                   ("io.weight", str(blkio_to_io_weight(weight)), field + ".weight"))
    if blkio.get("leafWeight") not in (None, 0):
        _weight(blkio["leafWeight"], field + ".leafWeight")
        raise SpecError(field + ".leafWeight", "cgroup v2 has no leaf weight")
    for i, entry in enumerate(_list(blkio.get("weightDevice"), field + ".weightDevice")):
        out += _weight_device_v2(entry, f"{field}.weightDevice[{i}]", bfq)
    for _file, key, dev, rate, where in _throttles(blkio, field):
        out.append(("io.max", f"{dev} {key}={rate if rate else 'max'}", where))
    return out


def _weight_device_v2(entry, field, bfq):
    entry, dev = _device(entry, field)
    if entry.get("leafWeight") is not None:
        _weight(entry["leafWeight"], field + ".leafWeight")
        raise SpecError(field + ".leafWeight", "cgroup v2 has no leaf weight")
    if entry.get("weight") is None:
        return []
    weight = _weight(entry["weight"], field + ".weight")
    if bfq:
        return [("io.bfq.weight", f"{dev} {weight}", field + ".weight")]
    return [("io.weight", f"{dev} {blkio_to_io_weight(weight)}", field + ".weight")]


# --- hugetlb, network, rdma -----------------------------------------------------------------

def _page_size(value, field):
    """"2MB", "1GB", "64KB": the name the kernel gives hugetlb.<size>.* files."""
    value = _str(value, field)
    if len(value) < 3 or value[-2:] not in ("KB", "MB", "GB") or not _decimal(value[:-2]):
        raise SpecError(field, f"must be a page size like 2MB or 1GB, not {_show(value)}")
    return value


def _hugepages(limits, field, host, suffix):
    out = []
    for i, entry in enumerate(_list(limits, field)):
        where = f"{field}[{i}]"
        entry = _dict(entry, where)
        size = _page_size(entry.get("pageSize"), where + ".pageSize")
        limit = _int(entry.get("limit"), where + ".limit", 0, UINT64[1])
        out.append((f"hugetlb.{size}.{suffix}", str(limit), where + ".limit"))
    return out


def _classid(network, field, host):
    classid = network.get("classID")
    if classid is None:
        return []
    return [("net_cls.classid", str(_int(classid, field + ".classID", 0, 0xFFFFFFFF)),
             field + ".classID")]


def _priorities(network, field, host):
    out = []
    for i, entry in enumerate(_list(network.get("priorities"), field + ".priorities")):
        where = f"{field}.priorities[{i}]"
        entry = _dict(entry, where)
        name = _str(entry.get("name"), where + ".name")
        if not name or " " in name or "/" in name:
            raise SpecError(where + ".name", f"must be an interface name, not {_show(name)}")
        prio = _int(entry.get("priority"), where + ".priority", 0, 0xFFFFFFFF)
        out.append(("net_prio.ifpriomap", f"{name} {prio}", where))
    return out


def _rdma(rdma, field, host):
    out = []
    for device, limits in rdma.items():
        where = f"{field}.{device}"
        if type(device) is not str or not device or device.strip("\0\n ") != device \
                or " " in device:
            raise SpecError(where, "must be an RDMA device name")
        limits = _dict(limits, where)
        parts = [f"{name}={_int(limits[key], f'{where}.{key}', 0, 0xFFFFFFFF)}"
                 for key, name in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object"))
                 if limits.get(key) is not None]
        if parts:
            out.append(("rdma.max", " ".join([device] + parts), where))
    return out


# --- devices (v1 only) ----------------------------------------------------------------------

def _devices(rules, field, host):
    out = []
    for i, rule in enumerate(_list(rules, field)):
        where = f"{field}[{i}]"
        rule = _dict(rule, where)
        allow = _bool(rule.get("allow"), where + ".allow")
        out.append(("devices.allow" if allow else "devices.deny", device_rule(rule, where),
                    where))
    if out[:1] != [("devices.deny", "a", f"{field}[0]")]:
        out.insert(0, ("devices.deny", "a", field))  # from nothing, as runc: deny, then allow
    return out


def device_rule(rule, field):
    """The devices.allow/deny line of one spec rule: "c 1:3 rwm", "a" for every device."""
    kind = rule.get("type")
    kind = "a" if kind is None else kind
    if kind not in ("a", "b", "c"):
        raise SpecError(field + ".type", f"must be a, b or c, not {_show(kind)}")
    access = rule.get("access")
    access = "rwm" if access in (None, "") else _str(access, field + ".access")
    if access.strip("rwm") or len(set(access)) != len(access):
        raise SpecError(field + ".access", f"must be letters of rwm, not {_show(access)}")
    numbers = [_device_number(rule.get(k), f"{field}.{k}") for k in ("major", "minor")]
    if kind == "a":
        return "a"  # the kernel reads any line starting with "a" as every device
    return f"{kind} {numbers[0]}:{numbers[1]} {access}"


def _device_number(value, field):
    if value is None or value == -1:
        return "*"
    return str(_int(value, field, 0, 0xFFFFFFFF))


def _no_devices_on_v2(rules, field, host):
    if _list(rules, field):
        raise SpecError(field, "cgroup v2 device rules need an eBPF device filter, which kago "
                        "cannot load yet")
    return []


# --- unified (raw v2 keys), and their v1 translations ---------------------------------------

def _unified_key(key, value, field):
    if type(key) is not str or "/" in key or "." not in key.strip(".") or key != key.strip():
        raise SpecError(field, "unified keys must be file names like memory.high")
    return key.split(".", 1)[0], _str(value, field)


def _unified(unified, field, host, res):
    """Each key raw to the cgroup2 directory where its controller is usable, else to v1."""
    out = []
    v1_keys = {}
    for key, value in unified.items():
        where = f"{field}.{key}"
        controller, value = _unified_key(key, value, where)
        if host.version != "v1" and (controller == "cgroup" or controller in host.v2):
            out.append(Write(UNIFIED, key, value, where))
        elif host.version == "v2":
            raise SpecError(where, f"the {controller} controller is not available on this host")
        else:
            v1_keys[key] = value
    return out + _unified_to_v1(v1_keys, field, host, res)


def _unified_to_v1(keys, field, host, res):
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
    """cpu.max "$MAX [$PERIOD]" -> cfs_period_us, cfs_quota_us, period again (see above)."""
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
    name = "blkio.bfq.weight" if _bfq_v1(host) else "blkio.weight"
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


# --- the plan -------------------------------------------------------------------------------

# (spec section, v1 controller, v2 controller, v1 planner, v2 planner), in the order runc's fs
# driver applies them: cpuset before anything joins, devices next, memory before cpu.
_STEPS = (
    ("cpu", "cpuset", "cpuset", _cpuset, _cpuset),
    ("devices", "devices", "devices", _devices, _no_devices_on_v2),
    ("memory", "memory", "memory", _memory_v1, _memory_v2),
    ("cpu", "cpu", "cpu", _cpu_v1, _cpu_v2),
    ("pids", "pids", "pids", _pids, _pids),
    ("blockIO", "blkio", "io", _blkio_v1, _blkio_v2),
    ("hugepageLimits", "hugetlb", "hugetlb",
     lambda s, f, h: _hugepages(s, f, h, "limit_in_bytes"),
     lambda s, f, h: _hugepages(s, f, h, "max")),
    ("network", "net_cls", None, _classid, None),
    ("network", "net_prio", None, _priorities, None),
    ("rdma", "rdma", "rdma", _rdma, _rdma),
)

_LIST_SECTIONS = ("devices", "hugepageLimits")
_V2_NONE = {"net_cls": "cgroup v2 has no net_cls controller (classify with eBPF or nftables "
            "cgroup matching instead)", "net_prio": "cgroup v2 has no net_prio controller"}


def _run_step(step, resources, host):
    key, v1_controller, v2_controller, plan_v1, plan_v2 = step
    field = "linux.resources." + key
    section = resources.get(key)
    section = _list(section, field) if key in _LIST_SECTIONS else _dict(section, field)
    if not section:
        return []
    voc = host.vocabulary(v1_controller, v2_controller)
    if voc == "v2" or (voc is None and host.version == "v2"):
        planner, target, controller = plan_v2, UNIFIED, v2_controller
    else:
        planner, target, controller = plan_v1, v1_controller, v1_controller
    if planner is None:  # validate, then say why it cannot be done
        writes = plan_v1(section, field, host)
        if writes:
            raise SpecError(writes[0][2], _V2_NONE[v1_controller])
        return []
    writes = planner(section, field, host)
    if writes and voc is None:
        raise SpecError(writes[0][2], f"the {controller} controller is not available on "
                        "this host")
    return [Write(target, f, v, w) for f, v, w in writes]


def plan_writes(resources, version, available, current=None):
    """The cgroup file writes that apply ``resources`` (a spec's ``linux.resources``), in order.

    Raises SpecError naming the field for a bad value or for something this host cannot do.
    """
    resources = _dict(resources, "linux.resources")
    host = _Host(version, available, current)
    writes = []
    for step in _STEPS:
        writes += _run_step(step, resources, host)
    unified = _dict(resources.get("unified"), "linux.resources.unified")
    if unified:
        writes += _unified(unified, "linux.resources.unified", host, resources)
    return writes


def controllers_needed(writes):
    """The v2 controllers the ``unified`` writes need enabled (``cgroup.*`` is the core)."""
    names = {w[1].split(".", 1)[0] for w in writes if w[0] == UNIFIED}
    names.discard("cgroup")
    return sorted(names)


# --- `kago-oci update` flags -> resources ---------------------------------------------------

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text, field):
    """"512m", "1g", "1048576", "-1" -> bytes (binary units, as docker's RAMInBytes)."""
    value = _str(text, field).strip().lower()
    if value == "-1":
        return UNLIMITED
    value = value[:-2] if value.endswith("ib") else value.removesuffix("b")  # 1gib, 1gb, 100b
    number, unit = (value[:-1], value[-1]) if value[-1:].isalpha() else (value, "")
    if unit not in _UNITS or not _decimal(number.replace(".", "", 1)):
        raise SpecError(field, f"must be a size like 512m or 1g, not {_show(text)}")
    return int(float(number) * _UNITS[unit])


# flag -> (section, key, parse)
_FLAGS = {
    "cpu-share": ("cpu", "shares", int), "cpu-quota": ("cpu", "quota", int),
    "cpu-period": ("cpu", "period", int), "cpu-rt-period": ("cpu", "realtimePeriod", int),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", int), "cpuset-cpus": ("cpu", "cpus", str),
    "cpuset-mems": ("cpu", "mems", str), "memory": ("memory", "limit", parse_size),
    "memory-swap": ("memory", "swap", parse_size),
    "memory-reservation": ("memory", "reservation", parse_size),
    "kernel-memory": ("memory", "kernel", parse_size),
    "kernel-memory-tcp": ("memory", "kernelTCP", parse_size),
    "pids-limit": ("pids", "limit", int), "blkio-weight": ("blockIO", "weight", int),
}


def resources_from_flags(flags):
    """runc update's flags (``{"memory": "512m", "cpu-quota": "10000"}``) -> linux.resources."""
    resources = {}
    for flag, text in flags.items():
        if text is None:
            continue
        if flag not in _FLAGS:
            raise SpecError("--" + flag, "not an update flag")
        section, key, parse = _FLAGS[flag]
        resources.setdefault(section, {})[key] = _parse_flag(parse, text, "--" + flag)
    return resources


def _parse_flag(parse, text, field):
    if parse is parse_size:
        return parse_size(text, field)
    try:
        return parse(str(text).strip())
    except ValueError:
        raise SpecError(field, f"must be an integer, not {_show(text)}") from None
