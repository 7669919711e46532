"""``kago``: the command people type -- docker's verbs, flags, columns and exit codes.

    kago [--root DIR] [--runroot DIR] [--runtime PATH] COMMAND [ARGS...]

Each verb is a small function: its argparse parser, a call into ``kago.manager`` (the library
that does the work), and docker's output. Exit statuses are docker's: 125 when kago itself
fails (a bad flag, an unknown image or container), 126/127 when the container's command
cannot be run or found, otherwise the container's own status.

Imports stay lazy: ``kago --version`` costs the interpreter and little more, and ``kago ps``
loads no runtime, storage or network code it does not need. ``kago demo`` (the README's first
command) builds the embedded busybox bundle and runs it through the runtime, as before.
"""

import os
import sys

from kago import __version__

PROG = "kago"

HELP = f"""\
usage: kago [--root DIR] [--runroot DIR] [--runtime PATH] COMMAND [ARGS...]

kago {__version__}: a Linux container runtime and manager in Python.

containers:
  run, create, start, stop, restart, kill, rm, ps, logs, exec, attach, wait,
  inspect, top, stats, pause, unpause, commit, export
images:
  images, import, pull, push, tag, rmi, save, load
definitions (Python files, see docs/manager.md):
  up FILE [-e KEY=VAL], down FILE, ps FILE, reload FILE, archive FILE
other:
  network ls|create|rm|inspect, system prune|info, version, info, demo

global options:
  --root DIR      state (default /var/lib/kago, or $KAGO_ROOT)
  --runroot DIR   volatile state (default /run/kago/manager; ROOT/run with --root)
  --runtime PATH  a runc-compatible runtime (default: kago's own, kago-oci)

Run 'kago COMMAND --help' for a command's flags.
"""

# What the demo container prints: its hostname (the spec's "kago"), its PID (1: it is the
# init of a new PID namespace) and its identity (uid=0(root), from the image's /etc/passwd).
DEMO_SCRIPT = 'echo "hostname: $(hostname)"; echo "pid: $$"; id'


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    glob, argv = _globals(argv)
    if glob is None:
        return 125
    if not argv:
        sys.stderr.write(HELP)
        return 2
    verb, rest = argv[0], argv[1:]
    if verb in ("-h", "--help", "help"):
        sys.stdout.write(HELP)
        return 0
    if verb in ("-V", "--version"):
        print(f"kago version {__version__}")
        return 0
    if verb == "demo":
        return demo(rest)
    handler = VERBS.get(verb)
    if handler is None:
        print(f"kago: '{verb}' is not a kago command. See 'kago --help'", file=sys.stderr)
        return 125
    if os.geteuid() != 0 and verb != "version" and not _asks_help(rest):
        # the state, the runtime, cgroups and networks are root's: without root every verb
        # would fail half-way, or read an empty root and print an empty table
        print(NEEDS_ROOT, file=sys.stderr)
        return 125
    return _dispatch(handler, glob, rest)


NEEDS_ROOT = "kago: kago needs root (there is no rootless mode yet): run it as root or with sudo"


def _asks_help(rest):
    """``kago VERB --help`` (before a ``--`` or a container's command)"""
    for arg in rest:
        if arg == "--":
            return False
        if arg in ("-h", "--help"):
            return True
    return False


def _globals(argv):
    """--root/--runroot/--runtime before the verb (docker's global flags go there too)."""
    glob = {"root": None, "runroot": None, "runtime": None}
    while argv and argv[0].startswith("--") and argv[0].split("=")[0][2:] in glob:
        flag, eq, value = argv[0].partition("=")
        if not eq:
            if len(argv) < 2:
                print(f"kago: flag needs an argument: {flag}", file=sys.stderr)
                return None, argv
            value, argv = argv[1], argv[1:]
        glob[flag[2:]] = value
        argv = argv[1:]
    return glob, argv


