"""``kago start/stop/restart/kill/rm/pause/unpause/wait/attach``: one verb, many containers,
docker's partial failure (each error reported, exit 1 if any failed)."""

from kago.cli.common import Usage, each, manager, out, parser
from kago.cli.run import run_attached


def cmd_start(glob, argv):
    p = parser("start", "Start one or more containers.")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    if args.attach:
        if len(args.containers) != 1:
            raise Usage("start -a takes one container")
        mgr = manager(glob)
        record = mgr.resolve(args.containers[0])
        if mgr.live(record) in ("running", "paused"):
            return run_attached(mgr, record, start=False)
        return run_attached(mgr, record)
    return each(glob, args.containers, lambda m, r: m.start(r), "start")


def cmd_stop(glob, argv):
    p = parser("stop", "Stop running containers (SIGKILL after the timeout).")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
    p.add_argument("-s", "--signal")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda m, r: m.stop(r, args.time, args.signal), "stop")


def cmd_restart(glob, argv):
    p = parser("restart", "Restart containers.")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda m, r: m.restart(r, args.time), "restart")


def cmd_kill(glob, argv):
    p = parser("kill", "Send a signal (default SIGKILL) to containers.")
    p.add_argument("-s", "--signal", default="SIGKILL")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda m, r: m.kill(r, args.signal), "kill")


def cmd_rm(glob, argv):
    p = parser("rm", "Remove containers.")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return each(glob, args.containers, lambda m, r: m.remove(r, args.force), "rm")


def cmd_pause(glob, argv):
    return _freeze(glob, argv, "pause")


def cmd_unpause(glob, argv):
    return _freeze(glob, argv, "unpause")


def _freeze(glob, argv, verb):
    p = parser(verb, f"{verb.title()} all processes of containers.")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)

    def act(mgr, ref):
        record = mgr.resolve(ref)
        runtime = mgr.runtime(record)
        argv2 = [runtime.path, "--root", runtime.root, "pause" if verb == "pause" else "resume",
                 record["id"]]
        from kago.manager.runtimes import call
        code, _o, err = call(argv2)
        if code:
            from kago.manager.errors import ManagerError
            raise ManagerError(err.strip().splitlines()[-1] if err.strip() else f"{verb} failed")
    return each(glob, args.containers, act, verb)


def cmd_wait(glob, argv):
    p = parser("wait", "Block until containers stop; print their exit codes.")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    mgr = manager(glob)
    for ref in args.containers:
        code = mgr.wait(ref)
        out("unknown" if code is None else str(code))
    return 0


def cmd_attach(glob, argv):
    p = parser("attach", "Show a running container's output until it ends (no stdin).")
    p.add_argument("container")
    args = p.parse_args(argv)
    mgr = manager(glob)
    record = mgr.resolve(args.container)
    if mgr.live(record) not in ("running", "paused"):
        raise Usage("you cannot attach to a stopped container: start it first")
    return run_attached(mgr, record, start=False)

