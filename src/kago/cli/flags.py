"""``run``/``create``'s flags and what they make: the container's Definition.

``_add_container_flags`` declares docker's container flags on a parser;
``container_definition`` turns the parsed flags into a kago.manager.definition.Definition
through its flag builder (every value checked, one clear line naming the flag on a bad one:
``--memory: invalid size "x": ...``).
"""


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
    p.add_argument("--cgroup-parent", help="the cgroup to put the container's under")
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


def container_definition(args):
    """run/create flags -> the container's Definition (every value checked)."""
    from kago.manager.definition import from_flags
    return from_flags(args)
