"""``kago port/rename/diff/update`` and ``kago container prune``: what docker reads from or
changes on an existing container (kago.manager.changes does the work)."""

import sys

from kago.cli.common import Usage, client, confirm, each, out, parser


def cmd_port(glob, argv):
    p = parser("port", "List a container's published ports, or the host address of one.")
    p.add_argument("container", help="the container's name or ID")
    p.add_argument("port", nargs="?", help="PORT[/PROTO]: only this container port")
    args = p.parse_args(argv)
    c = client(glob)
    rows = c.port(args.container)
    if args.port is None:
        for inside, host in rows:
            out(f"{inside} -> {host}")
        return 0
    number, _, proto = args.port.partition("/")
    if not number.isdigit() or proto not in ("", "tcp", "udp"):
        raise Usage(f"invalid port \"{args.port}\": use PORT[/tcp|udp]")
    wanted = f"{int(number)}/{proto or 'tcp'}"
    hosts = [host for inside, host in rows if inside == wanted]
    if not hosts:
        name = c.container(args.container).name
        raise Usage(f"no public port '{wanted}' published for {name}")
    for host in hosts:
        out(host)
    return 0


def cmd_rename(glob, argv):
    p = parser("rename", "Rename a container.")
    p.add_argument("container", help="the container's current name or ID")
    p.add_argument("new_name", help="its new name")
    args = p.parse_args(argv)
    client(glob).rename(args.container, args.new_name)
    return 0


def cmd_diff(glob, argv):
    p = parser("diff", "List what a container changed in its filesystem: A added, C changed, "
                       "D deleted.")
    p.add_argument("container", help="the container's name or ID")
    args = p.parse_args(argv)
    for kind, path in client(glob).diff(args.container):
        out(f"{kind} {path}")
    return 0


def cmd_update(glob, argv):
    p = parser("update", "Change containers' limits and restart policy (a running one at "
                         "once).")
    p.add_argument("-m", "--memory", help="memory limit (512m, 1g...)")
    p.add_argument("--memory-swap", help="memory plus swap limit; -1 for unlimited swap")
    p.add_argument("--cpus", help="number of CPUs (a quota)")
    p.add_argument("--pids-limit", help="process limit (-1: unlimited)")
    p.add_argument("--restart", help="restart policy: no, on-failure[:N], always, "
                                     "unless-stopped")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    if all(v is None for v in (args.memory, args.memory_swap, args.cpus, args.pids_limit,
                               args.restart)):
        raise Usage("update: give at least one of --memory, --memory-swap, --cpus, "
                    "--pids-limit, --restart")
    _check_update(args)  # a bad value is the command line's error (125), before any change
    return each(glob, args.containers, lambda c, ref: c.update(
        ref, memory=args.memory, memory_swap=args.memory_swap, cpus=args.cpus,
        pids_limit=args.pids_limit, restart=args.restart), "update")


def _check_update(args):
    from kago.manager.definition import values as V
    if args.memory is not None:
        V.size(args.memory, "--memory")
    if args.memory_swap is not None:
        V.swap(args.memory_swap, "--memory-swap")
    if args.cpus is not None:
        V.cpus(args.cpus, "--cpus")
    if args.pids_limit is not None:
        V.count(args.pids_limit, "--pids-limit", minimum=-1)
    if args.restart is not None:
        V.restart(args.restart, "--restart")


def cmd_container_prune(glob, argv):
    p = parser("container prune", "Remove every stopped container.")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    args = p.parse_args(argv)
    if not args.force and not confirm("WARNING! This will remove all stopped containers.\n"
                                      "Are you sure you want to continue? [y/N] "):
        return 0
    removed = client(glob).prune_containers()
    if removed:
        out("Deleted Containers:")
    for record in removed:
        out(record["id"])
    sys.stdout.flush()
    return 0
