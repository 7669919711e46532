"""Keyword options (``kago.Client``'s ``create``/``run``) -> a Definition; an error names
the option.

    definition = from_options("busybox", ["sh", "-c", "..."], name="web", memory="64m",
                              ports=["8080:80"], restart="on-failure:3")

The options are docker's flags by their Python names (``volumes``, ``tmpfs``, ``ports`` in
their -v/--tmpfs/-p spellings; ``remove`` for --rm) and a definition file's fields as they are
(``cgroup``, ``rlimits``, ``namespaces``, ``mounts``...). The same parsers as the flags and the
DSL (values.py, resources.py), the same check across fields.
"""

import os
from dataclasses import replace

from kago.manager.definition import docker_values as DV
from kago.manager.definition import values as V
from kago.manager.definition.model import Definition, check
from kago.manager.definition.parts import INDEPENDENT, TMPFS_OPTIONS, Capabilities, Limits, Mount
from kago.manager.definition.resources import cgroup, rlimits
from kago.manager.errors import BadValue

NAMES = {"image": "image", "rootfs": "rootfs", "ports": "ports", "network": "network",
         "restart": "restart", "auto_remove": "remove", "userns": "userns",
         "gid_map": "gid_map"}


def from_options(image=None, command=None, environ=None, **options):
    """The Definition these options ask for (BadValue names the option at fault)."""
    opts = dict(options)
    if "auto_remove" in opts:
        opts["remove"] = opts.pop("auto_remove") or opts.get("remove")
    unknown = sorted(set(opts) - set(_OPTIONS))
    if unknown:
        raise BadValue(unknown[0], "not a container option (docs/api.md lists them)")

    def opt(key, default=None):
        value = opts.get(key)
        return default if value is None else value
    env = opt("env", ())
    if isinstance(env, dict):
        env = [f"{k}={v}" for k, v in env.items()]
    entrypoint = opts.get("entrypoint")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint] if entrypoint else []
    d = Definition(
        image=str(image or ""),
        rootfs=os.path.abspath(str(opts["rootfs"])) if opts.get("rootfs") else "",
        name=V.name(opts["name"], "name") if opts.get("name") else "",
        command=V.argv(command or None, "command"),
        entrypoint=V.argv(entrypoint, "entrypoint"),
        env=V.env(list(env), "env", environ),
        workdir=str(opt("workdir", "")), user=str(opt("user", "")),
        hostname=str(opt("hostname", "")), tty=bool(opts.get("tty")),
        interactive=bool(opts.get("interactive")), read_only=bool(opts.get("read_only")),
        auto_remove=bool(opts.get("remove")),
        mounts=tuple(_mount(m, f"mounts[{i}]") for i, m in enumerate(opt("mounts", ())))
        + tuple(V.volume(v, "volumes") for v in opt("volumes", ()))
        + tuple(V.tmpfs(t, "tmpfs") for t in opt("tmpfs", ())),
        network=V.network(opt("network", "bridge"), "network", opt("ip", ""),
                          opt("aliases", ())),
        ports=tuple(V.port(p, "ports") for p in opt("ports", ())),
        network_etc=V.choice(opt("network_etc", "own"), "network_etc", ("own", "host")),
        ids=_ids(opts),
        namespaces=V.namespaces(opt("namespaces", {}), "namespaces"),
        independent=V.independent(opt("independent", INDEPENDENT), "independent"),
        limits=_limits(opts), rlimits=rlimits(opt("rlimits", {}), "rlimits"),
        capabilities=Capabilities(tuple(V.cap_name(c, "cap_add") for c in opt("cap_add", ())),
                                  tuple(V.cap_name(c, "cap_drop")
                                        for c in opt("cap_drop", ()))),
        no_new_privileges=bool(opts.get("no_new_privileges")),
        seccomp=V.choice(opt("seccomp", "default"), "seccomp", ("default", "unconfined")),
        sysctls=V.pairs(opt("sysctls", {})), restart=V.restart(opt("restart", "no"), "restart"),
        stop_signal=V.stop_signal(opts["stop_signal"], "stop_signal")
        if opts.get("stop_signal") else "",
        stop_timeout=None if opts.get("stop_timeout") is None else V.count(
            opts["stop_timeout"], "stop_timeout"),
        labels=V.pairs(opt("labels", {})), log=V.log(opt("log", {}), "log"))
    d = _health_and_init(d, opts)
    d = d.but(**_docker_options(opts))
    return check(d, NAMES)


