"""The configuration dict of records written before the Definition -> a Definition.

Such a record (``"config": {...}``, keys as ``kago run`` and definition files filled them) is
converted once, through the same parsers as the flags: Records.load gives every reader the new
``definition`` and the record's next write stores it. Its values were checked when it was
made, so the conversion only re-spells them.
"""

from kago.manager.definition import values as V
from kago.manager.definition.model import Definition, check
from kago.manager.definition.parts import (
    INDEPENDENT,
    TMPFS_OPTIONS,
    Capabilities,
    IdMapping,
    Limits,
    Mount,
    OciHook,
)
from kago.manager.definition.resources import cgroup, rlimits


def from_config(cfg):
    """The Definition an old configuration dict describes (BadValue names ``config.KEY``)."""
    def get(key, default=None):
        value = cfg.get(key)
        return default if value is None else value
    ids = IdMapping()
    if get("userns", "host") != "host":
        ids = V.userns(cfg["userns"], "config.userns")
    ids = IdMapping(ids.mode, ids.auto_size, V.id_map(get("uid_map", ()), "config.uid_map"),
                    V.id_map(get("gid_map", ()), "config.gid_map"))
    limits = Limits(
        memory=cfg.get("memory"), memory_swap=cfg.get("memory_swap"),
        cpus=None if cfg.get("cpus") is None else V.cpus(cfg["cpus"], "config.cpus"),
        cpu_shares=cfg.get("cpu_shares"), cpuset_cpus=str(get("cpuset_cpus", "")),
        pids=cfg.get("pids_limit"), cgroup=cgroup(get("cgroup", {}), "config.cgroup"))
    d = Definition(
        image=get("image", ""), rootfs=get("rootfs", ""), name=get("name", ""),
        command=V.argv(cfg.get("command"), "config.command"),
        entrypoint=V.argv(cfg.get("entrypoint"), "config.entrypoint"),
        env=tuple(get("env", ())), workdir=get("workdir", ""), user=str(get("user", "")),
        hostname=get("hostname", ""), tty=bool(cfg.get("tty")),
        interactive=bool(cfg.get("interactive")), read_only=bool(cfg.get("read_only")),
        auto_remove=bool(cfg.get("auto_remove")),
        mounts=tuple(_mount(m) for m in get("mounts", ())),
        network=V.network(get("network", "bridge"), "config.network", get("ip", ""),
                          get("aliases", ())),
        ports=tuple(V.port(p, "config.ports") for p in get("ports", ())),
        network_etc=get("network_etc", "own"), ids=ids,
        namespaces=V.namespaces(get("namespaces", {}), "config.namespaces"),
        independent=V.independent(get("independent", INDEPENDENT), "config.independent"),
        limits=limits, rlimits=rlimits(get("rlimits", {}), "config.rlimits"),
        capabilities=Capabilities(
            tuple(V.cap_name(c, "config.cap_add") for c in get("cap_add", ())),
            tuple(V.cap_name(c, "config.cap_drop") for c in get("cap_drop", ()))),
        no_new_privileges=bool(cfg.get("no_new_privileges")),
        seccomp=get("seccomp", "default"), sysctls=V.pairs(get("sysctls", {})),
        oci_hooks=tuple(OciHook(kind, h["path"], tuple(h.get("args") or ()),
                                tuple(h.get("env") or ()), h.get("timeout"))
                        for kind, hooks in get("oci_hooks", {}).items() for h in hooks),
        restart=V.restart(get("restart", "no"), "config.restart"),
        stop_signal=get("stop_signal", ""), stop_timeout=cfg.get("stop_timeout"),
        labels=V.pairs(get("labels", {})), log=V.log(get("log", {}), "config.log"))
    return check(d)


def _mount(m):
    options = tuple(m.get("options") or ())
    if m["type"] == "tmpfs" and not options:
        options = TMPFS_OPTIONS
    return Mount(m["type"], m["destination"], m.get("source", ""), bool(m.get("readonly")),
                 options)
