"""A container's Definition -> the OCI config.json the runtime gets. Pure: no I/O.

This is the seam of DESIGN.md: everything the manager knows (the definition built from flags
or a definition file, image config, rootfs path, network namespace, ID maps, the /etc files it
wrote) ends up in one runtime-spec document, so kago-oci, runc or crun can run it. It starts
from ``kago.oci.defaults.default_spec`` (runc's document) and changes only what the
definition asks for, plus two defaults docker users expect: docker's capability set and its
seccomp profile.

    build(definition, cid=..., rootfs=..., image=ImageConfig, user=User, netns=..., etc=...)

The definition's values are typed and checked already (kago.manager.definition): nothing here
parses what a user wrote. cgroup keys with a ``linux.resources`` field were converted for it
when the definition was built; every other key goes to ``linux.resources.unified``, which the
runtime writes to cgroup2 or translates to v1 where an equivalent exists.
"""

import copy

from kago.manager.definition.values import merge_env
from kago.manager.errors import BadValue


class ImageConfig:
    """What an image says about how to run it (docker's ``config`` section)."""

    __slots__ = ("cmd", "entrypoint", "env", "stop_signal", "user", "workdir")

    def __init__(self, doc=None):
        doc = doc or {}
        get = lambda *names: next((doc[n] for n in names if doc.get(n) is not None), None)
        self.env = list(get("Env", "env") or ())
        self.cmd = list(get("Cmd", "cmd") or ())
        self.entrypoint = list(get("Entrypoint", "entrypoint") or ())
        self.workdir = get("WorkingDir", "workdir") or ""
        self.user = get("User", "user") or ""
        self.stop_signal = get("StopSignal", "stop_signal") or ""


class User:
    """A resolved user: numeric IDs (the runtime takes nothing else)."""

    __slots__ = ("gid", "groups", "home", "uid")

    def __init__(self, uid=0, gid=0, groups=(), home="/root"):
        self.uid, self.gid, self.groups, self.home = uid, gid, list(groups), home


def command(definition, image):
    """docker's rule: entrypoint + cmd, where a new entrypoint drops the image's Cmd."""
    entrypoint, cmd = definition.entrypoint, definition.command
    if entrypoint is not None:
        args = list(entrypoint) + list(cmd or ())
    else:
        args = list(image.entrypoint) + list(cmd if cmd else image.cmd)
    if not args:
        raise BadValue("command", "no command specified: give one after the image, or use "
                                  "an image with a Cmd")
    return args


def build(definition, *, cid, rootfs, image=None, user=None, netns=None, etc=None,
          uid_map=None, gid_map=None, volumes=None, cgroups_path=None, init_binary=None,
          devices=None, host_caps=None):
    """The config.json for ``definition`` (a kago.manager.definition.Definition).

    ``netns``: None for a new network namespace, "host" for the host's, or a path (a
    kago.network namespace, or another container's). ``uid_map``/``gid_map``: the IdRanges
    reserved for it (the definition's maps, or an ``auto`` block). ``etc``: {"/etc/hosts":
    host path, ...} bind-mounted. ``volumes``: {volume name: host directory}.
    ``init_binary``: the host's tini, for a definition with ``init`` (init_binary.py).
    ``devices``: the host's device nodes for --device and --privileged, as
    ``kago.manager.devices`` reads them ({"path", "type", "major", "minor", "fileMode", "uid", "gid", "permissions"}).
    ``host_caps``: the capabilities this host's root holds (--privileged gives those; None:
    every capability kago knows).
    """
    from kago.oci.defaults import default_spec
    d = definition
    image = image or ImageConfig()
    user = user or User()
    spec = default_spec(args=command(d, image), terminal=d.tty)
    spec["root"] = {"path": rootfs, "readonly": d.read_only}
    spec["hostname"] = d.hostname or cid[:12]
    _process(spec["process"], d, image, user, spec["hostname"])
    _namespaces(spec, d, netns, uid_map, gid_map)
    _mounts(spec, d, etc or {}, volumes or {})
    _resources(spec, d)
    spec["linux"]["cgroupsPath"] = cgroups_path or f"/kago-{cid}"
    if d.sysctls:
        spec["linux"]["sysctl"] = d.sysctl_dict
    if d.seccomp == "default":
        from kago.oci.defaults import default_seccomp_profile
        spec["linux"]["seccomp"] = default_seccomp_profile(
            spec["process"]["capabilities"]["bounding"])
    if d.oci_hooks:
        spec["hooks"] = _hooks(d.oci_hooks)
    if d.init:
        _init(spec, init_binary)
    _docker_flags(spec, d, devices or (), host_caps)
    spec["annotations"] = {"io.kago.id": cid, "io.kago.name": d.name}
    for key, value in d.labels:
        spec["annotations"][key] = value
    return spec


