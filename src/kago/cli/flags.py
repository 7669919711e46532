"""``run``/``create``'s flags and what they make: the container's Definition.

``_add_container_flags`` declares docker's container flags on a parser;
``container_definition`` turns the parsed flags into a kago.manager.definition.Definition
through its flag builder (every value checked, one clear line naming the flag on a bad one:
``--memory: invalid size "x": ...``).
"""


def add_run_flags(p):
    """``kago run``'s flags: -d, --detach-keys and the container flags (also read by the
    thin client, cli/run_thin.py, to find -d without argparse)."""
    p.add_argument("-d", "--detach", action="store_true",
                   help="run in the background and print the container's ID")
    p.add_argument("--detach-keys", help="keys that detach from its terminal (default "
                                         "ctrl-p,ctrl-q)")
    _add_container_flags(p)


def _add_container_flags(p):
    many = {"action": "append", "default": []}
    p.add_argument("--name", help="the container's name (default: a random one)")
    p.add_argument("-e", "--env", **many, help="set an environment variable (KEY=VALUE, or "
                                                 "KEY to take this shell's value)")
    p.add_argument("--env-file", **many, help="read environment variables from a file")
    p.add_argument("-v", "--volume", **many, help="bind a host path or a named volume: "
                                                    "SRC:DST[:ro]")
    p.add_argument("--tmpfs", **many, help="mount a fresh tmpfs: DST[:OPTIONS]")
    p.add_argument("-p", "--publish", **many, help="publish a port: "
                                                     "[IP:]HOST_PORT:CONTAINER_PORT[/PROTO]")
    p.add_argument("--network", "--net", default=None,
                   help="bridge (default), host, none, container:REF or a network's name")
    p.add_argument("--ip", help="a static IPv4 address on the network")
    p.add_argument("--network-alias", **many, help="another name peers see for it")
    p.add_argument("--hostname", help="the container's hostname (default: its short ID)")
    p.add_argument("-m", "--memory", help="memory limit (512m, 1g...)")
    p.add_argument("--memory-swap", help="memory plus swap limit; -1 for unlimited swap")
    p.add_argument("--cpus", help="number of CPUs (a quota: 1.5 is 150 ms per 100 ms)")
    p.add_argument("--cpu-shares", type=int, help="relative CPU weight")
    p.add_argument("--cpuset-cpus", help="CPUs it may run on (0-3, 0,1)")
    p.add_argument("--pids-limit", type=int, help="process limit (-1: unlimited)")
    p.add_argument("--cgroup-parent", help="the cgroup to put the container's under")
    p.add_argument("-u", "--user", help="user to run as: name, uid, name:group or uid:gid")
    p.add_argument("-w", "--workdir", help="working directory inside (absolute)")
    p.add_argument("--read-only", action="store_true",
                   help="mount the root filesystem read-only")
    p.add_argument("--cap-add", **many, help="add a capability (NET_ADMIN, ALL...)")
    p.add_argument("--cap-drop", **many, help="drop a capability (NET_RAW, ALL...)")
    p.add_argument("--restart", default="no",
                   help="restart policy: no, on-failure[:N], always, unless-stopped")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("--entrypoint", help="override the image's entrypoint")
    p.add_argument("--userns", help="user namespace: host (default), auto[:size=N], keep-id")
    p.add_argument("--uidmap", **many, help="uid map INSIDE:HOST:SIZE (a user namespace)")
    p.add_argument("--gidmap", **many, help="gid map INSIDE:HOST:SIZE")
    p.add_argument("-l", "--label", **many, help="set metadata: KEY=VALUE")
    p.add_argument("--stop-signal", help="signal that stops it (default: the image's, or "
                                         "SIGTERM)")
    p.add_argument("--stop-timeout", type=int, help="seconds to wait before SIGKILL on stop")
    p.add_argument("--sysctl", **many, help="set a namespaced kernel parameter: KEY=VALUE")
    p.add_argument("--security-opt", **many,
                   help="seccomp=unconfined or no-new-privileges")
    p.add_argument("--ulimit", **many, help="resource limit: NAME=SOFT[:HARD]")
    p.add_argument("--log-opt", **many, help="json log option: max-size=SIZE, max-file=N")
    _add_health_flags(p)
    p.add_argument("--rootfs", help="run this directory as the root filesystem (no image)")
    p.add_argument("--add-host", **many,
                   help="add an /etc/hosts line: NAME:IP (IP host-gateway: the host)")
    p.add_argument("--dns", **many, help="a DNS server for resolv.conf (replaces the "
                                           "network's)")
    p.add_argument("--dns-search", **many, help="a DNS search domain for resolv.conf")
    p.add_argument("--dns-option", **many, help="a resolv.conf option (ndots:2...)")
    p.add_argument("--device", **many, help="add a host device: HOST[:CONTAINER[:PERMS]]")
    p.add_argument("--privileged", action="store_true",
                   help="all capabilities and devices, no seccomp, writable /sys")
    p.add_argument("-P", "--publish-all", action="store_true",
                   help="publish every exposed port on a random host port")
    p.add_argument("--expose", **many, help="expose a port or range: PORT[-PORT][/PROTO]")
    p.add_argument("--shm-size", help="size of /dev/shm (default 64m)")
    p.add_argument("--group-add", **many, help="an additional group: name or gid")
    p.add_argument("--cidfile", help="write the container ID to this file (which must not "
                                     "exist)")
    p.add_argument("--pull", default="missing",
                   help="missing (default: pull if not local), always, never; kago pulls "
                        "only from a registry the reference names (HOST[:PORT]/REPO)")
    p.add_argument("--mount", **many, help="docker's mount syntax: type=bind|volume|tmpfs,"
                                             "src=...,dst=...[,readonly]")
    p.add_argument("image", nargs="?", help="the image (or, with --rootfs, the command)")
    p.add_argument("command", nargs="...", help="the command and its arguments")


def _add_health_flags(p):
    """docker's healthcheck flags and --init (definition/health.py parses them)."""
    p.add_argument("--health-cmd", help="command that checks its health (run in it)")
    p.add_argument("--health-interval", help="time between checks (default 30s)")
    p.add_argument("--health-timeout", help="time before a check fails (default 30s)")
    p.add_argument("--health-start-period", help="time after a start in which failures do "
                                                 "not count")
    p.add_argument("--health-start-interval", help="time between checks in the start period")
    p.add_argument("--health-retries", help="failures in a row to be unhealthy (default 3)")
    p.add_argument("--no-healthcheck", action="store_true",
                   help="disable the image's healthcheck")
    p.add_argument("--init", action="store_true",
                   help="run an init (tini) as PID 1 that reaps zombies and forwards signals")


def container_definition(args):
    """run/create flags -> the container's Definition (every value checked)."""
    from kago.manager.definition import from_flags
    return from_flags(args)


def check_cidfile(args):
    """--cidfile: docker refuses a file that exists, before anything is made."""
    import os

    from kago.cli.common import Usage
    path = getattr(args, "cidfile", None)
    if path and os.path.lexists(path):
        raise Usage(f"container ID file found, make sure the other container isn't running "
                    f"or delete {path}")


def write_cidfile(args, cid):
    path = getattr(args, "cidfile", None)
    if path:
        import os
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(cid)
