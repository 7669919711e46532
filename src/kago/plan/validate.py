"""Semantic checks of an OCI config: what the values mean together, with field paths.

``kago.oci.schema`` has already said each value has the right JSON type; here we check the
things a type cannot: ID mappings that overlap or reach outside what the caller may map,
sysctls that would change the host, a hostname with no UTS namespace to hold it. Errors
raise ``SpecError(field, message)`` (the first one found); things runc merely warns about (a
capability name the kernel does not have, kernel memory limits) come back as a list of
warning strings.

Pure functions: host facts (``cap_last_cap``, the ID ranges the caller may map) are arguments,
gathered by ``kago.host``; nothing here reads /proc. One consequence: a namespace joined by
``path`` is taken to be the container's own (runc compares it with the host's netns for
``net.*`` sysctls; that needs I/O and belongs to the caller).

The mapping arithmetic (``ranges_overlap``, ``range_within``, ``check_mappings``) is exported:
a manager cutting ID ranges out of the host's subuid space reuses it.
"""

from kago.errors import SpecError
from kago.oci.schema import (CAPABILITY_SETS, check_abs_path, check_array, check_object,
                             check_string, check_uint32, check_uint64, int_range,
                             plain_strings, quote, validate_config)
from kago.plan.tables import CAPABILITIES, NAMESPACES, RLIMITS, sysctl_namespace

ID_MAX = 2**32 - 1  # (uid_t)-1: the kernel's "no ID", never mappable
FULL_RANGE = ((0, ID_MAX),)  # what root may map: every ID but ID_MAX
MAX_EXTENTS = 340  # UID_GID_MAP_MAX_EXTENTS since Linux 4.15


# ---------------------------------------------------------------- range arithmetic
# A range is (start, size), covering IDs start .. start + size - 1.

def ranges_overlap(a, b) -> bool:
    """True if the (start, size) ranges ``a`` and ``b`` share at least one ID."""
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def merge_ranges(ranges) -> list:
    """Sort and coalesce overlapping or touching ranges (two subuid lines may abut)."""
    merged = []
    for start, size in sorted(r for r in ranges if r[1] > 0):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            last_start, last_size = merged[-1]
            merged[-1] = (last_start, max(last_size, start + size - last_start))
        else:
            merged.append((start, size))
    return merged


def range_within(r, available) -> bool:
    """True if every ID of range ``r`` is inside the union of the ``available`` ranges."""
    start, size = r
    return any(a_start <= start and start + size <= a_start + a_size
               for a_start, a_size in merge_ranges(available))


def _show_range(start, size) -> str:
    return f"{start}-{start + size - 1}"


def _show_ranges(ranges) -> str:
    return ", ".join(_show_range(s, n) for s, n in merge_ranges(ranges)) or "none"


def _first_overlap(ranges):
    """Indices (i, j), i < j, of two overlapping ranges, or None. Sorted scan, O(n log n)."""
    order = sorted(range(len(ranges)), key=lambda i: ranges[i])
    for prev, cur in zip(order, order[1:]):
        if ranges_overlap(ranges[prev], ranges[cur]):
            return min(prev, cur), max(prev, cur)
    return None


def _check_extent(m, field):
    """Neither side of one mapping may reach ID_MAX, which the kernel reserves."""
    for key in ("containerID", "hostID"):
        if m[key] + m["size"] > ID_MAX:
            raise SpecError(f"{field}.size",
                            f"{key} {m[key]} + size {m['size']} reaches {ID_MAX}, "
                            "which can never be mapped")


def check_mappings(mappings, field: str, available=FULL_RANGE) -> None:
    """Check an ID map (``linux.uidMappings`` or a mount's) the way the kernel and the host will.

    Structure is assumed checked (schema). Rules: at most 340 extents; no extent reaching
    4294967295; container ranges pairwise disjoint; host ranges pairwise disjoint; every host
    range inside the ``available`` (start, size) ranges the caller may map.
    """
    if len(mappings) > MAX_EXTENTS:
        raise SpecError(field, f"at most {MAX_EXTENTS} mappings are allowed, got {len(mappings)}")
    for i, m in enumerate(mappings):
        _check_extent(m, f"{field}[{i}]")
    for key, side in (("containerID", "container"), ("hostID", "host")):
        pair = _first_overlap([(m[key], m["size"]) for m in mappings])
        if pair:
            i, j = pair
            rng = _show_range(mappings[j][key], mappings[j]["size"])
            raise SpecError(f"{field}[{j}]", f"{side} range {rng} overlaps {field}[{i}]")
    for i, m in enumerate(mappings):
        if not range_within((m["hostID"], m["size"]), available):
            raise SpecError(f"{field}[{i}].hostID",
                            f"host range {_show_range(m['hostID'], m['size'])} is not within "
                            f"the IDs that may be mapped ({_show_ranges(available)})")


