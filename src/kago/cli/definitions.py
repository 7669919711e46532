"""``kago up/down/reload/archive FILE`` (``kago ps FILE`` is views.py's): definition files,
docs/manager.md."""

from kago.cli.common import client, out, parser


def definition_env(items):
    from kago.manager.definition.values import env
    return dict(item.split("=", 1) for item in env(items, "-e"))


def _definition_parser(name, description, extra=None):
    p = parser(name, description)
    p.add_argument("-e", "--env", action="append", default=[],
                   help="set a variable the definition file reads: KEY=VALUE")
    if extra:
        extra(p)
    p.add_argument("file", help="the definition file (Python)")
    return p


def cmd_up(glob, argv):
    args = _definition_parser("up", "Start every container a definition file defines.",
                              _up_flags).parse_args(argv)
    return client(glob).up(args.file, env=definition_env(args.env), keep_going=args.keep_going,
                           wait=not args.no_wait, out=out).exit_code


def cmd_down(glob, argv):
    args = _definition_parser("down", "Stop and remove a definition's containers.",
                              _down_flags).parse_args(argv)
    client(glob).down(args.file, timeout=args.timeout, out=out)
    return 0


def cmd_reload(glob, argv):
    args = _definition_parser("reload", "Apply a definition's changed limits to its running "
                                        "containers, without restarting them.").parse_args(argv)
    client(glob).reload_definition(args.file, env=definition_env(args.env), out=out)
    return 0


def cmd_archive(glob, argv):
    args = _definition_parser("archive", "Bootstrap and provision a definition's rootfs, save "
                                         "it as an image.", _archive_flags).parse_args(argv)
    client(glob).archive(args.file, env=definition_env(args.env), tag=args.tag, out=out)
    return 0


def _up_flags(p):
    p.add_argument("--keep-going", action="store_true",
                   help="keep what started when one container fails (default: roll back)")
    p.add_argument("--no-wait", action="store_true", help="do not wait for readiness checks")


def _down_flags(p):
    p.add_argument("-t", "--timeout", type=int, default=10,
                   help="seconds between the stop signal and SIGKILL (default 10)")


def _archive_flags(p):
    p.add_argument("--tag", help="image name (default: the container's name)")
