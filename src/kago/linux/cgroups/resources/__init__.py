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

This module holds the host and the step table. Each spec section's planner is a submodule, with
the rules (kernel docs, runtime spec, runc) it follows, imported only when a spec sets that
section: ``cpu`` (with cpuset and rt), ``memory``, ``blkio``, ``misc`` (pids, hugetlb, network,
rdma), ``devices``, ``unified`` (raw v2 keys; ``unified_v1``, their v1 translations) and
``flags`` (``kago-oci update``'s flags). So kago-oci's start path loads what the spec uses: for
the default spec, this module and ``devices``. Every public name is still importable from here:
the submodule that owns it is imported on first access (PEP 562). What every planner shares
(Write, the value checks, each bad value a SpecError naming its field, runc's conversions) is
``values``, which every submodule imports; this module imports no planner at load time.

The conversions are runc's (github.com/opencontainers/cgroups utils.go), with their inverses:
cpu.weight from the shares by current runc's curve (shares_to_weight: 1024 -> 100),
io.weight = 1 + (blkio - 10) * 9999 // 990, v2 swap.max = swap - limit (the spec's swap is
memory+swap, as v1 memsw).
"""

from kago.errors import SpecError

from .values import (  # noqa: F401 - the shared names, importable from here too
    UNIFIED, DEVICE_FILTER, INT64, UINT64, UNLIMITED, OPTIONAL_FILES, DEFAULT_FILES, Write,
    shares_to_weight, weight_to_shares, blkio_to_io_weight, io_to_blkio_weight, swap_to_v2,
    swap_from_v2, _v1_limit, _v2_limit, _decimal, _show, _int, _limit, _bool, _str, _dict,
    _list, _cpulist)

__all__ = ["DEFAULT_FILES", "DEVICE_FILTER", "INT64", "OPTIONAL_FILES", "UINT64", "UNIFIED",
           "UNLIMITED", "Write",
           "blkio_to_io_weight", "controllers_needed", "device_rule", "io_to_blkio_weight",
           "memsw_order", "parse_size", "plan_writes", "resources_from_flags",
           "shares_to_weight", "swap_from_v2", "swap_to_v2", "weight_to_shares"]


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