def _dispatch(handler, glob, rest):
    from kago.errors import KagoError
    try:
        return handler(glob, rest) or 0
    except _Usage as e:
        print(f"kago: {e}", file=sys.stderr)
        return 125
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        code = getattr(e, "exit_code", 125)
        return code if code in (125, 126, 127) else 125
    except BrokenPipeError:
        try:  # the reader left (kago ps | head): not an error, and nothing more to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        except OSError:
            pass
        return 0
    except OSError as e:
        from kago.errors import describe
        print(f"kago: {describe(e)}", file=sys.stderr)
        return 125
    except KeyboardInterrupt:
        return 130


class _Usage(Exception):
    pass


def _parser(prog, description):
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # docker: flag errors exit 125, not argparse's 2
            raise _Usage(f"{self.prog}: {message}")

    return Parser(prog=f"kago {prog}", description=description)


def _manager(glob):
    from kago.manager.engine import Manager
    return Manager(glob["root"], glob["runroot"], glob["runtime"])


def _out(line=""):
    sys.stdout.write(line + "\n")


# ---------------------------------------------------------------- run / create


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


def cmd_create(glob, argv):
    p = _parser("create", "Create a container (prepared, not started).")
    _add_container_flags(p)
    cfg = _container_config(p.parse_args(argv))
    record = _manager(glob).create(cfg)
    _out(record["id"])


def cmd_run(glob, argv):
    p = _parser("run", "Create and start a container.")
    p.add_argument("-d", "--detach", action="store_true")
    _add_container_flags(p)
    args = p.parse_args(argv)
    cfg = _container_config(args)
    if args.detach and cfg.get("auto_remove") is None:
        cfg["auto_remove"] = False
    mgr = _manager(glob)
    record = mgr.create(cfg)
    if cfg.get("tty") or cfg.get("interactive"):
        if args.detach:
            mgr.remove(record["id"], force=True)
            raise _Usage("-i/-t with -d would need attach over a console socket: run "
                         "detached without -it, then kago exec -it")
        return _run_foreground(mgr, record)
    if args.detach:
        try:
            mgr.start(record["id"])
        except Exception:
            if cfg.get("auto_remove"):
                mgr.remove(record["id"], force=True)
            raise
        _out(record["id"])
        return 0
    return _run_attached(mgr, record, remove=cfg.get("auto_remove"))


def _run_attached(mgr, record, remove=False, start=True):
    """Start under the supervisor and stream the log until the container ends; docker's
    ``run`` without -d. Ctrl-C and SIGTERM go to the container (docker's sig-proxy)."""
    import signal

    from kago.manager import logs, supervisor
    cid = record["id"]
    conn = supervisor.connect(mgr.paths)
    path = mgr.paths.log(cid)
    offset = os.path.getsize(path) if os.path.exists(path) else 0
    try:
        if start:
            mgr.start(cid, attached=True, conn=conn)
        conn.send("wait", id=cid)
        reply = {}

        def proxy(signum, _frame):
            from kago.errors import KagoError
            try:
                mgr.runtime(record).kill(cid, signum)
            except KagoError:  # it ended meanwhile: the wait reply is on its way
                return
        old = {s: signal.signal(s, proxy) for s in (signal.SIGINT, signal.SIGTERM)}

        def ended():
            if not reply:
                got = conn.receive(timeout=0)
                if got is not None:
                    reply.update(got)
            return bool(reply)
        try:
            for entry in logs.follow(path, ended, interval=0.02, offset=offset):
                stream = sys.stdout if entry.get("stream") == "stdout" else sys.stderr
                stream.write(entry.get("log", ""))
                stream.flush()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
    except BaseException:
        if remove:
            mgr.remove(cid, force=True)
        raise
    finally:
        conn.close()
    if remove:
        mgr.remove(cid, force=True)
    elif reply.get("status") == "exited":
        # the supervisor releases it as well; this returns once it is done (docker's run)
        mgr.release_quietly(cid)
    code = reply.get("exit_code")
    return 255 if code is None else code