def _hooks(hooks):
    out = {}
    for hook in hooks:
        entry = {"path": hook.path}
        if hook.args:
            entry["args"] = list(hook.args)
        if hook.env:
            entry["env"] = list(hook.env)
        if hook.timeout is not None:
            entry["timeout"] = hook.timeout
        out.setdefault(hook.kind, []).append(entry)
    return out


def _process(proc, d, image, user, hostname):
    proc["user"] = {"uid": user.uid, "gid": user.gid}
    if user.groups:
        proc["user"]["additionalGids"] = list(user.groups)
    base = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"HOSTNAME={hostname}", f"HOME={user.home}"]
    if d.tty:
        base.append("TERM=xterm")
    proc["env"] = merge_env(merge_env(base, image.env), d.env)
    proc["cwd"] = d.workdir or image.workdir or "/"
    caps = list(d.capability_set())
    # docker (CVE-2022-24769): a non-root user starts with no effective/permitted
    # capabilities; it keeps the bounding set, so setuid binaries still work as usual
    live = caps if user.uid == 0 else []
    proc["capabilities"] = {"bounding": list(caps), "effective": list(live),
                            "permitted": list(live), "inheritable": [], "ambient": []}
    proc["rlimits"] = rlimits_for(d)
    proc["noNewPrivileges"] = d.no_new_privileges
    if d.tty:
        proc["consoleSize"] = {"height": 24, "width": 80}


def rlimits_for(definition):
    """process.rlimits (also what ``kago reload`` applies to a running container)."""
    # runc spec's 1024: docker's 1048576 would raise the hard limit, which needs
    # CAP_SYS_RESOURCE (a host's root may lack it, as here); ask with rlimits/--ulimit
    out = {"nofile": {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}}
    for limit in definition.rlimits:
        out[limit.name] = {"type": "RLIMIT_" + limit.name.upper(), "soft": limit.soft,
                           "hard": limit.hard}
    return list(out.values())


def _namespaces(spec, d, netns, uid_map, gid_map):
    wanted = {"pid": "new", "network": "new", "ipc": "new", "uts": "new", "mount": "new"}
    if netns == "host":
        wanted["network"] = "host"
    elif netns:
        wanted["network"] = netns
    if uid_map:
        wanted["user"] = "new"
    for ns in d.namespaces:
        wanted[ns.kind] = ns.how
    spec["linux"]["namespaces"] = [
        {"type": kind} if how == "new" else {"type": kind, "path": how}
        for kind, how in wanted.items() if how != "host"]
    if uid_map:
        spec["linux"]["uidMappings"] = _mappings(uid_map)
        spec["linux"]["gidMappings"] = _mappings(gid_map or uid_map)
    if wanted.get("uts") == "host":
        spec.pop("hostname", None)


def _mappings(ranges):
    return [{"containerID": r.inside, "hostID": r.host, "size": r.size} for r in ranges]


def _owns_netns(spec):
    return any(ns["type"] == "network" and "path" not in ns
               for ns in spec["linux"]["namespaces"])


def _has_userns(spec):
    return any(ns["type"] == "user" for ns in spec["linux"]["namespaces"])


