"""Spec -> Plan (runc's specconv): pure, one function per spec section.

The input is a config dict that ``oci.schema`` and ``plan.validate`` accepted; the output is
``plan.model`` objects in kernel vocabulary (flags, masks, numbers). No I/O here: host checks
(does the rootfs exist, is a bind source there) are in ``check_host``, called by the runtime.
"""

import errno
import os

from kago.errors import SpecError
from kago.kernel import consts as C
from kago.plan import tables
from kago.plan.model import DeviceOp, Hook, MountOp, Plan, ProcessPlan

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                   ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))
DEFAULT_UMASK = 0o022


def build(cfg, bundle, container_id, no_pivot=False, extra_env=()):
    linux = cfg.get("linux") or {}
    root = cfg.get("root") or {}
    return Plan(
        id=container_id, bundle=bundle,
        rootfs=rootfs_path(bundle, root.get("path", "rootfs")),
        root_readonly=bool(root.get("readonly")),
        rootfs_propagation=tables.ROOTFS_PROPAGATION.get(linux.get("rootfsPropagation"), 0),
        no_pivot=no_pivot,
        namespaces=namespaces(linux.get("namespaces") or ()),
        uid_maps=mappings(linux.get("uidMappings")), gid_maps=mappings(linux.get("gidMappings")),
        time_offsets=linux.get("timeOffsets") or {},
        mounts=[mount_op(m, bundle, f"mounts[{i}]", container_userns(linux))
                for i, m in enumerate(cfg.get("mounts") or ())],
        devices=devices(linux.get("devices") or ()), default_devices=True,
        masked_paths=list(linux.get("maskedPaths") or ()),
        readonly_paths=list(linux.get("readonlyPaths") or ()),
        hostname=cfg.get("hostname"), domainname=cfg.get("domainname"),
        sysctl=dict(linux.get("sysctl") or {}),
        process=process(cfg.get("process") or {}, extra_env, linux.get("seccomp")),
        hooks=hooks(cfg.get("hooks") or {}),
        # flat, like runc's "/<id>": a shared parent would be made and pruned on every run
        # (cgroupfs mkdir/rmdir are slow: 0.8 ms a run, measured in docs/latency.md)
        cgroups_path=linux.get("cgroupsPath") or f"/kago-{container_id}",
        resources=cgroup_resources(linux.get("resources")),
        annotations=dict(cfg.get("annotations") or {}), warnings=[])


def rootfs_path(bundle, path):
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(bundle, path))


def namespaces(items):
    return [(ns["type"], tables.NAMESPACES[ns["type"]][0], ns.get("path") or None)
            for ns in items]


def mappings(items):
    return [(m["containerID"], m["hostID"], m["size"]) for m in items or ()]


def is_bind(mount):
    opts = mount.get("options") or ()
    return mount.get("type") == "bind" or "bind" in opts or "rbind" in opts


def container_userns(linux):
    """(uid maps, gid maps, path of a joined user namespace or None), or None without one:
    what an ``idmap`` mount without maps of its own maps with (runc 1.2's specconv)."""
    for ns in linux.get("namespaces") or ():
        if ns.get("type") == "user":
            return (mappings(linux.get("uidMappings")), mappings(linux.get("gidMappings")),
                    ns.get("path") or None)
    return None


def mount_idmap(mount, opts, field, userns=None):
    """An idmapped bind's (uid maps, gid maps, userns path, recursive), or None.

    As runc 1.2: ``idmap``/``ridmap`` or ID maps on the mount make it idmapped (maps without
    an option: not recursive); without maps of its own it takes the container's, or the
    joined user namespace itself. plan.validate has checked the rest (a bind, both maps).
    """
    uids, gids = mount.get("uidMappings"), mount.get("gidMappings")
    if not opts.idmap and uids is None and gids is None:
        return None
    if uids or gids:
        return mappings(uids), mappings(gids), None, opts.recursive_idmap
    if userns is None:
        raise SpecError(f"{field}.options", "idmap needs uidMappings and gidMappings on the "
                                            "mount, or a user namespace to take them from")
    own_uids, own_gids, path = userns
    if path:
        return [], [], path, opts.recursive_idmap
    return own_uids, own_gids, None, opts.recursive_idmap