def _run_foreground(mgr, record):
    """-i/-t: the runtime runs in the foreground with our terminal (it proxies the pty:
    resize, Ctrl-C, exit status); no restart policy applies. The record names this process
    as its ``client``, and a connection to the supervisor stays open while it runs: if this
    process dies, the supervisor takes the container over (manager/adoption.py)."""
    import subprocess
    import time

    from kago.manager.journal import creator
    cid = record["id"]
    mgr.prepare(record)
    runtime = mgr.runtime(record)
    # "foreground": the supervisor leaves it to us while we live
    mgr.records.update(cid, lambda r: r["state"].update(status="running", foreground=True,
                                                        client=creator(),
                                                        started_at=time.time()))
    conn = _foreground_watch(mgr, cid)
    code = None
    try:
        code = subprocess.call(runtime.run_argv(cid, mgr.paths.bundle(cid)))
        code = 128 - code if code < 0 else code
    finally:
        mgr.records.update(cid, lambda r: r["state"].update(
            status="exited", exit_code=code, finished_at=time.time(), pid=0,
            foreground=False, fresh=False))
        if conn is not None:
            conn.close()
        if record["config"].get("auto_remove"):
            mgr.remove(cid, force=True)
        else:
            mgr.release_quietly(cid)  # docker: an ended container holds no network or mount
    return code


def _foreground_watch(mgr, cid):
    """The supervisor's connection that tells it when this command line dies; None (with a
    warning) if no supervisor can be had: the container then runs unwatched, as before."""
    from kago.errors import KagoError
    from kago.manager import supervisor
    try:
        conn = supervisor.connect(mgr.paths)
    except (KagoError, OSError) as e:
        print(f"kago: warning: not supervised if this command dies: {e}", file=sys.stderr)
        return None
    try:
        conn.request("foreground", id=cid, timeout=10)
    except (KagoError, OSError, ValueError):
        conn.close()
        return None
    return conn


# ---------------------------------------------------------------- lifecycle verbs


def _each(glob, refs, fn, verb):
    """Apply ``fn`` to each container, printing its reference; docker's partial failure:
    go on, report each error, exit 1 if any failed."""
    from kago.errors import KagoError
    mgr = _manager(glob)
    failed = 0
    for ref in refs:
        try:
            fn(mgr, ref)
            _out(ref)
        except KagoError as e:
            print(f"kago: {verb} {ref}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_start(glob, argv):
    p = _parser("start", "Start one or more containers.")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    if args.attach:
        if len(args.containers) != 1:
            raise _Usage("start -a takes one container")
        mgr = _manager(glob)
        record = mgr.resolve(args.containers[0])
        if mgr.live(record) in ("running", "paused"):
            return _run_attached(mgr, record, start=False)
        return _run_attached(mgr, record)
    return _each(glob, args.containers, lambda m, r: m.start(r), "start")


def cmd_stop(glob, argv):
    p = _parser("stop", "Stop running containers (SIGKILL after the timeout).")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
    p.add_argument("-s", "--signal")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(glob, args.containers, lambda m, r: m.stop(r, args.time, args.signal), "stop")


def cmd_restart(glob, argv):
    p = _parser("restart", "Restart containers.")
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(glob, args.containers, lambda m, r: m.restart(r, args.time), "restart")


def cmd_kill(glob, argv):
    p = _parser("kill", "Send a signal (default SIGKILL) to containers.")
    p.add_argument("-s", "--signal", default="SIGKILL")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(glob, args.containers, lambda m, r: m.kill(r, args.signal), "kill")


def cmd_rm(glob, argv):
    p = _parser("rm", "Remove containers.")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    return _each(glob, args.containers, lambda m, r: m.remove(r, args.force), "rm")


def cmd_pause(glob, argv):
    return _freeze(glob, argv, "pause")


def cmd_unpause(glob, argv):
    return _freeze(glob, argv, "unpause")


def _freeze(glob, argv, verb):
    p = _parser(verb, f"{verb.title()} all processes of containers.")
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
    return _each(glob, args.containers, act, verb)


def cmd_wait(glob, argv):
    p = _parser("wait", "Block until containers stop; print their exit codes.")
    p.add_argument("containers", nargs="+")
    args = p.parse_args(argv)
    mgr = _manager(glob)
    for ref in args.containers:
        code = mgr.wait(ref)
        _out("unknown" if code is None else str(code))
    return 0


def cmd_attach(glob, argv):
    p = _parser("attach", "Show a running container's output until it ends (no stdin).")
    p.add_argument("container")
    args = p.parse_args(argv)
    mgr = _manager(glob)
    record = mgr.resolve(args.container)
    if mgr.live(record) not in ("running", "paused"):
        raise _Usage("you cannot attach to a stopped container: start it first")
    return _run_attached(mgr, record, start=False)


# ---------------------------------------------------------------- ps / logs / inspect


def cmd_ps(glob, argv):
    p = _parser("ps", "List containers (or those of a definition FILE).")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("file", nargs="?")
    args = p.parse_args(argv)
    mgr = _manager(glob)
    if args.file:
        from kago.manager.define import group
        return group.ps(mgr, args.file, env=_definition_env(args.env), out=_out)
    from kago.manager import format as F
    rows = [_ps_row(record, live, args.no_trunc)
            for record, live in mgr.list(all=args.all)]
    filters = _filters(args.filter)
    rows = [r for r in rows if _matches(r, filters)]
    if args.quiet:
        for r in rows:
            _out(r["ID"])
        return 0
    columns = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")
    fmt = args.format or "table"
    for line in F.formatted(fmt, rows, columns):
        _out(line)
    return 0


def _ps_row(record, live, no_trunc=False):
    import time

    from kago.manager import format as F
    return {"ID": record["id"] if no_trunc else record["id"][:12],
            "Image": record.get("image") or record["config"].get("rootfs") or "",
            "Command": F.command_text(record, trunc=not no_trunc),
            "RunningFor": F.human_duration(time.time() - record["created"]) + " ago",
            "CreatedAt": _local_time(record["created"]),
            "Status": F.status_text(record, live), "State": live,
            "Ports": F.ports_text(record), "Names": record["name"],
            "Labels": ",".join(f"{k}={v}" for k, v in (record["config"].get("labels") or {})
                               .items()),
            "Pid": (record.get("state") or {}).get("pid", 0) if live == "running" else 0}


def _local_time(ts):
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(ts))


