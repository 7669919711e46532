"""Applying a plan of writes to a Manager's directories: Manager.apply() and Manager.update().

The plan is resources.plan_writes() (pure); this module is the I/O around it:

1. what the host offers: the v1 controllers the manager spans, the v2 controllers usable in its
   cgroup2 directory, the optional files that change what is written, and the current memory
   limit (the v1 memsw ordering depends on it);
2. on cgroup2, the controllers the plan needs are enabled in the ancestors' subtree_control,
   below the mount root (which is the host's: a hybrid host's controller-less tree is never
   changed), and the plan is made again if that made more files appear;
3. every write is checked before any is made: its directory and file exist (a missing file is
   a SpecError naming the field: "not supported on this host");
4. the writes, one write(2) a line (runc's WriteFileByLine: a multi-line unified value such as
   io.max for two devices); a refusal is a CgroupError naming the directory, the file, the
   value and the kernel's errno. EINVAL on a write that comes again later in the plan is skipped:
   the plan repeats a write exactly where the kernel may refuse it until a later one is done.

Kernel docs: Documentation/admin-guide/cgroup-v2.rst ("Enabling and Disabling": a controller is
enabled for the children of a cgroup by "+name" in its cgroup.subtree_control, only if the
cgroup's own cgroup.controllers lists it; "no internal process" constraint), cgroup-v1/memory.rst
(EBUSY when a limit is below the current usage and reclaim fails).
"""

import errno
import os

from kago.errors import CgroupError, SpecError

from .files import read_text, write_text
from .mountinfo import UNIFIED
from .resources import DEVICE_FILTER, OPTIONAL_FILES, controllers_needed, plan_writes
from .v2tree import ancestors_below_root, usable_controllers  # noqa: F401 (used from here)
from .v2tree import enable_controllers as _enable

# Where each optional file is looked for: the v1 controller whose directory holds it.
_PROBE_IN = {"memory.memsw.limit_in_bytes": "memory", "blkio.weight": "blkio",
             "blkio.bfq.weight": "blkio", "io.bfq.weight": UNIFIED, "memory.swap.max": UNIFIED,
             "memory.kmem.tcp.limit_in_bytes": "memory"}


def apply(manager, resources, updating=False):
    """Plan, check and write ``resources``; returns the writes made (Write tuples)."""
    resources = _for_update(resources) if updating else resources
    writes = plan(manager, resources)
    needed = controllers_needed(writes)
    if needed and enable_controllers(manager.dirs[UNIFIED], needed, writes):
        writes = plan(manager, resources)  # new controllers bring new files (io.bfq.weight)
    if updating:
        check_before_update(manager, resources)
    checked = [(target_dir(manager, w), w) for w in writes]
    for d, w in checked:
        _check_file(d, w)
    for i, (d, w) in enumerate(checked):
        _write(d, w, later=checked[i + 1:])
    return writes


def plan(manager, resources):
    """plan_writes() for this manager's hierarchies, with what is read from them."""
    return plan_writes(resources, manager.mode, available(manager, resources),
                       _current(manager, resources))


def _for_update(resources):
    """As ``runc update``: device rules stay as create set them.

    On v1, rewriting them starts from deny-all, so a running container would lose /dev/null
    for a moment; containerd sends the whole resources object, devices included, on update.
    """
    if isinstance(resources, dict) and "devices" in resources:
        resources = {k: v for k, v in resources.items() if k != "devices"}
    return resources


# --- what the host offers ---------------------------------------------------------------------

def available(manager, resources=None):
    """{"v1": controllers, "unified": v2 controllers usable, "files": optional files present}.

    With hugepage limits to set, "files" also has the hugetlb.<size>.rsvd.* files there are
    (Linux 5.7), which get the same limit as runc writes them.
    """
    v1 = {c for name in manager.dirs if name != UNIFIED
          for c in name.split(",") if not c.startswith("name=")}
    unified = manager.dirs.get(UNIFIED)
    v2 = usable_controllers(unified) if unified else ()
    files = [f for f in OPTIONAL_FILES if _probe(manager, f)]
    if isinstance(resources, dict) and resources.get("hugepageLimits"):
        files += _rsvd_files(manager)
    return {"v1": v1, UNIFIED: set(v2), "files": files}


def _rsvd_files(manager):
    out = []
    for d in (manager._find("hugetlb"), manager.dirs.get(UNIFIED)):
        try:
            out += [n for n in os.listdir(d) if n.startswith("hugetlb.") and ".rsvd." in n]
        except (OSError, TypeError):
            pass  # no such hierarchy, or not created yet
    return out


def _probe(manager, filename):
    where = _PROBE_IN[filename]
    d = manager.dirs.get(UNIFIED) if where == UNIFIED else manager._find(where)
    return d is not None and os.path.exists(f"{d}/{filename}")


