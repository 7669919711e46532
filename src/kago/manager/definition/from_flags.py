"""``kago run``/``create``'s flags -> a Definition; every error names the flag.

    definition = from_flags(args)    # args: the argparse namespace of the container flags

The flags are docker's (cli/ declares them); their values are parsed here with the same
parsers a definition file's fields go through (values.py), then checked across fields once.
"""

import os
from dataclasses import replace

from kago.manager.definition import docker_values as DV
from kago.manager.definition import values as V
from kago.manager.definition.model import Definition, check
from kago.manager.definition.parts import Capabilities, Limits, LogOptions
from kago.manager.definition.resources import rlimits
from kago.manager.errors import BadValue

NAMES = {"image": "image", "rootfs": "--rootfs", "ports": "-p", "network": "--network",
         "restart": "--restart", "auto_remove": "--rm", "userns": "--userns",
         "gid_map": "--gidmap", "privileged": "--privileged", "sysctls": "--sysctl"}


def from_flags(args, environ=None):
    """The Definition the parsed flags ask for (``args`` has every container flag)."""
    command = list(args.command or [])
    image = args.image
    if args.rootfs:
        command = ([image] if image else []) + command
        image = None
    elif not image:
        raise BadValue("", "requires an image (or --rootfs DIR) and optionally a command")
    entrypoint = None
    if args.entrypoint is not None:
        entrypoint = (args.entrypoint,) if args.entrypoint else ()
    seccomp, no_new_privileges = _security(args.security_opt)
    ids = replace(V.userns(args.userns or "host", "--userns"),
                  uid_map=V.id_map(",".join(args.uidmap), "--uidmap"),
                  gid_map=V.id_map(",".join(args.gidmap), "--gidmap"))
    d = Definition(
        image=image or "",
        rootfs=os.path.abspath(args.rootfs) if args.rootfs else "",
        name=V.name(args.name, "--name") if args.name else "",
        command=tuple(command) or None, entrypoint=entrypoint,
        env=V.env(_env_files(args.env_file) + list(args.env), "-e", environ),
        workdir=args.workdir or "", user=args.user or "", hostname=args.hostname or "",
        tty=bool(args.tty), interactive=bool(args.interactive),
        read_only=bool(args.read_only), auto_remove=bool(args.rm),
        mounts=tuple(V.volume(v, "-v") for v in args.volume)
        + tuple(V.tmpfs(t, "--tmpfs") for t in args.tmpfs),
        network=V.network(args.network, "--network", args.ip, args.network_alias),
        ports=tuple(V.port(p, "-p") for p in args.publish),
        ids=ids, limits=_limits(args),
        rlimits=rlimits(dict(_ulimit(u) for u in args.ulimit), "--ulimit"),
        capabilities=Capabilities(tuple(V.cap_name(c, "--cap-add") for c in args.cap_add),
                                  tuple(V.cap_name(c, "--cap-drop") for c in args.cap_drop)),
        no_new_privileges=no_new_privileges, seccomp=seccomp,
        sysctls=V.pairs(dict(_key_value(x, "--sysctl") for x in args.sysctl)),
        restart=V.restart(args.restart, "--restart"),
        stop_signal=V.stop_signal(args.stop_signal, "--stop-signal") if args.stop_signal
        else "",
        stop_timeout=None if args.stop_timeout is None else V.count(
            args.stop_timeout, "--stop-timeout"),
        labels=V.pairs(dict(_key_value(x, "--label") for x in args.label)),
        log=_log_opts(args.log_opt),
        cgroup_parent=DV.cgroup_parent(getattr(args, "cgroup_parent", None) or "",
                                       "--cgroup-parent"))
    d = _health_and_init(d, args)
    d = d.but(**_more(args, d))
    return check(d, NAMES)


def _health_and_init(d, args):
    from kago.manager.definition.health import healthcheck_flags
    get = lambda name: getattr(args, name, None)  # noqa: E731 - callers without these flags
    return d.but(healthcheck=healthcheck_flags(
        get("health_cmd"), get("health_interval"), get("health_timeout"),
        get("health_start_period"), get("health_start_interval"), get("health_retries"),
        bool(get("no_healthcheck"))), init=bool(get("init")))