def _health_and_init(d, opts):
    from kago.manager.definition.health import healthcheck
    return d.but(healthcheck=healthcheck(opts.get("healthcheck"), "healthcheck"),
                 init=bool(opts.get("init")))


def _ids(opts):
    ids = V.userns(opts.get("userns") or "host", "userns")
    if opts.get("uid_map") is not None:
        ids = replace(ids, uid_map=V.id_map(opts["uid_map"], "uid_map"))
    if opts.get("gid_map") is not None:
        ids = replace(ids, gid_map=V.id_map(opts["gid_map"], "gid_map"))
    return ids


def _limits(opts):
    def given(key, parse):
        return None if opts.get(key) is None else parse(opts[key], key)
    return Limits(memory=given("memory", V.size), memory_swap=given("memory_swap", V.swap),
                  cpus=given("cpus", V.cpus), cpu_shares=given("cpu_shares", V.count),
                  cpuset_cpus=str(opts.get("cpuset_cpus") or ""),
                  pids=given("pids_limit", lambda v, f: V.count(v, f, minimum=-1)),
                  cgroup=cgroup(opts.get("cgroup") or {}, "cgroup"))


def _mount(m, field):
    if isinstance(m, dict):
        m = Mount(str(m.get("type", "")), str(m.get("destination", "")),
                  str(m.get("source", "")), bool(m.get("readonly")),
                  tuple(m.get("options") or ()))
    if not isinstance(m, Mount) or m.kind not in ("bind", "tmpfs", "volume"):
        raise BadValue(field, "use a Mount, or {\"type\": bind|tmpfs|volume, ...}")
    dest = V.destination(m.destination, field)
    if m.kind == "bind":
        return replace(m, destination=dest, source=V.absolute(m.source, field))
    if m.kind == "volume":
        return replace(m, destination=dest, source=V.name(m.source, field))
    return replace(m, destination=dest, source="tmpfs",
                   options=m.options or TMPFS_OPTIONS)


_OPTIONS = ("rootfs", "name", "env", "entrypoint", "workdir", "user", "hostname", "tty",
            "interactive", "read_only", "remove", "mounts", "volumes", "tmpfs", "network",
            "ip", "aliases", "ports", "network_etc", "userns", "uid_map", "gid_map",
            "namespaces", "independent", "memory", "memory_swap", "cpus", "cpu_shares",
            "cpuset_cpus", "pids_limit", "cgroup", "rlimits", "cap_add", "cap_drop",
            "no_new_privileges", "seccomp", "sysctls", "restart", "stop_signal",
            "stop_timeout", "labels", "log")
_OPTIONS += ("healthcheck", "init")


_OPTIONS += ("extra_hosts", "dns", "dns_search", "dns_options", "devices", "privileged",
             "publish_all", "expose", "shm_size", "group_add", "pull")


def _docker_options(opts):
    """docker's later run flags by their Python names: ``extra_hosts`` (["name:ip"] or
    {name: ip}), ``dns``, ``dns_search``, ``dns_options``, ``devices`` (["/dev/x[:/dev/y[:rw]]"]),
    ``privileged``, ``publish_all``, ``expose`` ([80, "53/udp"]), ``shm_size``, ``group_add``,
    ``pull``; and -w's rule (absolute)."""
    hosts = opts.get("extra_hosts") or ()
    if isinstance(hosts, dict):
        hosts = [f"{name}:{ip}" for name, ip in hosts.items()]
    shm = opts.get("shm_size")
    out = dict(
        workdir=DV.workdir(str(opts.get("workdir") or ""), "workdir"),
        extra_hosts=tuple(DV.extra_host(h, "extra_hosts") for h in hosts),
        dns=DV.dns([str(x) for x in opts.get("dns") or ()],
                   [str(x) for x in opts.get("dns_search") or ()],
                   [str(x) for x in opts.get("dns_options") or ()],
                   ("dns", "dns_search", "dns_options")),
        devices=tuple(DV.device(x, "devices") for x in opts.get("devices") or ()),
        privileged=bool(opts.get("privileged")), publish_all=bool(opts.get("publish_all")),
        expose=tuple(p for x in opts.get("expose") or () for p in DV.expose(x, "expose")),
        shm_size=None if shm is None else V.size(shm, "shm_size"),
        group_add=tuple(str(g) for g in opts.get("group_add") or ()),
        pull=DV.pull(opts.get("pull") or "missing", "pull"))
    if out["shm_size"] == 0:
        raise BadValue("shm_size", "the size must be greater than 0")
    return out