# ---------------------------------------------------------------- process

def check_capabilities(caps, field: str, cap_last_cap: int = 40) -> list:
    """Names unknown to kago or to this kernel are skipped with one warning naming them all,
    in runc's words (runc and crun run the container without them); ``plan.build`` leaves
    them out of the masks."""
    skipped = set()
    # Only the five sets: schema lets unknown keys through, and they mean nothing to us.
    for set_name in CAPABILITY_SETS:
        for name in caps.get(set_name, ()):
            number = CAPABILITIES.get(name)
            if number is None or number > cap_last_cap:
                skipped.add(name)
    if not skipped:
        return []
    return [f"{field}: ignoring unknown or unavailable capabilities: "
            f"[{' '.join(sorted(skipped))}]"]


def check_rlimits(rlimits, field: str) -> None:
    """Known types, each at most once, soft not above hard (setrlimit would say EINVAL)."""
    seen = set()
    for i, rl in enumerate(rlimits):
        where = f"{field}[{i}]"
        if rl["type"] not in RLIMITS:
            raise SpecError(f"{where}.type", f"unknown rlimit type {quote(rl['type'])}")
        if rl["type"] in seen:
            raise SpecError(f"{where}.type", f"duplicate rlimit {quote(rl['type'])}")
        seen.add(rl["type"])
        if rl["soft"] > rl["hard"]:
            raise SpecError(where, f"soft limit {rl['soft']} is above hard limit {rl['hard']}")


def check_process(p, field: str = "process", cap_last_cap: int = 40) -> list:
    """Semantic checks of one process object (config.json's or ``exec --process``'s)."""
    check_rlimits(p.get("rlimits", ()), f"{field}.rlimits")
    return check_capabilities(p.get("capabilities", {}), f"{field}.capabilities", cap_last_cap)


# ---------------------------------------------------------------- namespaces

def namespace_index(cfg) -> dict:
    """spec type -> the namespace entry, raising on a type the kernel does not have."""
    index = {}
    for i, ns in enumerate(cfg.get("linux", {}).get("namespaces", ())):
        if ns["type"] not in NAMESPACES:
            raise SpecError(f"linux.namespaces[{i}].type",
                            f"unknown namespace type {quote(ns['type'])}")
        index[ns["type"]] = ns
    return index


def check_user_namespace(cfg, ns, uid_ranges, gid_ranges) -> None:
    """Mappings need a user namespace; a new user namespace needs both mappings."""
    linux = cfg.get("linux", {})
    for key, kind, available in (("uidMappings", "uid", uid_ranges),
                                 ("gidMappings", "gid", gid_ranges)):
        field = f"linux.{key}"
        mappings = linux.get(key) or []
        if mappings and "user" not in ns:
            raise SpecError(field, "user namespace mappings given but no user namespace")
        if "user" in ns and "path" not in ns["user"] and not mappings:
            raise SpecError(field, f"a new user namespace needs {kind} mappings "
                                   "(or a path to join an existing one)")
        check_mappings(mappings, field, available)


def check_time_namespace(cfg, ns) -> None:
    """Offsets are written into a new time namespace: no namespace, or a joined one, is wrong."""
    if "timeOffsets" not in cfg.get("linux", {}):
        return
    if "time" not in ns:
        raise SpecError("linux.timeOffsets", "time offsets given but no time namespace")
    if "path" in ns["time"]:
        raise SpecError("linux.timeOffsets",
                        "time offsets cannot be applied to a joined time namespace (path given)")


def check_uts(cfg, ns) -> None:
    for key in ("hostname", "domainname"):
        if cfg.get(key) and "uts" not in ns:
            raise SpecError(key, f"unable to set {key} without a private UTS namespace")