def _mounts(spec, d, etc, volumes):
    independent = set(d.independent)
    by_kind = {"/proc": "proc", "/sys": "sys", "/dev": "dev", "/dev/pts": "devpts",
               "/dev/shm": "shm", "/dev/mqueue": "mqueue", "/sys/fs/cgroup": "sys"}
    mounts = []
    for m in spec["mounts"]:
        kind = by_kind.get(m["destination"])
        if kind and kind not in independent:
            continue
        if m["destination"] == "/dev/pts" and _has_userns(spec):
            # gid=5 exists only where the map covers it; the mode is enough without it
            m["options"] = [o for o in m["options"] if o != "gid=5"]
        if m["destination"] == "/sys" and _has_userns(spec) and not _owns_netns(spec):
            # sysfs belongs to the network namespace's user namespace (DESIGN.md): a user
            # namespace on a network namespace it does not own gets the host's, read-only
            m = {"destination": "/sys", "type": "none", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        mounts.append(m)
    if "dev" not in independent:  # no fresh /dev means no devpts, shm or mqueue inside it
        mounts = [m for m in mounts if not m["destination"].startswith("/dev/")]
    users = [_user_mount(m, volumes, f"mounts[{i}]") for i, m in enumerate(d.mounts)]
    taken = {m["destination"] for m in users}
    ours = [{"destination": dest, "type": "bind", "source": source,
             "options": ["rbind", "ro" if d.network_etc == "host" else "rw",
                         "nosuid", "nodev", "noexec"]}
            for dest, source in sorted(etc.items()) if dest not in taken]
    # docker's order: by depth, so a volume at /etc goes under the /etc files, not over them
    mounts += sorted(users + ours, key=lambda m: m["destination"].rstrip("/").count("/"))
    spec["mounts"] = mounts


def _user_mount(m, volumes, field):
    if m.kind == "tmpfs":
        return {"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                "options": list(m.options) + (["ro"] if m.readonly else [])}
    source = m.source
    if m.kind == "volume":
        if m.source not in volumes:
            raise BadValue(field, f"volume {m.source} has no directory")
        source = volumes[m.source]
    opts = ["rbind", "ro" if m.readonly else "rw"] + list(m.options)
    return {"destination": m.destination, "type": "bind", "source": source, "options": opts}


def resources(definition):
    """linux.resources for the definition's limits (also what ``kago reload`` writes)."""
    limits = definition.limits
    res = {}

    def put(section, field, value):
        res.setdefault(section, {})[field] = value
    if limits.memory is not None:
        put("memory", "limit", limits.memory)
    if limits.memory_swap is not None:
        put("memory", "swap", limits.memory_swap)
    if limits.cpus is not None:
        quota, period = limits.cpu_quota
        put("cpu", "quota", quota)
        put("cpu", "period", period)
    if limits.cpu_shares is not None:
        put("cpu", "shares", limits.cpu_shares)
    if limits.cpuset_cpus:
        put("cpu", "cpus", limits.cpuset_cpus)
    if limits.pids is not None:
        put("pids", "limit", limits.pids)
    for key in limits.cgroup:
        if key.section:
            put(key.section, key.field, key.value)
        else:
            res.setdefault("unified", {})[key.key] = str(key.value)
    return res


def _resources(spec, d):
    res = resources(d)
    base = spec["linux"].setdefault("resources", {})
    devices = base.get("devices")
    base.update(copy.deepcopy(res))
    if devices is not None:
        base["devices"] = devices


def _init(spec, binary):
    """--init: tini bind-mounted read-only at /dev/init runs the command as PID 1's child."""
    from kago.manager.init_binary import IN_CONTAINER
    if not binary:
        raise BadValue("init", "needs the host's init binary (init_binary.host_binary)")
    spec["process"]["args"] = [IN_CONTAINER, "--"] + spec["process"]["args"]
    spec["mounts"].append({"destination": IN_CONTAINER, "type": "bind", "source": binary,
                           "options": ["bind", "ro", "nosuid", "nodev"]})


def _docker_flags(spec, d, devices, host_caps=None):
    """--shm-size, --group-add (numeric: names were resolved into ``user``), --device and
    --privileged, as docker's daemon writes them."""
    if d.shm_size is not None:
        for m in spec["mounts"]:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m.get("options", ()) if not o.startswith("size=")]
                m["options"].append(f"size={d.shm_size}")
    gids = [int(g) for g in d.group_add if g.isdigit()]
    if gids:
        user = spec["process"]["user"]
        user["additionalGids"] = sorted(set(user.get("additionalGids", [])) | set(gids))
    rules = spec["linux"].setdefault("resources", {}).setdefault("devices", [])
    nodes = spec["linux"].setdefault("devices", [])
    for dev in devices:
        node = {k: dev[k] for k in ("path", "type", "major", "minor", "fileMode", "uid", "gid")
                if k in dev}
        if all(n["path"] != node["path"] for n in nodes):
            nodes.append(node)
        rules.append({"allow": True, "type": dev["type"], "major": dev["major"],
                      "minor": dev["minor"], "access": dev.get("permissions", "rwm")})
    if not nodes:
        spec["linux"].pop("devices")
    if d.privileged:
        _privileged(spec, host_caps)


def _privileged(spec, host_caps=None):
    """docker's --privileged: every capability, no seccomp, every device (the nodes were
    given), /sys and its cgroups writable, nothing masked or read-only."""
    from kago.oci.names import CAPABILITIES
    caps = spec["process"]["capabilities"]
    everything = sorted(CAPABILITIES if host_caps is None else host_caps)
    live = bool(caps["effective"])
    caps.update(bounding=list(everything), effective=list(everything) if live else [],
                permitted=list(everything) if live else [])
    spec["linux"].pop("seccomp", None)
    spec["linux"]["maskedPaths"] = []
    spec["linux"]["readonlyPaths"] = []
    spec["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    for m in spec["mounts"]:
        if m["destination"] in ("/sys", "/sys/fs/cgroup") and "ro" in m.get("options", ()):
            m["options"] = [("rw" if o == "ro" else o) for o in m["options"]]