def _more(args, d):
    """The fields of docker's flags added later (-w checked, --add-host, --dns...,
    --device, --privileged, -P/--expose, --shm-size, --group-add, --pull, --mount)."""
    get = lambda name, default=(): getattr(args, name, default) or default  # noqa: E731
    shm = get("shm_size", None)
    out = dict(
        workdir=DV.workdir(get("workdir", ""), "--workdir"),
        extra_hosts=tuple(DV.extra_host(h, "--add-host") for h in get("add_host")),
        dns=DV.dns(get("dns"), get("dns_search"), get("dns_option")),
        devices=tuple(DV.device(x, "--device") for x in get("device")),
        privileged=bool(get("privileged", False)),
        publish_all=bool(get("publish_all", False)),
        expose=tuple(p for x in get("expose") for p in DV.expose(x, "--expose")),
        shm_size=V.size(shm, "--shm-size") if shm else None,
        group_add=tuple(_group(g) for g in get("group_add")),
        pull=DV.pull(get("pull", "missing"), "--pull"))
    mounts = tuple(DV.mount(m, "--mount") for m in get("mount"))
    if mounts:
        out["mounts"] = d.mounts + mounts
    if out["shm_size"] == 0:
        raise BadValue("--shm-size", "the size must be greater than 0")
    return out


def _group(text):
    text = str(text).strip()
    if not text or ":" in text or any(c.isspace() for c in text):
        raise BadValue("--group-add", f'invalid group "{text}": use a name or a gid')
    return text


def _limits(args):
    return Limits(
        memory=V.size(args.memory, "--memory") if args.memory else None,
        memory_swap=V.swap(args.memory_swap, "--memory-swap") if args.memory_swap else None,
        cpus=V.cpus(args.cpus, "--cpus") if args.cpus else None,
        cpu_shares=None if args.cpu_shares is None else V.count(args.cpu_shares,
                                                                "--cpu-shares"),
        cpuset_cpus=args.cpuset_cpus or "",
        pids=None if args.pids_limit is None else V.count(args.pids_limit, "--pids-limit",
                                                          minimum=-1))


def _security(options):
    seccomp, no_new_privileges = "default", False
    for opt in options:
        if opt in ("seccomp=unconfined", "seccomp:unconfined"):
            seccomp = "unconfined"
        elif opt in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"):
            no_new_privileges = True
        else:
            raise BadValue("--security-opt", f'unknown option "{opt}": kago knows '
                                             f"seccomp=unconfined and no-new-privileges")
    return seccomp, no_new_privileges


def _env_files(paths):
    out = []
    for path in paths:
        try:
            with open(path) as f:
                out += [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except OSError as e:
            raise BadValue("--env-file", f"{path}: {os.strerror(e.errno).lower()}") from None
    return out


def _key_value(text, flag):
    key, eq, value = text.partition("=")
    if not key or not eq and flag != "--label":
        raise BadValue(flag, f'invalid value "{text}": use KEY=VALUE')
    return key, value


def _ulimit(text):
    """--ulimit nofile=1024[:2048]"""
    name, _eq, values = text.partition("=")
    soft, _, hard = values.partition(":")
    try:
        return name, (int(soft), int(hard or soft))
    except ValueError:
        raise BadValue("--ulimit", f'invalid limit "{text}": use NAME=SOFT[:HARD]') from None


def _log_opts(items):
    default = LogOptions()
    max_size, max_files = default.max_size, default.max_files
    for item in items:
        key, _, value = item.partition("=")
        if key == "max-size":
            max_size = V.size(value, "--log-opt max-size")
        elif key == "max-file":
            if not value.isdigit() or int(value) < 1:
                raise BadValue("--log-opt", f'invalid "{item}": max-file is a positive number')
            max_files = int(value)
        else:
            raise BadValue("--log-opt", f'unknown option "{item}": kago\'s json log knows '
                                        f"max-size and max-file")
    return LogOptions(max_size, max_files)