def mount_op(mount, bundle, field, userns=None):
    """One spec mount as a MountOp; ``userns``: container_userns(linux), for idmap."""
    opts = tables.parse_mount_options(mount.get("options"))
    bind = is_bind(mount)
    idmap = mount_idmap(mount, opts, field, userns)
    if idmap is not None and not bind:
        raise SpecError(f"{field}.options", "idmapped mounts are only supported for bind "
                                            "mounts")
    # runc acts on tmpcopyup for tmpfs mounts only, and ignores it on any other
    copy_up = "tmpcopyup" in opts.extra and not bind and mount.get("type") == "tmpfs"
    source = mount.get("source")
    if bind:
        if not source:
            raise SpecError(f"{field}.source", "a bind mount needs a source")
        # runc: a relative bind source is relative to the bundle
        source = source if os.path.isabs(source) else os.path.join(bundle, source)
        recursive = "rbind" in (mount.get("options") or ())
        flags = C.MS_BIND | (C.MS_REC if recursive else 0)
        extra = opts.flags & ~(C.MS_BIND | C.MS_REC | C.MS_REMOUNT)
        remount = opts.flags if extra else None
        fstype = None
    else:
        flags, remount, fstype = opts.flags, None, mount.get("type") or None
        if copy_up and flags & C.MS_RDONLY:  # written first, made read-only after the copy
            flags, remount = flags & ~C.MS_RDONLY, flags
    return MountOp(destination=mount["destination"], source=source, fstype=fstype, flags=flags,
                   data=opts.data, remount_flags=remount, propagation=list(opts.propagation),
                   attr_set=opts.rec_attr_set, attr_clr=opts.rec_attr_clr, is_bind=bind,
                   field=field, copy_up=copy_up, idmap=idmap)


def devices(items):
    spec = [DeviceOp(path=d["path"], kind=d["type"], major=d.get("major"), minor=d.get("minor"),
                     mode=d.get("fileMode"), uid=d.get("uid"), gid=d.get("gid")) for d in items]
    given = {d.path for d in spec}
    defaults = [DeviceOp(path=p, kind="c", major=ma, minor=mi, mode=0o666, uid=0, gid=0)
                for p, ma, mi in DEFAULT_DEVICES if p not in given]
    return defaults + spec


def cap_mask(names):
    """The capabilities' bits; a name kago does not know is left out (validate warned, as
    runc does), and one beyond this kernel's last is masked off when it is applied."""
    mask = 0
    for name in names or ():
        number = tables.CAPABILITIES.get(name)
        if number is not None:
            mask |= 1 << number
    return mask


def process(proc, extra_env=(), seccomp_section=None):
    """The process to run; ``seccomp_section`` is the spec's ``linux.seccomp`` (exec passes
    the container's, as runc applies the container's filter to every process it starts)."""
    user = proc.get("user") or {}
    capabilities = proc.get("capabilities") or {}
    return ProcessPlan(
        args=list(proc.get("args") or ()), env=list(proc.get("env") or ()) + list(extra_env),
        cwd=proc.get("cwd") or "/", uid=user.get("uid", 0), gid=user.get("gid", 0),
        additional_gids=list(user.get("additionalGids") or ()),
        umask=user.get("umask", DEFAULT_UMASK),
        bounding=cap_mask(capabilities.get("bounding")),
        effective=cap_mask(capabilities.get("effective")),
        inheritable=cap_mask(capabilities.get("inheritable")),
        permitted=cap_mask(capabilities.get("permitted")),
        ambient=cap_mask(capabilities.get("ambient")),
        rlimits=[(tables.RLIMITS[r["type"]], r["soft"], r["hard"])
                 for r in proc.get("rlimits") or ()],
        no_new_privileges=bool(proc.get("noNewPrivileges")),
        terminal=bool(proc.get("terminal")), console_size=proc.get("consoleSize"),
        oom_score_adj=proc.get("oomScoreAdj"),
        apparmor_profile=proc.get("apparmorProfile"), selinux_label=proc.get("selinuxLabel"),
        seccomp=seccomp(seccomp_section) if seccomp_section is not None else None)


def seccomp(section, field="linux.seccomp"):
    """``linux.seccomp`` -> SeccompPlan, the way runc's specconv + InitSeccomp read it.

    Each name of a ``syscalls`` entry becomes a rule. Its ``args`` are ANDed in one rule,
    unless the entry tests the same argument more than once: then each condition is a rule
    of its own (runc's "old behaviour", which profiles rely on). A rule whose action is the
    default action is dropped (it changes nothing, and libseccomp refuses it). Names are
    resolved later, by libseccomp, when the filter is compiled.
    """
    from kago.kernel import libseccomp as S
    from kago.plan.model import SeccompPlan
    default = S.action_value(section["defaultAction"], section.get("defaultErrnoRet"))
    rules, notify = [], False
    for i, entry in enumerate(section.get("syscalls") or ()):
        action = S.action_value(entry["action"], entry.get("errnoRet"))
        if action == default:
            continue
        notify = notify or entry["action"] == "SCMP_ACT_NOTIFY"
        conds = tuple((a["index"], S.OPERATORS[a["op"]], a.get("value", 0),
                       a.get("valueTwo", 0)) for a in entry.get("args") or ())
        indices = [c[0] for c in conds]
        groups = [(c,) for c in conds] if len(set(indices)) < len(indices) else [conds]
        where = f"{field}.syscalls[{i}]"
        rules += [(where, name, action, group) for name in entry["names"] for group in groups]
    flags = 0
    for name in section.get("flags") or ():
        flags |= S.FILTER_FLAGS[name]
    return SeccompPlan(
        default_action=default,
        arches=[(f"{field}.architectures[{i}]", S.ARCHES[a])
                for i, a in enumerate(section.get("architectures") or ())],
        flags=flags, rules=rules, notify=notify,
        listener_path=section.get("listenerPath") or None,
        listener_metadata=section.get("listenerMetadata") or "", program=None, skipped=[])


