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

This module holds what every plan needs: Write, the value checks (every bad value is a
SpecError naming its field), runc's conversions, the host, the step table. Each spec section's
planner is a submodule, with the rules (kernel docs, runtime spec, runc) it follows, imported
only when a spec sets that section: ``cpu`` (with cpuset and rt), ``memory``, ``blkio``, ``misc``
(pids, hugetlb, network, rdma), ``devices``, ``unified`` (raw v2 keys; ``unified_v1``, their v1
translations) and ``flags`` (``kago-oci update``'s flags). So kago-oci's start path loads what
the spec uses: for the default spec, this module and ``devices``. Every public name is still
importable from here: the submodule that owns it is imported on first access (PEP 562).
Submodules import the shared names from here; this module imports none of them at load time.

The conversions are the OCI runtime-spec's (config-linux.md) and runc's
(libcontainer/cgroups/utils.go), with their inverses: weight = 1 + (shares - 2) * 9999 // 262142,
io.weight = 1 + (blkio - 10) * 9999 // 990, v2 swap.max = swap - limit (the spec's swap is
memory+swap, as v1 memsw).
"""

from kago.errors import SpecError

__all__ = ["DEFAULT_FILES", "DEVICE_FILTER", "INT64", "OPTIONAL_FILES", "UINT64", "UNIFIED",
           "UNLIMITED", "Write",
           "blkio_to_io_weight", "controllers_needed", "device_rule", "io_to_blkio_weight",
           "memsw_order", "parse_size", "plan_writes", "resources_from_flags",
           "shares_to_weight", "swap_from_v2", "swap_to_v2", "weight_to_shares"]

UNIFIED = "unified"
# The v2 device filter's pseudo file name in a plan: an eBPF program, not a file (devices.py).
DEVICE_FILTER = "<eBPF device filter>"
INT64 = (-(1 << 63), (1 << 63) - 1)
UINT64 = (0, (1 << 64) - 1)
UNLIMITED = -1

# Files whose presence changes what is written; assumed for a plain host when not probed.
OPTIONAL_FILES = ("memory.memsw.limit_in_bytes", "blkio.weight", "blkio.bfq.weight",
                  "io.bfq.weight", "memory.swap.max", "memory.kmem.tcp.limit_in_bytes")
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
        if self.version != "v1" and (v2_controller == DEVICE_FILTER or v2_controller in self.v2):
            return "v2"
        return None

    def has(self, filename):
        return filename in self.files


# --- the plan -------------------------------------------------------------------------------

# (spec section, v1 controller, v2 controller, planner module, v1 planner, v2 planner), in the
# order runc's fs driver applies them: cpuset before anything joins, devices next, memory before
# cpu. On v2, devices are an eBPF program (DEVICE_FILTER), which any cgroup2 directory takes.
# Planners are named, not imported: a section the spec does not set costs nothing. A planner
# takes (section, field, host) and returns (filename, value, field) tuples.
_STEPS = (
    ("cpu", "cpuset", "cpuset", "cpu", "_cpuset", "_cpuset"),
    ("devices", "devices", DEVICE_FILTER, "devices", "_devices", "_device_filter"),
    ("memory", "memory", "memory", "memory", "_memory_v1", "_memory_v2"),
    ("cpu", "cpu", "cpu", "cpu", "_cpu_v1", "_cpu_v2"),
    ("pids", "pids", "pids", "misc", "_pids", "_pids"),
    ("blockIO", "blkio", "io", "blkio", "_blkio_v1", "_blkio_v2"),
    ("hugepageLimits", "hugetlb", "hugetlb", "misc", "_hugepages_v1", "_hugepages_v2"),
    ("network", "net_cls", None, "misc", "_classid", None),
    ("network", "net_prio", None, "misc", "_priorities", None),
    ("rdma", "rdma", "rdma", "misc", "_rdma", "_rdma"),
)

_LIST_SECTIONS = ("devices", "hugepageLimits")
# v2 has no net_cls/net_prio: runc 1.1 accepts linux.resources.network there and applies
# nothing (crun refuses it); kago-oci checks the section, applies nothing and warns
_V2_NONE = {"net_cls": "cgroup v2 has no net_cls controller: not applied (classify with eBPF or "
            "nftables cgroup matching instead)",
            "net_prio": "cgroup v2 has no net_prio controller: not applied"}


def _run_step(step, resources, host):
    key, v1_controller, v2_controller, module, plan_v1, plan_v2 = step
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
    if planner is None:  # validate, then say why it is not done
        writes = _load(module, plan_v1)(section, field, host)
        if writes:
            from kago import log
            log.warning(f"{writes[0][2]}: {_V2_NONE[v1_controller]}")
        return []
    writes = _load(module, planner)(section, field, host)
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
        from .unified import _unified
        writes += _unified(unified, "linux.resources.unified", host, resources)
    return writes


def controllers_needed(writes):
    """The v2 controllers the ``unified`` writes need enabled (``cgroup.*`` is the core)."""
    names = {w[1].split(".", 1)[0] for w in writes if w[0] == UNIFIED and w[1] != DEVICE_FILTER}
    names.discard("cgroup")
    return sorted(names)


def _load(module, name):
    """``name`` from the submodule ``module``, which is imported the first time."""
    return getattr(__import__(f"{__name__}.{module}", fromlist=(name,)), name)


# The public names of the submodules, each imported on first access.
_LAZY = {"device_rule": "devices", "memsw_order": "memory", "parse_size": "flags",
         "resources_from_flags": "flags"}


def __getattr__(name):
    """PEP 562: ``device_rule``, ``memsw_order``, ``parse_size``, ``resources_from_flags``."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _load(module, name)
