"""A container's configuration -> the OCI config.json the runtime gets. Pure: no I/O.

This is the seam of DESIGN.md: everything the manager knows (flags, definition, image
config, rootfs path, network namespace, ID maps, the /etc files it wrote) ends up in one
runtime-spec document, so kago-oci, runc or crun can run it. It starts from
``kago.oci.defaults.default_spec`` (runc's document) and changes only what the configuration
asks for, plus two defaults docker users expect: docker's capability set and its seccomp
profile.

    build(cfg, cid=..., rootfs=..., image=ImageConfig, user=User, netns=..., etc=..., ...)

cgroup settings may be written in either vocabulary (``cpu.cfs_quota_us`` or ``cpu.max``):
v1 names that have a ``linux.resources`` field are translated to it (the runtime writes them
for whatever layout the host has); every other name goes to ``linux.resources.unified``, which
the runtime writes to cgroup2 or translates to v1 where an equivalent exists.
"""

import copy

from kago.manager import config as C
from kago.manager.errors import BadValue

# v1 control file -> (linux.resources section, field, converter)
_V1_KEYS = {
    "cpu.cfs_quota_us": ("cpu", "quota", int),
    "cpu.cfs_period_us": ("cpu", "period", int),
    "cpu.shares": ("cpu", "shares", int),
    "cpu.rt_runtime_us": ("cpu", "realtimeRuntime", int),
    "cpu.rt_period_us": ("cpu", "realtimePeriod", int),
    "cpuset.cpus": ("cpu", "cpus", str),
    "cpuset.mems": ("cpu", "mems", str),
    "memory.limit_in_bytes": ("memory", "limit", "size"),
    "memory.memsw.limit_in_bytes": ("memory", "swap", "size"),
    "memory.soft_limit_in_bytes": ("memory", "reservation", "size"),
    "memory.swappiness": ("memory", "swappiness", int),
    "pids.max": ("pids", "limit", "pids"),
    "blkio.weight": ("blockIO", "weight", int),
}

_RLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
            "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


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


def command(cfg, image):
    """docker's rule: entrypoint + cmd, where a new entrypoint drops the image's Cmd."""
    entrypoint = cfg.get("entrypoint")
    cmd = cfg.get("command")
    if entrypoint is not None:
        args = list(entrypoint) + list(cmd or ())
    else:
        args = list(image.entrypoint) + list(cmd if cmd else image.cmd)
    if not args:
        raise BadValue("command", "no command specified: give one after the image, or use "
                                  "an image with a Cmd")
    return args


def build(cfg, *, cid, rootfs, image=None, user=None, netns=None, etc=None, uid_map=None,
          gid_map=None, volumes=None, cgroups_path=None):
    """The config.json for ``cfg`` (see config.py for its keys).

    ``netns``: None for a new network namespace, "host" for the host's, or a path (a
    kago.network namespace, or another container's). ``etc``: {"/etc/hosts": host path, ...}
    bind-mounted read-only. ``volumes``: {volume name: host directory}.
    """
    from kago.oci.defaults import default_spec
    image = image or ImageConfig()
    user = user or User()
    args = command(cfg, image)
    spec = default_spec(args=args, terminal=bool(cfg.get("tty")))
    spec["root"] = {"path": rootfs, "readonly": bool(cfg.get("read_only"))}
    spec["hostname"] = cfg.get("hostname") or cid[:12]
    _process(spec["process"], cfg, image, user, spec["hostname"])
    _namespaces(spec, cfg, netns, uid_map, gid_map)
    _mounts(spec, cfg, etc or {}, volumes or {})
    _resources(spec, cfg)
    spec["linux"]["cgroupsPath"] = cgroups_path or f"/kago-{cid}"
    if cfg.get("sysctls"):
        spec["linux"]["sysctl"] = dict(cfg["sysctls"])
    if cfg.get("seccomp", "default") == "default":
        from kago.oci.defaults import default_seccomp_profile
        spec["linux"]["seccomp"] = default_seccomp_profile(
            spec["process"]["capabilities"]["bounding"])
    if cfg.get("oci_hooks"):
        spec["hooks"] = {kind: list(hooks) for kind, hooks in cfg["oci_hooks"].items()}
    spec["annotations"] = {"io.kago.id": cid, "io.kago.name": cfg.get("name") or ""}
    for key, value in (cfg.get("labels") or {}).items():
        spec["annotations"][str(key)] = str(value)
    return spec


def _process(proc, cfg, image, user, hostname):
    proc["user"] = {"uid": user.uid, "gid": user.gid}
    if user.groups:
        proc["user"]["additionalGids"] = list(user.groups)
    base = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"HOSTNAME={hostname}", f"HOME={user.home}"]
    if cfg.get("tty"):
        base.append("TERM=xterm")
    proc["env"] = C.merge_env(C.merge_env(base, image.env), cfg.get("env"))
    proc["cwd"] = cfg.get("workdir") or image.workdir or "/"
    caps = C.capabilities(cfg.get("cap_add"), cfg.get("cap_drop"))
    # docker (CVE-2022-24769): a non-root user starts with no effective/permitted
    # capabilities; it keeps the bounding set, so setuid binaries still work as usual
    live = caps if user.uid == 0 else []
    proc["capabilities"] = {"bounding": list(caps), "effective": list(live),
                            "permitted": list(live), "inheritable": [], "ambient": []}
    proc["rlimits"] = _rlimits(cfg.get("rlimits") or {})
    proc["noNewPrivileges"] = bool(cfg.get("no_new_privileges", False))
    if cfg.get("tty"):
        proc["consoleSize"] = {"height": 24, "width": 80}


