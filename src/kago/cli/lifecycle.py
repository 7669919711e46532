"""``kago start/stop/restart/kill/rm/pause/unpause/wait/attach``: one verb, many containers,
docker's partial failure (each error reported, exit 1 if any failed)."""

from kago.cli import terminal
from kago.cli.common import Usage, client, each, out, parser
from kago.cli.run import run_attached


def cmd_start(glob, argv):
    p = parser("start", "Start one or more containers.")
    p.add_argument("-a", "--attach", action="store_true",
                   help="attach to its output (its terminal with -i) and wait for it to end")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="with -a: attach stdin to its terminal")
    p.add_argument("--detach-keys", help="keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    if args.attach or args.interactive:
        if len(args.containers) != 1:
            raise Usage("start -a/-i takes one container")
        container = client(glob).container(args.containers[0])
        mgr = container.client.manager
        running = container.state in ("running", "paused")
        if _has_tty(container.record):
            if args.interactive and not terminal.stdin_is_a_terminal():
                return terminal.not_a_tty()
            keys = terminal.detach_keys(args.detach_keys or terminal.DEFAULT_DETACH_KEYS)
            start = None if running else (lambda: mgr.start(container.id))
            code = terminal.attach(mgr.paths, container.id, keys, stdin=args.interactive,
                                   start=start)
            return 0 if code is None else code
        if args.interactive:
            raise Usage("start -i: only a container made with -t has a stdin to attach to")
        return run_attached(mgr, container.record, start=not running)
    return each(glob, args.containers, lambda c, r: c.start(r), "start")


def _has_tty(record):
    from kago.manager.definition import of
    return of(record).tty


def cmd_stop(glob, argv):
    p = parser("stop", "Stop running containers (SIGKILL after the timeout).")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time",
                   help="seconds to wait before SIGKILL (default: its --stop-timeout, or 10)")
    p.add_argument("-s", "--signal", help="the signal to send (default: its stop signal)")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda c, r: c.stop(r, args.time, args.signal), "stop")


def cmd_restart(glob, argv):
    p = parser("restart", "Restart containers.")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time",
                   help="seconds to wait before SIGKILL (default: its --stop-timeout, or 10)")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda c, r: c.restart(r, args.time), "restart")


def cmd_kill(glob, argv):
    p = parser("kill", "Send a signal (default SIGKILL) to containers.")
    p.add_argument("-s", "--signal", default="SIGKILL",
                   help="the signal to send (default: its stop signal)")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda c, r: c.kill(r, args.signal), "kill")


def cmd_rm(glob, argv):
    p = parser("rm", "Remove containers.")
    p.add_argument("-f", "--force", action="store_true", help="stop a running container first")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="also remove its anonymous volumes (kago has none: named volumes stay)")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda c, r: c.remove(r, args.force), "rm")


def cmd_pause(glob, argv):
    return _freeze(glob, argv, "pause")


def cmd_unpause(glob, argv):
    return _freeze(glob, argv, "unpause")


def _freeze(glob, argv, verb):
    p = parser(verb, f"{verb.title()} all processes of containers.")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda c, r: getattr(c, verb)(r), verb)


def cmd_wait(glob, argv):
    p = parser("wait", "Block until containers stop; print their exit codes.")
    p.add_argument("containers", nargs="+", help="the containers' names or IDs")
    args = p.parse_args(argv)
    c = client(glob)
    for ref in args.containers:
        code = c.wait(ref)
        out("unknown" if code is None else str(code))
    return 0


def cmd_attach(glob, argv):
    p = parser("attach", "Attach to a running container: its terminal (made with -t: input, "
                         "output, size; the detach keys leave it), else its output.")
    p.add_argument("--no-stdin", action="store_true", help="do not send this terminal's input")
    p.add_argument("--detach-keys", help="keys that detach (default ctrl-p,ctrl-q)")
    p.add_argument("container", help="the container's name or ID")
    args = p.parse_args(argv)
    container = client(glob).container(args.container)
    if container.state not in ("running", "paused"):
        raise Usage("you cannot attach to a stopped container: start it first")
    mgr = container.client.manager
    if _has_tty(container.record):
        if not args.no_stdin and not terminal.stdin_is_a_terminal():
            return terminal.not_a_tty()
        keys = terminal.detach_keys(args.detach_keys or terminal.DEFAULT_DETACH_KEYS)
        code = terminal.attach(mgr.paths, container.id, keys, stdin=not args.no_stdin)
        return 0 if code is None else code
    return run_attached(mgr, container.record, start=False)