def _filters(items):
    """-f KEY=VALUE for name, status, id and label (label=K or label=K=V)."""
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if key not in ("name", "status", "id", "label") or not eq:
            raise _Usage(f"invalid filter '{item}': use name=, status=, id= or label=")
        out.append((key, value))
    return out


def _matches(row, filters):
    labels = dict(pair.split("=", 1) if "=" in pair else (pair, "")
                  for pair in row["Labels"].split(",") if pair)
    for key, value in filters:
        if key == "name" and value not in row["Names"]:
            return False
        if key == "status" and row["State"] != value:
            return False
        if key == "id" and not row["ID"].startswith(value):
            return False
        if key == "label":
            name, eq, wanted = value.partition("=")
            if name not in labels or (eq and labels[name] != wanted):
                return False
    return True


def cmd_logs(glob, argv):
    p = _parser("logs", "Show a container's output.")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("container")
    args = p.parse_args(argv)
    from kago.manager import logs
    mgr = _manager(glob)
    record = mgr.resolve(args.container)
    path = mgr.paths.log(record["id"])
    tail = None
    if args.tail != "all":
        if not args.tail.lstrip("-").isdigit():
            raise _Usage(f"--tail {args.tail}: give a number or all")
        tail = max(int(args.tail), 0)
    since = _since(args.since) if args.since else None
    entries = logs.read(path, since=since, tail=tail)
    for entry in entries:
        _log_line(entry, args.timestamps)
    if args.follow:
        size = os.path.getsize(path) if os.path.exists(path) else 0

        def stopped():
            return mgr.live(mgr.records.load(record["id"])) not in ("running", "paused",
                                                                      "restarting")
        for entry in logs.follow(path, stopped, interval=0.1, offset=size):
            _log_line(entry, args.timestamps)
    return 0


def _log_line(entry, timestamps):
    stream = sys.stdout if entry.get("stream") == "stdout" else sys.stderr
    if timestamps:
        stream.write(entry.get("time", "") + " ")
    stream.write(entry.get("log", ""))
    stream.flush()


