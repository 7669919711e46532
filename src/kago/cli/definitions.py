"""``kago up/down/reload/archive FILE`` (``kago ps FILE`` is views.py's): definition files,
docs/manager.md."""

from kago.cli.common import manager, out, parser


def definition_env(items):
    from kago.manager import config as C
    return dict(item.split("=", 1) for item in C.parse_env(items, "-e"))


def _definition_verb(name, description, extra=None):
    def handler(glob, argv):
        p = parser(name, description)
        p.add_argument("-e", "--env", action="append", default=[])
        if extra:
            extra(p)
        p.add_argument("file")
        args = p.parse_args(argv)
        from kago.manager.define import group
        fn = getattr(group, name)
        return fn(manager(glob), args.file, env=definition_env(args.env), out=out,
                  **{k: v for k, v in vars(args).items() if k not in ("env", "file")})
    return handler


def _up_flags(p):
    p.add_argument("--keep-going", action="store_true",
                   help="keep what started when one container fails (default: roll back)")
    p.add_argument("--no-wait", action="store_true", help="do not wait for readiness checks")


def _down_flags(p):
    p.add_argument("-t", "--timeout", type=int, default=10,
                   help="seconds between the stop signal and SIGKILL (default 10)")


def _archive_flags(p):
    p.add_argument("--tag", help="image name (default: the container's name)")



cmd_up = _definition_verb("up", "Start every container a definition file defines.", _up_flags)
cmd_down = _definition_verb("down", "Stop and remove a definition's containers.", _down_flags)
cmd_reload = _definition_verb("reload", "Apply a definition's changed limits to its running "
                                        "containers, without restarting them.")
cmd_archive = _definition_verb("archive", "Bootstrap and provision a definition's rootfs, save "
                                          "it as an image.", _archive_flags)