def check_mount_namespace(cfg, ns) -> list:
    """Masking /proc entries without a mount namespace would mask them on the host (runc).

    A spec without one otherwise runs (the container shares the host's mount table and is
    chrooted into its rootfs, as with runc and crun); what would change the host's own
    mounts then is not done, with a warning: a read-only root (runc skips it silently) and
    rootfsPropagation (which runc would apply to the host's "/")."""
    linux = cfg.get("linux", {})
    for key in ("maskedPaths", "readonlyPaths"):
        if linux.get(key) and "mount" not in ns:
            raise SpecError(f"linux.{key}",
                            "unable to restrict sys entries without a private MNT namespace")
    if "mount" in ns:
        return []
    warnings = []
    if (cfg.get("root") or {}).get("readonly"):
        warnings.append("root.readonly: ignored without a private mount namespace (the "
                        "rootfs is a mount of the host's)")
    if linux.get("rootfsPropagation"):
        warnings.append("linux.rootfsPropagation: ignored without a private mount namespace "
                        "(it would change the host's mounts)")
    return warnings


# ---------------------------------------------------------------- sysctl

def check_sysctl(name: str, ns) -> None:
    """A sysctl may be set only if a namespace of the container's own holds it (runc's rules)."""
    field = f"linux.sysctl[{quote(name)}]"
    owner = sysctl_namespace(name)
    if name.replace("/", ".") == "kernel.hostname":
        raise SpecError(field, "sysctl conflicts with the \"hostname\" field: set hostname instead")
    if owner is None:
        raise SpecError(field, "sysctl is not namespaced and cannot be set in a container")
    if owner not in ns:
        raise SpecError(field, f"sysctl needs a private {owner} namespace, "
                               f"the container shares the host's")


def check_sysctls(cfg, ns) -> None:
    for name in cfg.get("linux", {}).get("sysctl", {}):
        check_sysctl(name, ns)


# ---------------------------------------------------------------- mounts

def check_mounts(cfg, ns) -> None:
    """Per-mount ID maps (spec 1.1 idmapped mounts): arithmetic, and something to map with.

    runc 1.2's rules (libcontainer/configs/validate checkIDMapMounts): ``idmap``/``ridmap``
    or maps on the mount make an idmapped mount; it must be a bind; maps of its own come as
    a pair; without any, the container's user namespace gives them.
    """
    for i, m in enumerate(cfg.get("mounts", ())):
        field = f"mounts[{i}]"
        for key in ("uidMappings", "gidMappings"):
            check_mappings(m.get(key) or [], f"{field}.{key}")
        options = m.get("options") or ()
        uids, gids = m.get("uidMappings"), m.get("gidMappings")
        wants_idmap = "idmap" in options or "ridmap" in options or uids or gids
        if not wants_idmap:
            continue
        if not (m.get("type") == "bind" or "bind" in options or "rbind" in options):
            raise SpecError(f"{field}.options",
                            "idmapped mounts are only supported for bind mounts")
        if bool(uids) != bool(gids):
            missing = "gidMappings" if uids else "uidMappings"
            raise SpecError(f"{field}.{missing}", "an idmapped mount needs both uid and gid "
                                                  "mappings")
        if not uids and "user" not in ns:
            raise SpecError(f"{field}.options", "idmap needs uidMappings and gidMappings on the "
                                                "mount, or a user namespace to take them from")


# ---------------------------------------------------------------- seccomp

# System calls kago's init makes between loading a filter that has a listener and handing the
# listener fd to the runtime: notifying them would wait for an agent that has no fd yet
# (runc refuses "write" for the same reason).
NOTIFY_FORBIDDEN = ("write", "sendmsg")


def _check_action(value, field):
    from kago.kernel.libseccomp import ACTIONS
    check_string(value, field)
    if value not in ACTIONS:
        raise SpecError(field, f"unknown action {quote(value)}")


def _check_errno_ret(entry, action_key, key, field, warnings):
    from kago.kernel.libseccomp import ACTIONS_WITH_DATA
    if key not in entry:
        return
    int_range(0, 0xFFFF)(entry[key], f"{field}.{key}")
    if entry[action_key] not in ACTIONS_WITH_DATA:
        warnings.append(f"{field}.{key}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return a "
                        f"value; ignored with {entry[action_key]}")


def _check_names(value, field, table, what):
    check_array(value, field)
    for i, name in enumerate(value):
        check_string(name, f"{field}[{i}]")
        if name not in table:
            raise SpecError(f"{field}[{i}]", f"unknown {what} {quote(name)}")


