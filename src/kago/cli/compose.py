"""``kago compose [-f FILE]... [-p NAME] up|down|ps|logs|config|pull|build|start|stop|restart``:
compose files on kago's
engine (kago.manager.compose, docs/compose.md). Errors are one line (file:line: field:
what), exit status 1, as docker compose's."""

import os
import signal
import sys

from kago.cli.common import Usage, client, out, parser

COMMANDS = ("up", "down", "ps", "logs", "config", "pull", "build", "start", "stop", "restart")


def cmd_compose(glob, argv):
    p = parser("compose", "Run a compose project (compose.yaml, docker-compose.yml).")
    p.add_argument("-f", "--file", action="append", default=[],
                   help="a compose file (repeatable: later files override earlier ones)")
    p.add_argument("-p", "--project-name", help="the project's name (default: the "
                                                "directory's)")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("args", nargs="...")
    args = p.parse_args(argv)
    from kago.errors import KagoError
    try:
        return _COMMANDS[args.command](glob, args, args.args)
    except Usage:
        raise
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        return 1


def _project(glob, args):
    from kago.manager.compose.api import ComposeProject
    return ComposeProject(client(glob), args.file or None, args.project_name)


def _up(glob, args, argv):
    p = parser("compose up", "Create and start the services (and what they depend on).")
    p.add_argument("-d", "--detach", action="store_true", help="leave them running in the "
                                                               "background")
    p.add_argument("--build", action="store_true", help="build images before starting")
    p.add_argument("services", nargs="*")
    opts = p.parse_args(argv)
    project = _project(glob, args)
    # SIGTERM as Ctrl-C: an up cut short removes what it made, an attached one stops
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _up_and_follow(project, opts)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _up_and_follow(project, opts):
    project.up(opts.services, build=opts.build, out=out)
    if opts.detach:
        return 0
    # attached, as compose: every service's output until they end, or Ctrl-C stops them
    try:
        project.logs(opts.services and project.plan.selected(opts.services), follow=True,
                     exits=True)
    except KeyboardInterrupt:
        sys.stderr.write("Gracefully stopping... \n")
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # the stop is not interrupted
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        project.stop()
        return 130
    return 0


def _interrupt(_sig, _frame):
    raise KeyboardInterrupt


def _without_file(args):
    """``-p NAME`` and no compose file here: the verbs that find containers by their labels
    (down, ps) work on the project's name alone, as compose's."""
    from kago.manager.compose.load import NoComposeFile, find_files, normalize_name
    if args.file or not args.project_name:
        return None
    try:
        find_files(os.getcwd())
    except NoComposeFile:
        return normalize_name(args.project_name)
    return None


def _down(glob, args, argv):
    p = parser("compose down", "Stop and remove the project's containers and networks.")
    p.add_argument("-v", "--volumes", action="store_true", help="remove its named volumes too")
    p.add_argument("--remove-orphans", action="store_true",
                   help="also containers of services the file no longer has")
    p.add_argument("-t", "--timeout", type=int,
                   help="seconds between the stop signal and SIGKILL (default: each "
                        "service's stop_grace_period, else 10)")
    opts = p.parse_args(argv)
    name = _without_file(args)
    if name is not None:
        from kago.manager.compose import runner
        runner.down(client(glob).manager, name, None, volumes=opts.volumes,
                    timeout=opts.timeout, out=out)
        return 0
    _project(glob, args).down(volumes=opts.volumes, remove_orphans=opts.remove_orphans,
                              timeout=opts.timeout, out=out)
    return 0


def _ps(glob, args, argv):
    p = parser("compose ps", "The project's containers.")
    p.add_argument("-a", "--all", action="store_true", help="also those that have ended")
    p.add_argument("-q", "--quiet", action="store_true", help="only the IDs")
    opts = p.parse_args(argv)
    from kago.manager import format as F
    name = _without_file(args)
    if name is not None:
        from kago.manager.compose import runner
        rows = runner.ps(client(glob).manager, name, all=opts.all)
        out(F.table(("NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"), rows))
        return 0
    project = _project(glob, args)
    if opts.quiet:
        for c in project.containers():
            if opts.all or c.state in ("running", "paused", "restarting"):
                out(c.id)
        return 0
    out(F.table(("NAME", "IMAGE", "SERVICE", "STATUS", "PORTS"), project.ps(all=opts.all)))
    return 0


def _logs(glob, args, argv):
    p = parser("compose logs", "The services' output, each line prefixed with its "
                               "container.")
    p.add_argument("-f", "--follow", action="store_true", help="then what they write")
    p.add_argument("services", nargs="*")
    opts = p.parse_args(argv)
    project = _project(glob, args)
    try:
        project.logs(opts.services, follow=opts.follow)
    except KeyboardInterrupt:
        return 0
    return 0


def _config(glob, args, argv):
    p = parser("compose config", "The resolved file: interpolated, merged, checked.")
    p.add_argument("-q", "--quiet", action="store_true", help="only check it")
    p.add_argument("--services", action="store_true", help="the services' names")
    opts = p.parse_args(argv)
    from kago.manager.compose.load import load
    from kago.manager.compose.translate import translate
    project = load(args.file or None, args.project_name, warn=_warn)
    plan = translate(project)  # checked as up would
    if opts.quiet:
        return 0
    if opts.services:
        for name in plan.services:
            out(name)
        return 0
    from kago.manager.compose.api import config_text
    sys.stdout.write(config_text(project))
    return 0


def _services_verb(verb, what):
    """A verb that takes only SERVICE...: ``project.<verb>(services, out=out)``."""
    def run(glob, args, argv):
        p = parser(f"compose {verb}", what)
        p.add_argument("services", nargs="*")
        opts = p.parse_args(argv)
        getattr(_project(glob, args), verb)(opts.services, out=out)
        return 0
    return run


_pull = _services_verb("pull", "Pull the services' images (those not built here).")
_build = _services_verb("build", "Build the services' images (those with build:).")
_start = _services_verb("start", "Start the services' existing containers.")


def _timeout_parser(verb, what):
    p = parser(f"compose {verb}", what)
    p.add_argument("-t", "--timeout", type=int,
                   help="seconds between the stop signal and SIGKILL (default: each "
                        "service's stop_grace_period, else 10)")
    p.add_argument("services", nargs="*")
    return p


def _stop(glob, args, argv):
    opts = _timeout_parser("stop", "Stop the services' containers; they stay.") \
        .parse_args(argv)
    project = _project(glob, args)
    records = project.records(opts.services)
    project.stop(opts.services, opts.timeout)
    for record in records:
        out(f" Container {record['name']}  Stopped")
    return 0


def _restart(glob, args, argv):
    opts = _timeout_parser("restart", "Stop, then start, the services' containers.") \
        .parse_args(argv)
    _project(glob, args).restart(opts.services, opts.timeout, out=out)
    return 0


def _warn(line):
    print(f"kago: warning: {line}", file=sys.stderr)


_COMMANDS = {"up": _up, "down": _down, "ps": _ps, "logs": _logs, "config": _config,
             "pull": _pull, "build": _build, "start": _start, "stop": _stop,
             "restart": _restart}