def _since(text):
    """docker's --since: a duration (10m, 1h30m), RFC 3339, or a unix timestamp."""
    import time

    from kago.cli.oci import _duration
    seconds = _duration(text) if not text[:1].isdigit() or text[-1:].isalpha() else None
    if seconds is not None and not text.replace(".", "").isdigit():
        return time.time() - seconds
    try:
        return float(text)
    except ValueError:
        pass
    from kago.manager.logs import parse_timestamp
    try:
        return parse_timestamp(text)
    except ValueError:
        raise _Usage(f"--since {text}: use a duration (10m), RFC 3339 or a unix time") from None


def cmd_inspect(glob, argv):
    p = _parser("inspect", "Show containers' (or images') details as JSON.")
    p.add_argument("-f", "--format")
    p.add_argument("--type", choices=("container", "image"))
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    import json

    from kago.manager import format as F
    from kago.manager import views
    from kago.manager.errors import NoSuchContainer
    mgr = _manager(glob)
    docs = []
    for name in args.names:
        doc = None
        if args.type != "image":
            try:
                doc = views.inspect(mgr, mgr.resolve(name))
            except NoSuchContainer:
                if args.type == "container":
                    raise
        if doc is None:
            from kago.manager import images
            doc = images.inspect(mgr, name, args.type)
        docs.append(doc)
    if args.format:
        for doc in docs:
            _out(F.render(args.format, doc))
    else:
        _out(json.dumps(docs, indent=4))
    return 0


def cmd_top(glob, argv):
    p = _parser("top", "Show a container's processes (ps options allowed).")
    p.add_argument("container")
    p.add_argument("ps_args", nargs="...")
    args = p.parse_args(argv)
    from kago.manager import views
    mgr = _manager(glob)
    record = mgr.resolve(args.container)
    if mgr.live(record) not in ("running", "paused"):
        raise _Usage(f"container {record['name']} is not running")
    for line in views.top(mgr, record, args.ps_args):
        _out(line)
    return 0


def cmd_stats(glob, argv):
    p = _parser("stats", "Live resource usage: CPU, memory, pids, net, block I/O, PSI.")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--format")
    p.add_argument("containers", nargs="*")
    args = p.parse_args(argv)
    from kago.manager import format as F
    from kago.manager import views
    mgr = _manager(glob)
    while True:
        if args.containers:
            records = [mgr.resolve(c) for c in args.containers]
        else:
            records = [r for r, live in mgr.list() if live == "running"]
        rows = views.stats_rows(mgr, records, interval=0.5 if args.no_stream else 1.0)
        lines = F.formatted(args.format or "table", rows, views.STATS_COLUMNS)
        if not args.no_stream:
            sys.stdout.write("\033[2J\033[H")
        for line in lines:
            _out(line)
        sys.stdout.flush()
        if args.no_stream:
            return 0


def cmd_exec(glob, argv):
    p = _parser("exec", "Run a command in a running container.")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("container")
    p.add_argument("command", nargs="...")
    args = p.parse_args(argv)
    if not args.command:
        raise _Usage("exec needs a command to run in the container")
    from kago.manager import execs
    return execs.run(_manager(glob), args.container, args.command, tty=args.tty,
                     user=args.user, workdir=args.workdir, env=args.env, detach=args.detach)


# ---------------------------------------------------------------- images


def _images_cmd(name):
    def handler(glob, argv):
        from kago.manager import images
        return getattr(images, "cmd_" + name)(_manager(glob), argv, _parser, _out)
    return handler


def cmd_commit(glob, argv):
    return _images_cmd("commit")(glob, argv)


def cmd_export(glob, argv):
    return _images_cmd("export")(glob, argv)


# ---------------------------------------------------------------- network / system


def cmd_network(glob, argv):
    from kago.manager import networks
    return networks.command(_manager(glob), argv, _parser, _out)