def _check_seccomp_arg(arg, field):
    from kago.kernel.libseccomp import MAX_ARGS, OPERATORS
    check_object(arg, field)
    for key, check in (("index", check_uint32), ("value", check_uint64), ("op", check_string)):
        if key not in arg:
            raise SpecError(f"{field}.{key}", "is required")
        check(arg[key], f"{field}.{key}")
    if "valueTwo" in arg:
        check_uint64(arg["valueTwo"], f"{field}.valueTwo")
    if arg["index"] >= MAX_ARGS:
        raise SpecError(f"{field}.index", f"a system call has {MAX_ARGS} arguments "
                        f"(0 to {MAX_ARGS - 1}), got {arg['index']}")
    if arg["op"] not in OPERATORS:
        raise SpecError(f"{field}.op", f"unknown operator {quote(arg['op'])}")


def _check_seccomp_syscall(entry, field, warnings):
    check_object(entry, field)
    for key in ("names", "action"):
        if key not in entry:
            raise SpecError(f"{field}.{key}", "is required")
    names = entry["names"]
    check_array(names, f"{field}.names")
    if not names:
        raise SpecError(f"{field}.names", "must name at least one system call")
    if not plain_strings(names) or "" in names:  # else every name is fine as it is
        for j, name in enumerate(names):
            check_string(name, f"{field}.names[{j}]")
            if not name:
                raise SpecError(f"{field}.names[{j}]", "empty string is not a valid syscall")
    _check_action(entry["action"], f"{field}.action")
    _check_errno_ret(entry, "action", "errnoRet", field, warnings)
    args = entry.get("args")
    if args is not None:
        check_array(args, f"{field}.args")
        for j, arg in enumerate(args):
            _check_seccomp_arg(arg, f"{field}.args[{j}]")
    if entry["action"] == "SCMP_ACT_NOTIFY":
        for j, name in enumerate(names):
            if name in NOTIFY_FORBIDDEN:
                raise SpecError(f"{field}.names[{j}]", f"SCMP_ACT_NOTIFY cannot be used for "
                                f"{quote(name)}: kago-oci needs it to hand over the listener")


def check_seccomp(sec, field: str = "linux.seccomp") -> list:
    """``linux.seccomp``, structure and meaning: known actions, operators, architectures and
    flags, argument indices below 6, errno values that fit. Names of system calls are not
    checked: one this architecture lacks is skipped when the filter is built (runc)."""
    from kago.kernel.libseccomp import ARCHES, FILTER_FLAGS
    warnings = []
    check_object(sec, field)
    if "defaultAction" not in sec:
        raise SpecError(f"{field}.defaultAction", "is required")
    _check_action(sec["defaultAction"], f"{field}.defaultAction")
    if sec["defaultAction"] == "SCMP_ACT_NOTIFY":
        raise SpecError(f"{field}.defaultAction",
                        "SCMP_ACT_NOTIFY cannot be the default action")
    _check_errno_ret(sec, "defaultAction", "defaultErrnoRet", field, warnings)
    if "architectures" in sec:
        _check_names(sec["architectures"], f"{field}.architectures", ARCHES, "architecture")
    if "flags" in sec:
        _check_names(sec["flags"], f"{field}.flags", FILTER_FLAGS, "seccomp filter flag")
    if "listenerPath" in sec:
        check_abs_path(sec["listenerPath"], f"{field}.listenerPath")
    if "listenerMetadata" in sec:
        check_string(sec["listenerMetadata"], f"{field}.listenerMetadata")
    syscalls = sec.get("syscalls")
    if syscalls is not None:
        check_array(syscalls, f"{field}.syscalls")
        for i, entry in enumerate(syscalls):
            _check_seccomp_syscall(entry, f"{field}.syscalls[{i}]", warnings)
    notify = [i for i, e in enumerate(syscalls or ()) if e["action"] == "SCMP_ACT_NOTIFY"]
    if notify and not sec.get("listenerPath"):
        raise SpecError(f"{field}.listenerPath", f"is required: {field}.syscalls[{notify[0]}] "
                        "uses SCMP_ACT_NOTIFY")
    return warnings


# ---------------------------------------------------------------- resources