def _rlimits(limits):
    # runc spec's 1024: docker's 1048576 would raise the hard limit, which needs
    # CAP_SYS_RESOURCE (a host's root may lack it, as here); ask with rlimits/--ulimit
    out = {"RLIMIT_NOFILE": {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}}
    for name, value in limits.items():
        key = str(name).lower().replace("rlimit_", "")
        if key not in _RLIMITS:
            raise BadValue(f"rlimits.{name}", f"unknown resource limit: use one of "
                                              f"{', '.join(_RLIMITS)}")
        soft, hard = (value, value) if isinstance(value, int) else tuple(value)
        if soft > hard:
            raise BadValue(f"rlimits.{name}", f"soft limit {soft} is above the hard one {hard}")
        out["RLIMIT_" + key.upper()] = {"type": "RLIMIT_" + key.upper(), "soft": int(soft),
                                        "hard": int(hard)}
    return list(out.values())


def rlimits_for(cfg):
    """The rlimits a running container should have: ``kago reload`` applies these."""
    return _rlimits(cfg.get("rlimits") or {})


def _namespaces(spec, cfg, netns, uid_map, gid_map):
    wanted = {"pid": "new", "network": "new", "ipc": "new", "uts": "new", "mount": "new"}
    if netns == "host":
        wanted["network"] = "host"
    elif netns:
        wanted["network"] = netns
    if uid_map:
        wanted["user"] = "new"
    for kind, how in (cfg.get("namespaces") or {}).items():
        if kind == "mount" and how != "new":
            raise BadValue("namespaces.mount", "a container always has its own mount namespace")
        wanted[kind] = how
    spec["linux"]["namespaces"] = [
        {"type": kind} if how == "new" else {"type": kind, "path": how}
        for kind, how in wanted.items() if how != "host"]
    if uid_map:
        spec["linux"]["uidMappings"] = _mappings(uid_map)
        spec["linux"]["gidMappings"] = _mappings(gid_map or uid_map)
    if wanted.get("uts") == "host":
        spec.pop("hostname", None)


def _mappings(items):
    return [{"containerID": i, "hostID": h, "size": s} for i, h, s in items]


def _owns_netns(spec):
    return any(ns["type"] == "network" and "path" not in ns
               for ns in spec["linux"]["namespaces"])


def _has_userns(spec):
    return any(ns["type"] == "user" for ns in spec["linux"]["namespaces"])


def _mounts(spec, cfg, etc, volumes):
    independent = set(cfg.get("independent", C.INDEPENDENT))
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
    for dest, source in sorted(etc.items()):
        mounts.append({"destination": dest, "type": "bind", "source": source,
                       "options": ["rbind", "ro" if cfg.get("network_etc") == "host" else "rw",
                                   "nosuid", "nodev", "noexec"]})
    for i, m in enumerate(cfg.get("mounts") or ()):
        mounts.append(_user_mount(m, volumes, f"mounts[{i}]"))
    spec["mounts"] = mounts


def _user_mount(m, volumes, field):
    dest = m["destination"]
    if m["type"] == "tmpfs":
        opts = list(m.get("options") or ["nosuid", "nodev", "mode=1777"])
        return {"destination": dest, "type": "tmpfs", "source": "tmpfs",
                "options": opts + (["ro"] if m.get("readonly") else [])}
    if m["type"] == "volume":
        if m["source"] not in volumes:
            raise BadValue(field, f"volume {m['source']} has no directory")
        source = volumes[m["source"]]
    elif m["type"] == "bind":
        source = m["source"]
    else:
        raise BadValue(f"{field}.type", f'"{m["type"]}": use bind, tmpfs or volume')
    opts = ["rbind", "ro" if m.get("readonly") else "rw"] + list(m.get("options") or ())
    return {"destination": dest, "type": "bind", "source": source, "options": opts}


def resources(cfg):
    """linux.resources for the configuration's limits (also what ``kago reload`` writes)."""
    res = {}

    def put(section, field, value):
        res.setdefault(section, {})[field] = value
    if cfg.get("memory") is not None:
        put("memory", "limit", int(cfg["memory"]))
    if cfg.get("memory_swap") is not None:
        put("memory", "swap", int(cfg["memory_swap"]))
    if cfg.get("cpus") is not None:
        quota, period = C.parse_cpus(cfg["cpus"])
        put("cpu", "quota", quota)
        put("cpu", "period", period)
    if cfg.get("cpu_shares") is not None:
        put("cpu", "shares", int(cfg["cpu_shares"]))
    if cfg.get("cpuset_cpus"):
        put("cpu", "cpus", str(cfg["cpuset_cpus"]))
    if cfg.get("pids_limit") is not None:
        put("pids", "limit", int(cfg["pids_limit"]))
    for key, value in (cfg.get("cgroup") or {}).items():
        _cgroup_key(res, put, str(key), value)
    return res


def _cgroup_key(res, put, key, value):
    field = f"cgroup[{key!r}]"
    if "." not in key or "/" in key:
        raise BadValue(field, "cgroup keys are control file names like cpu.max or "
                              "cpu.cfs_quota_us")
    known = _V1_KEYS.get(key)
    if known is None:
        res.setdefault("unified", {})[key] = str(value)
        return
    section, name, conv = known
    try:
        if conv == "size":
            value = -1 if value in (-1, "-1", "max") else C.parse_size(value, field)
        elif conv == "pids":
            value = -1 if value in (-1, "-1", "max") else int(value)
        else:
            value = conv(value)
    except ValueError:
        raise BadValue(field, f"invalid value {value!r}") from None
    put(section, name, value)


def _resources(spec, cfg):
    res = resources(cfg)
    base = spec["linux"].setdefault("resources", {})
    devices = base.get("devices")
    base.update(copy.deepcopy(res))
    if devices is not None:
        base["devices"] = devices
