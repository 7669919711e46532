"""``kago volume create|ls|inspect|rm|prune``: docker's flags and output over the client's
volumes (kago.manager.volumes does the work). As docker's volume verbs, an error is one line
and exit status 1; flag errors are 125."""

import json
import sys

from kago.cli.common import client, confirm, out, parser


def cmd_volume(glob, argv):
    verbs = {"create": _create, "ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm,
             "remove": _rm, "prune": _prune}
    if argv and argv[0] in ("-h", "--help", "help"):
        print("usage: kago volume COMMAND\n\n  create   create a volume\n  ls       list "
              "volumes\n  inspect  show volumes as JSON\n  rm       remove volumes\n  prune    "
              "remove unused volumes\n\nRun 'kago volume COMMAND --help' for a command's flags.")
        return 0
    if not argv or argv[0] not in verbs:
        from kago.cli.common import Usage
        raise Usage("volume: use volume create, ls, inspect, rm or prune")
    from kago.errors import KagoError, describe
    try:
        return verbs[argv[0]](glob, argv[1:])
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"kago: {describe(e)}", file=sys.stderr)
        return 1


def _create(glob, argv):
    p = parser("volume create", "Create a volume.")
    p.add_argument("-d", "--driver", default="local", help="only local")
    p.add_argument("-l", "--label", action="append", default=[],
                   help="set metadata: KEY=VALUE")
    p.add_argument("name", nargs="?", help="the volume's name (default: a random one)")
    args = p.parse_args(argv)
    from kago.manager.errors import BadValue
    from kago.manager.volumes import parse_labels
    if args.driver != "local":
        raise BadValue("--driver", f'"{args.driver}": kago has the local driver only')
    volume = client(glob).volumes.create(args.name, labels=parse_labels(args.label))
    out(volume.name)
    return 0


def _ls(glob, argv):
    p = parser("volume ls", "List volumes.")
    p.add_argument("-q", "--quiet", action="store_true", help="only the volume names")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter: dangling=, label=, name= or driver=")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    args = p.parse_args(argv)
    volumes = client(glob).volumes.list(filters=args.filter)
    if args.quiet:
        for v in volumes:
            out(v.name)
        return 0
    from kago.manager import format as F
    rows = [{"Driver": "local", "Name": v.name, "Mountpoint": v.mountpoint,
             "CreatedAt": v.created, "Scope": "local",
             "Labels": ",".join(f"{k}={val}" for k, val in sorted(v.labels.items())),
             "Links": str(len(v.users))} for v in volumes]
    for line in F.formatted(args.format or "table", rows, ("Driver", "Name"),
                            {"Driver": "DRIVER", "Name": "VOLUME NAME",
                             "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE"}):
        out(line)
    return 0


def _inspect(glob, argv):
    p = parser("volume inspect", "Show volumes as JSON.")
    p.add_argument("-f", "--format", help="a Go template, applied to each document")
    p.add_argument("names", nargs="+", help="the volumes' names")
    args = p.parse_args(argv)
    from kago.errors import KagoError
    volumes = client(glob).volumes
    docs, failed = [], 0
    for name in args.names:
        try:
            docs.append(volumes.get(name).inspect())
        except KagoError as e:
            print(f"kago: {e}", file=sys.stderr)
            failed = 1
    if args.format:
        from kago.manager import format as F
        for doc in docs:
            out(F.render(args.format, doc))
    else:
        out(json.dumps(docs, indent=4))
    return failed


def _rm(glob, argv):
    p = parser("volume rm", "Remove volumes (refused while a container uses one).")
    p.add_argument("-f", "--force", action="store_true",
                   help="no error for a volume that does not exist")
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    from kago.errors import KagoError
    volumes = client(glob).volumes
    failed = 0
    for name in args.names:
        try:
            volumes.remove(name, force=args.force)
            out(name)
        except KagoError as e:
            print(f"kago: {e}", file=sys.stderr)
            failed = 1
    return failed


_PRUNE_WARNING = """WARNING! This will remove {which} local volumes not used by at least one container.
Are you sure you want to continue? [y/N] """


def _prune(glob, argv):
    p = parser("volume prune", "Remove unused volumes (anonymous ones; all with -a).")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("-a", "--all", action="store_true", help="named volumes too")
    p.add_argument("--filter", action="append", default=[], help="filter: label=K[=V]")
    args = p.parse_args(argv)
    if not args.force and not confirm(_PRUNE_WARNING.format(
            which="all" if args.all else "anonymous")):
        return 0
    done = client(glob).volumes.prune(all=args.all, filters=args.filter)
    from kago.manager import format as F
    if done["volumes"]:
        out("Deleted Volumes:")
        for name in done["volumes"]:
            out(name)
        out()
    out(f"Total reclaimed space: {F.human_size(done['reclaimed'])}")
    return 0