# runc's words: cgroup v2 has no kernel memory limit and v1's is deprecated; runc and crun
# accept memory.kernel and ignore it (linux.cgroups never writes it; kernelTCP is written
# where a v1 host has the file, as crun does: see linux/cgroups/resources/memory.py)
KERNEL_MEMORY_IGNORED = "kernel memory settings are ignored and will be removed"


def kernel_memory_warning(memory, field="linux.resources.memory", set_if=lambda v: v is not None):
    """The warning for ``memory.kernel``, or None. runc warns at create when it is present,
    at ``update`` when it is not 0 (``set_if``)."""
    if isinstance(memory, dict) and set_if(memory.get("kernel")):
        return f"{field}: {KERNEL_MEMORY_IGNORED}"
    return None


def check_cgroups_path(cfg) -> None:
    """linux.cgroupsPath, before anything is made: kago-oci has runc's cgroupfs driver only.

    "slice:prefix:name" (runc's and crun's systemd driver form, what podman, CRI-O and
    containerd send with systemd cgroups) would otherwise become a directory of that name
    below kago-oci's own cgroup, outside every slice: it is refused, saying so. A ".."
    component, or a path naming no cgroup ("/"), is refused too, as split_path refuses them.
    """
    path = (cfg.get("linux") or {}).get("cgroupsPath")
    if not isinstance(path, str) or path == "":
        return  # the schema checked the type; "" is the default path
    if not path.startswith("/") and path.count(":") == 2:
        raise SpecError("linux.cgroupsPath", f"{quote(path)} is the systemd cgroup driver's "
                        "slice:prefix:name form; kago-oci has only the cgroupfs driver: give a "
                        "path such as /machine.slice/NAME")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SpecError("linux.cgroupsPath", f"{quote(path)} must not contain '..' components")
    if not parts:
        raise SpecError("linux.cgroupsPath", f"{quote(path)} names no cgroup (the root is "
                        "every process's)")


def check_resources(cfg) -> list:
    """What runc accepts in ``linux.resources`` and ignores, with its warning."""
    resources = (cfg.get("linux") or {}).get("resources")
    warning = kernel_memory_warning((resources or {}).get("memory")) \
        if isinstance(resources, dict) else None
    return [warning] if warning else []


# ---------------------------------------------------------------- entry point

def check_lsm_labels(cfg, lsms=()) -> list:
    """AppArmor/SELinux labels: applied where the host runs that LSM; a warning where it does
    not (the runtime then drops the label), never a silent ignore. ``lsms``: the LSMs this
    host has enabled ("apparmor", "selinux")."""
    warnings = []
    proc = cfg.get("process") or {}
    for field, lsm in LSM_FIELDS:
        if proc.get(field) and lsm not in lsms:
            warnings.append(f"process.{field}: {lsm} is not enabled on this host; "
                            f"{quote(proc[field])} is not applied")
    return warnings


LSM_FIELDS = (("apparmorProfile", "apparmor"), ("selinuxLabel", "selinux"))


def validate(cfg, cap_last_cap: int = 40, host_uid_ranges=FULL_RANGE,
             host_gid_ranges=FULL_RANGE, lsms=(), structure_checked=False) -> list:
    """Validate ``cfg`` (structure, then meaning); return warnings, raise SpecError on an error.

    ``cap_last_cap`` is /proc/sys/kernel/cap_last_cap; ``host_*_ranges`` are the (start, size)
    ranges the caller may map: ``FULL_RANGE`` for root, own ID plus /etc/subuid for a user.
    ``structure_checked``: the caller ran ``validate_config`` on this very ``cfg`` already
    (the runtime's ``load_config`` does: a second pass over a seccomp profile's ~350 names
    cost ~0.5 ms of every start).
    """
    if not structure_checked:
        validate_config(cfg)
    ns = namespace_index(cfg)
    check_user_namespace(cfg, ns, host_uid_ranges, host_gid_ranges)
    check_time_namespace(cfg, ns)
    check_uts(cfg, ns)
    warnings = check_mount_namespace(cfg, ns)
    check_sysctls(cfg, ns)
    check_mounts(cfg, ns)
    check_cgroups_path(cfg)
    warnings += check_lsm_labels(cfg, lsms) + check_resources(cfg)
    seccomp = (cfg.get("linux") or {}).get("seccomp")
    if seccomp is not None:
        warnings += check_seccomp(seccomp)
    if "process" in cfg:
        warnings += check_process(cfg["process"], "process", cap_last_cap)
    return warnings