def cmd_system(glob, argv):
    if not argv or argv[0] not in ("prune", "info", "supervisor"):
        raise _Usage("system: use prune, info or supervisor")
    if argv[0] == "info":
        return cmd_info(glob, argv[1:])
    if argv[0] == "supervisor":
        return _supervisor(glob, argv[1:])
    p = _parser("system prune", "Remove stopped containers, dangling images, unused layers.")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("-a", "--all", action="store_true",
                   help="remove all unused images, not just dangling ones")
    args = p.parse_args(argv[1:])
    if not args.force and not _confirm(_PRUNE_WARNING.format(
            images="all images without at least one container associated to them"
            if args.all else "all dangling images")):
        return 0
    mgr = _manager(glob)
    done = mgr.prune(all_images=args.all)
    _out("Deleted Containers:" if done["containers"] else "No stopped containers")
    for record in done["containers"]:
        _out(record["id"])
    for what in done["orphans"]:
        _out(f"Removed orphaned {what}")
    if done["images"]:
        _out("Deleted Images:")
        for what in done["images"]:
            _out(f"deleted: {what}")
    for error in done["errors"]:
        print(f"kago: system prune: {error}", file=sys.stderr)
    return 1 if done["errors"] else 0


_PRUNE_WARNING = """WARNING! This will remove:
  - all stopped containers
  - {images}
  - what no container owns any more (attachments, layers, ID ranges of dead commands)

Are you sure you want to continue? [y/N] """


def _confirm(question):
    """docker's prompt: only y or yes (any case) goes on; no terminal input is a no."""
    sys.stdout.write(question)
    sys.stdout.flush()
    answer = sys.stdin.readline() if sys.stdin else ""
    return answer.strip().lower() in ("y", "yes")


def _supervisor(glob, argv):
    """system supervisor [--stop]: the shared supervisor's pid and what it watches."""
    from kago.manager import supervisor
    mgr = _manager(glob)
    conn = supervisor.connect(mgr.paths, spawn=False)
    if conn is None:
        _out("no supervisor is running")
        return 0
    try:
        if "--stop" in argv:
            conn.request("quit", timeout=5)
            _out("supervisor stopped (containers keep running)")
        else:
            reply = conn.request("ping", timeout=5)
            idle = reply.get("idle_timeout")
            _out(f"pid {reply['pid']}, watching {len(reply['watching'])} container(s)"
                 + (f", exits after {idle:g} s with nothing to do" if idle is not None else ""))
            for cid, count in sorted((reply.get("dropped") or {}).items()):
                _out(f"{cid[:12]}: {count} log lines dropped (its log could not be written)")
    finally:
        conn.close()
    return 0


def cmd_version(glob, argv):
    mgr = _manager(glob)
    runtime = mgr.runtime()
    _out(f"kago version {__version__}")
    _out(f"runtime: {runtime.name} ({runtime.path})")
    from kago import OCI_VERSION
    _out(f"OCI runtime spec: {OCI_VERSION}")
    return 0


def cmd_info(glob, argv):
    import platform
    mgr = _manager(glob)
    counts = {"running": 0, "paused": 0, "exited": 0, "created": 0, "restarting": 0}
    containers = mgr.list(all=True)
    for _record, live in containers:
        counts[live] = counts.get(live, 0) + 1
    from kago.manager import supervisor
    from kago.runtime import container
    layout = container.layout()
    _out(f"Containers: {len(containers)}")
    _out(f" Running: {counts['running']}")
    _out(f" Paused: {counts['paused']}")
    _out(f" Stopped: {counts['exited'] + counts['created']}")
    if os.path.isdir(mgr.paths.storage()):
        _out(f"Images: {len(mgr.store.images())}")
        _out(f"Storage Driver: {mgr.store.driver}")
    else:
        _out("Images: 0")
    _out(f"Cgroup Version: {layout.mode}")
    _out(f"Runtime: {mgr.runtime().name}")
    _out(f"Kernel Version: {platform.release()}")
    _out(f"Kago Root Dir: {mgr.paths.root}")
    _out(f"Kago Run Dir: {mgr.paths.runroot}")
    pid = supervisor.running_pid(mgr.paths)
    _out(f"Supervisor: {'pid ' + str(pid) if pid else 'not running'}")
    return 0


# ---------------------------------------------------------------- definitions


def _definition_env(items):
    from kago.manager import config as C
    return dict(item.split("=", 1) for item in C.parse_env(items, "-e"))