def hooks(section):
    return {kind: [Hook(path=h["path"], args=list(h.get("args") or [h["path"]]),
                        env=_hook_env(h.get("env")), timeout=h.get("timeout"))
                   for h in section.get(kind) or ()]
            for kind in HOOK_KINDS if section.get(kind)}


def _hook_env(env):
    """None when the hook has no ``env`` (it inherits one), else its list (``[]``: empty)."""
    return None if env is None else list(env)


# runc's specconv.AllowedDevices: what every container may use once the spec restricts devices
DEFAULT_DEVICE_RULES = (
    ("c", None, None, "m"), ("b", None, None, "m"),  # mknod of anything (not open)
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 136, None, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),  # null random full tty zero urandom pts/* ptmx net/tun
)


def cgroup_resources(resources):
    """The spec's ``linux.resources`` with runc's implied device rules added.

    A spec that restricts devices (podman's and runc's start with deny-all) still lets the
    container use the default nodes (runc's AllowedDevices, after the spec's rules). A node
    listed in ``linux.devices`` is made, but usable only as the spec's own rules allow (runc
    1.1 adds no rule for it: ``c 1:11 r`` stays read-only); a spec with no device rules
    leaves the device cgroup as it is, as runc does.
    """
    if not resources:
        return None
    resources = dict(resources)
    devices = resources.get("devices")
    if devices is not None and not isinstance(devices, list):
        raise SpecError("linux.resources.devices", "must be an array")
    if devices:
        implied = [_rule(kind, major, minor, access) for kind, major, minor, access
                   in DEFAULT_DEVICE_RULES]
        resources["devices"] = list(resources["devices"]) + implied
    return resources


def _rule(kind, major, minor, access):
    rule = {"allow": True, "type": kind, "access": access}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def expand_cgroup_mount(op, host_paths):
    """A ``cgroup`` mount: a tmpfs with the container's own cgroup of each hierarchy bound in.

    Works on v1, v2 and hybrid hosts alike and never exposes other cgroups (runc does the same
    without a cgroup namespace). ``host_paths``: hierarchy name -> the container's cgroup dir.
    """
    dest = op.destination.rstrip("/")
    readonly = bool(op.flags & C.MS_RDONLY)
    if set(host_paths) == {"unified"}:  # pure v2: the container's cgroup is the whole mount
        return [MountOp(destination=dest, source=host_paths["unified"], fstype=None,
                        flags=C.MS_BIND | C.MS_REC, data="", remount_flags=_ro_flags(op),
                        propagation=[], attr_set=0, attr_clr=0, is_bind=True, field=op.field)]
    ops = [MountOp(destination=dest, source="tmpfs", fstype="tmpfs",
                   flags=C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC, data="mode=755", remount_flags=None,
                   propagation=[], attr_set=0, attr_clr=0, is_bind=False, field=op.field)]
    for name, path in sorted(host_paths.items()):
        ops.append(MountOp(destination=f"{dest}/{name.replace('name=', '')}", source=path,
                           fstype=None, flags=C.MS_BIND, data="", remount_flags=_ro_flags(op),
                           propagation=[], attr_set=0, attr_clr=0, is_bind=True, field=op.field))
    if readonly:  # the tmpfs itself last, once the binds are in place
        ops.append(MountOp(destination=dest, source=None, fstype=None, flags=0, data="",
                           remount_flags=C.MS_RDONLY | C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC,
                           propagation=[], attr_set=0, attr_clr=0, is_bind=False, field=op.field))
    return ops


def _ro_flags(op):
    return C.MS_NOSUID | C.MS_NODEV | C.MS_NOEXEC | (op.flags & C.MS_RDONLY)


def check_host(plan):
    """The checks that look at the host: the rootfs and bind sources must exist."""
    if not os.path.isdir(plan.rootfs):
        raise SpecError("root.path", f"rootfs {plan.rootfs} does not exist or is not a directory")
    for op in plan.mounts:
        if op.is_bind and not os.path.lexists(op.source):
            raise SpecError(f"{op.field}.source", f"bind source {op.source} "
                            f"for {op.destination}: {os.strerror(errno.ENOENT).lower()}")
    for kind, _flag, path in plan.namespaces:
        if path:
            check_namespace_path(kind, path)


def check_namespace_path(kind, path):
    """A namespace to join must be there and openable by us: ENOENT says it does not exist,
    anything else (EACCES under a directory closed to us, a FUSE mount of another user) is
    said with its own errno, in runc's words ("failed to open PATH: permission denied")."""
    try:
        # O_NONBLOCK: a FIFO named there must not hang us; the child opens it for setns
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        return
    except OSError as e:
        err = e.errno
    if err in (errno.ENOENT, errno.ENOTDIR):
        raise SpecError("linux.namespaces", f"{kind} namespace path {path} does not exist")
    raise SpecError("linux.namespaces", f"{kind} namespace: failed to open {path}: "
                    f"{os.strerror(err).lower()}")