def _current(manager, resources):
    """What the memory plan depends on now, when memory is being set: the v1 limit (memsw
    ordering), and the v2 memory.max when a swap comes without a memory limit (``update
    --memory-swap`` alone: runc's update takes the limit the container has)."""
    if not isinstance(resources, dict) or not _sets_memory(resources):
        return None
    out = {}
    memory_dir = manager._find("memory") if manager.mode != "v2" else None
    if memory_dir is not None:
        try:
            out["memory.limit_in_bytes"] = int(read_text(memory_dir + "/memory.limit_in_bytes"))
        except (CgroupError, ValueError):
            pass  # not created yet: the plan assumes a fresh, unlimited cgroup
    unified = manager.dirs.get(UNIFIED)
    memory = resources.get("memory")
    if unified and isinstance(memory, dict) and memory.get("swap") not in (None, 0, -1) \
            and memory.get("limit") in (None, 0):
        try:
            text = read_text(unified + "/memory.max").strip()
            out["memory.max"] = -1 if text == "max" else int(text)
        except (CgroupError, ValueError):
            pass
    return out or None


def _sets_memory(resources):
    unified = resources.get("unified")
    return bool(resources.get("memory")) or (
        isinstance(unified, dict) and any(str(k).startswith("memory.") for k in unified))


def enable_controllers(d, controllers, writes=()):
    """v2tree.enable_controllers, strict; a refusal names the field of the first write it stops."""
    try:
        return _enable(d, controllers)
    except CgroupError as e:
        stopped = [w for w in writes if w.target == UNIFIED and w.filename != DEVICE_FILTER
                   and w.filename.split(".", 1)[0] in controllers]
        if stopped:
            e.field = stopped[0].field
        raise


# --- checks -----------------------------------------------------------------------------------

def target_dir(manager, write):
    d = manager.dirs.get(UNIFIED) if write.target == UNIFIED else manager._find(write.target)
    if d is None:  # plan_writes checked the controller: only a hand-made plan gets here
        raise SpecError(write.field, f"no {write.target} hierarchy for {write.filename}")
    return d


def _check_file(d, write):
    if os.path.exists(d if write.filename == DEVICE_FILTER else f"{d}/{write.filename}"):
        return
    if not os.path.isdir(d):
        raise CgroupError(d, f"cannot apply {write.field}: the cgroup does not exist",
                          errno.ENOENT)
    raise SpecError(write.field, f"not supported on this host: {d} has no {write.filename}")


def check_before_update(manager, resources):
    """memory.checkBeforeUpdate: refuse a limit at or below the current usage instead of
    reclaiming, the memory limit and the memory+swap limit alike (runc's CheckMemoryUsage)."""
    memory = resources.get("memory") if isinstance(resources, dict) else None
    if not isinstance(memory, dict) or memory.get("checkBeforeUpdate") is not True:
        return
    limits = [(memory.get(key), what) for key, what in (("swap", "memory+swap limit"),
                                                          ("limit", "memory limit"))]
    limits = [(value, what) for value, what in limits if type(value) is int and value > 0]
    if not limits:
        return
    usage_dir, usage_file = _usage_file(manager)
    usage = int(read_text(f"{usage_dir}/{usage_file}"))
    for limit, what in limits:
        if limit <= usage:
            raise CgroupError(usage_dir, f"{what} {limit} is at or below the current usage "
                              f"{usage} (linux.resources.memory.checkBeforeUpdate)", errno.EBUSY)


def _usage_file(manager):
    d = manager._find("memory") if manager.mode != "v2" else None
    if d is not None:
        return d, "memory.usage_in_bytes"
    return manager.dirs[UNIFIED], "memory.current"


# --- writes -----------------------------------------------------------------------------------

def _write(d, write, later=()):
    if write.filename == DEVICE_FILTER:
        _set_device_filter(d, write)
        return
    path = f"{d}/{write.filename}"
    lines = [line for line in write.value.split("\n") if line.strip()] or [write.value]
    value = write.value
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            for value in lines:  # one line a write(2): io.max, rdma.max take one device each
                os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        if e.errno == errno.EINVAL and any(w[:2] == write[:2] for _, w in later):
            return  # tried again after the write it depends on (see _bandwidth_writes)
        hint = _HINTS.get((write.filename, e.errno))
        err = CgroupError(d, f"write {write.filename}={value}: "
                          f"{os.strerror(e.errno).lower()}" + (f" ({hint})" if hint else ""),
                          e.errno)
        err.field = write.field
        raise err from e


def _set_device_filter(d, write):
    """The v2 device rules: an eBPF program attached to the cgroup (devices_v2)."""
    from . import devices_v2
    try:
        devices_v2.set_filter(d, write.value)
    except CgroupError as e:
        e.field = write.field
        raise


# The usual reason behind a refusal, where the errno alone does not say it.
_HINTS = {
    ("memory.limit_in_bytes", errno.EBUSY): "the cgroup uses more memory than that",
    ("memory.max", errno.EBUSY): "the cgroup uses more memory than that",
    ("memory.limit_in_bytes", errno.EINVAL): "above memory.memsw.limit_in_bytes?",
    ("memory.memsw.limit_in_bytes", errno.EINVAL): "below memory.limit_in_bytes?",
    ("cpuset.cpus", errno.EINVAL): "not all of them online and in the parent's cpuset",
    ("cpuset.cpus", errno.ERANGE): "no such CPU",
    ("cpuset.mems", errno.EINVAL): "not all of them online and in the parent's cpuset",
    ("cpu.rt_runtime_us", errno.EINVAL): "the parent cgroup has no real-time runtime to give",
    ("cpu.rt_runtime_us", errno.EBUSY): "the parent cgroup has no real-time runtime to give",
    ("pids.max", errno.EINVAL): "pids.max takes a positive number or max",
}