def _definition_verb(name, description, extra=None):
    def handler(glob, argv):
        p = _parser(name, description)
        p.add_argument("-e", "--env", action="append", default=[])
        if extra:
            extra(p)
        p.add_argument("file")
        args = p.parse_args(argv)
        from kago.manager.define import group
        fn = getattr(group, name)
        return fn(_manager(glob), args.file, env=_definition_env(args.env), out=_out,
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


# ---------------------------------------------------------------- demo


def demo(argv):
    opts = _parse_demo(argv)
    runtime = opts.runtime or default_runtime()
    if runtime is None:
        print("kago: kago-oci not found next to the Python interpreter nor on PATH; "
              "pass --runtime PATH", file=sys.stderr)
        return 127
    # Imported here: building an image is the demo's business, not every kago command's.
    import shutil
    import tempfile

    from kago.testing import busybox

    workdir = tempfile.mkdtemp(prefix="kago-demo-")
    try:
        bundle = busybox.build_bundle(os.path.join(workdir, "bundle"),
                                      args=["sh", "-c", DEMO_SCRIPT])
        status = _run(runtime, bundle)
    except (OSError, busybox.BusyboxError) as e:
        print(f"kago: demo: {_describe(e)}", file=sys.stderr)
        status = 1
    finally:
        if opts.keep:
            print(f"kago: demo bundle kept in {workdir}/bundle", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def _parse_demo(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="kago demo", description="Run the embedded busybox image through a runtime.")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary bundle directory and print its path")
    parser.add_argument("--runtime", metavar="PATH",
                        help="runc-compatible runtime to use (default: kago-oci)")
    return parser.parse_args(argv)


def default_runtime():
    """The kago-oci installed with this Python (venv), else the one on PATH, else None."""
    import shutil

    beside = os.path.join(os.path.dirname(sys.executable), "kago-oci")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("kago-oci")


def _run(runtime, bundle):
    """``RUNTIME run --bundle B ID`` in the foreground; return the container's exit status.

    ``run`` without ``-d`` creates, starts, waits for and deletes the container. If the runtime
    dies half-way it may leave state behind, so a quiet ``delete -f`` follows a failure.
    """
    import subprocess

    cid = "kago-demo-" + os.urandom(4).hex()
    try:
        status = subprocess.call([runtime, "run", "--bundle", os.fspath(bundle), cid])
    except OSError as e:  # the runtime itself is missing or not executable: a shell's 127/126
        print(f"kago: demo: runtime {_describe(e)}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126
    if status != 0:
        subprocess.call([runtime, "delete", "-f", cid],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.geteuid() != 0:
            print("kago: demo: the default bundle needs root (rootless comes later)",
                  file=sys.stderr)
    return _exit_status(status)


def _describe(error):
    """One lower-case line naming the path, not Python's ``[Errno 2] …: '/x'``."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror.lower()}"
    return str(error)


def _exit_status(status):
    # subprocess reports death by signal N as -N; a shell would say 128+N.
    return 128 - status if status < 0 else status


VERBS = {
    "run": cmd_run, "create": cmd_create, "start": cmd_start, "stop": cmd_stop,
    "restart": cmd_restart, "kill": cmd_kill, "rm": cmd_rm, "ps": cmd_ps, "logs": cmd_logs,
    "exec": cmd_exec, "attach": cmd_attach, "wait": cmd_wait, "inspect": cmd_inspect,
    "top": cmd_top, "stats": cmd_stats, "pause": cmd_pause, "unpause": cmd_unpause,
    "commit": cmd_commit, "export": cmd_export,
    "images": _images_cmd("images"), "import": _images_cmd("import"),
    "pull": _images_cmd("pull"), "push": _images_cmd("push"), "tag": _images_cmd("tag"),
    "rmi": _images_cmd("rmi"), "save": _images_cmd("save"), "load": _images_cmd("load"),
    "network": cmd_network, "system": cmd_system, "version": cmd_version, "info": cmd_info,
    "up": _definition_verb("up", "Start every container a definition file defines.",
                           _up_flags),
    "down": _definition_verb("down", "Stop and remove a definition's containers.",
                             _down_flags),
    "reload": _definition_verb("reload", "Apply a definition's changed limits to its running "
                                         "containers, without restarting them."),
    "archive": _definition_verb("archive", "Bootstrap and provision a definition's rootfs, "
                                           "save it as an image.", _archive_flags),
}


if __name__ == "__main__":
    sys.exit(main())
