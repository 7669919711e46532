"""``run``/``create``'s flags and what they make: the manager's configuration dict.

``_add_container_flags`` declares docker's container flags on a parser; ``_container_config``
turns the parsed flags into the manager's configuration (every value checked, one clear line
naming the flag on a bad one). Kept apart from the verbs so the configuration they build can
change in one place.
"""

import os

from kago.cli.common import Usage as _Usage


def _add_container_flags(p):
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--tmpfs", action="append", default=[])
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("--network", "--net", default=None)
    p.add_argument("--ip")
    p.add_argument("--network-alias", action="append", default=[])
    p.add_argument("--hostname")
    p.add_argument("-m", "--memory")
    p.add_argument("--memory-swap")
    p.add_argument("--cpus")
    p.add_argument("--cpu-shares", type=int)
    p.add_argument("--cpuset-cpus")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--restart", default="no")
    p.add_argument("--rm", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("--entrypoint")
    p.add_argument("--userns")
    p.add_argument("--uidmap", action="append", default=[])
    p.add_argument("--gidmap", action="append", default=[])
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--sysctl", action="append", default=[])
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("--ulimit", action="append", default=[])
    p.add_argument("--log-opt", action="append", default=[])
    p.add_argument("--rootfs", help="run this directory as the root filesystem (no image)")
    p.add_argument("image", nargs="?")
    p.add_argument("command", nargs="...")


def _container_config(args):
    """run/create flags -> the manager's configuration dict (every value checked)."""
    from kago.manager import config as C
    command = list(args.command or [])
    image = args.image
    if args.rootfs:
        command = ([image] if image else []) + command
        image = None
    elif not image:
        raise _Usage("requires an image (or --rootfs DIR) and optionally a command")
    cfg = C.new_config(name=args.name, image=image, rootfs=args.rootfs and os.path.abspath(
        args.rootfs), command=command or None, hostname=args.hostname, user=args.user,
        workdir=args.workdir, read_only=args.read_only, auto_remove=args.rm,
        interactive=args.interactive, tty=args.tty, network=args.network or "bridge",
        ip=args.ip, aliases=list(args.network_alias))
    cfg["env"] = C.parse_env(_env_files(args.env_file) + list(args.env))
    cfg["mounts"] = [C.parse_volume(v) for v in args.volume] + [C.parse_tmpfs(t)
                                                                 for t in args.tmpfs]
    cfg["ports"] = [C.parse_port(p) for p in args.publish]
    if args.memory:
        cfg["memory"] = C.parse_size(args.memory, "--memory")
    if args.memory_swap:
        cfg["memory_swap"] = -1 if args.memory_swap == "-1" else C.parse_size(
            args.memory_swap, "--memory-swap")
    if args.cpus:
        C.parse_cpus(args.cpus)
        cfg["cpus"] = float(args.cpus)
    if args.cpu_shares is not None:
        cfg["cpu_shares"] = args.cpu_shares
    if args.cpuset_cpus:
        cfg["cpuset_cpus"] = args.cpuset_cpus
    if args.pids_limit is not None:
        cfg["pids_limit"] = args.pids_limit
    cfg["cap_add"] = list(args.cap_add)
    cfg["cap_drop"] = list(args.cap_drop)
    C.capabilities(cfg["cap_add"], cfg["cap_drop"])  # unknown names fail now
    C.parse_restart(args.restart)
    cfg["restart"] = args.restart
    if args.entrypoint is not None:
        cfg["entrypoint"] = [args.entrypoint] if args.entrypoint else []
    if args.userns:
        cfg["userns"] = C.parse_userns(args.userns)
    if args.uidmap:
        cfg["uid_map"] = C.parse_id_map(",".join(args.uidmap), "--uidmap")
    if args.gidmap:
        cfg["gid_map"] = C.parse_id_map(",".join(args.gidmap), "--gidmap")
    cfg["labels"] = dict(_key_value(x, "--label") for x in args.label)
    cfg["sysctls"] = dict(_key_value(x, "--sysctl") for x in args.sysctl)
    cfg["rlimits"] = dict(_ulimit(x) for x in args.ulimit)
    cfg["log"] = _log_opts(args.log_opt)
    for opt in args.security_opt:
        if opt in ("seccomp=unconfined", "seccomp:unconfined"):
            cfg["seccomp"] = "unconfined"
        elif opt in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"):
            cfg["no_new_privileges"] = True
        else:
            raise _Usage(f"--security-opt {opt}: kago knows seccomp=unconfined and "
                         f"no-new-privileges")
    if args.stop_signal:
        cfg["stop_signal"] = args.stop_signal
    if args.stop_timeout is not None:
        cfg["stop_timeout"] = args.stop_timeout
    return C.validate(cfg)


def _env_files(paths):
    out = []
    for path in paths:
        try:
            with open(path) as f:
                out += [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
        except OSError as e:
            raise _Usage(f"--env-file {path}: {os.strerror(e.errno).lower()}") from None
    return out


def _key_value(text, flag):
    key, eq, value = text.partition("=")
    if not key or not eq and flag != "--label":
        raise _Usage(f"{flag} {text}: use KEY=VALUE")
    return key, value


def _ulimit(text):
    """--ulimit nofile=1024[:2048]"""
    name, _eq, values = text.partition("=")
    soft, _, hard = values.partition(":")
    try:
        return name, [int(soft), int(hard or soft)]
    except ValueError:
        raise _Usage(f"--ulimit {text}: use NAME=SOFT[:HARD]") from None


def _log_opts(items):
    from kago.manager import config as C
    out = dict(C.DEFAULT_LOG)
    for item in items:
        key, _, value = item.partition("=")
        if key == "max-size":
            out["max_size"] = C.parse_size(value, "--log-opt max-size")
        elif key == "max-file":
            if not value.isdigit() or int(value) < 1:
                raise _Usage(f"--log-opt {item}: max-file is a positive number")
            out["max_files"] = int(value)
        else:
            raise _Usage(f"--log-opt {item}: kago's json log knows max-size and max-file")
    return out

