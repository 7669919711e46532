"""``kago run`` and ``kago create``; a container's output attached to this command line
(``run`` without -d, ``start -a``, ``attach``), the terminal of ``run -t`` (held by the
supervisor: cli/terminal.py) and the foreground runtime of ``run -i``."""

import os
import sys

from kago.cli.common import Usage, client, out, parser
from kago.cli.flags import _add_container_flags, add_run_flags, check_cidfile
from kago.cli.flags import container_definition, write_cidfile
from kago.cli.terminal import DEFAULT_DETACH_KEYS, detach_keys, not_a_tty, stdin_is_a_terminal


_PARSERS = {}


def verb_parser(verb):
    """``run``'s or ``create``'s parser, made once per process (~1 ms of add_argument
    calls): the run server makes them before it forks its children (cli/run_server.py)."""
    if verb not in _PARSERS:
        if verb == "run":
            p = parser("run", "Create and start a container.")
            add_run_flags(p)
        else:
            p = parser("create", "Create a container (prepared, not started).")
            _add_container_flags(p)
        _PARSERS[verb] = p
    return _PARSERS[verb]


def cmd_create(glob, argv):
    args = verb_parser("create").parse_args(argv)
    definition = container_definition(args)
    check_cidfile(args)
    cid = client(glob).create_from(definition).id
    write_cidfile(args, cid)
    out(cid)


def cmd_run(glob, argv):
    args = verb_parser("run").parse_args(argv)
    definition = container_definition(args)
    tty, interactive = definition.tty, definition.interactive
    if tty and interactive and not args.detach and not stdin_is_a_terminal():
        return not_a_tty()  # docker's check, before anything is made
    if args.detach and interactive and not tty:
        raise Usage("-i with -d: a detached container's stdin is not kept open (use -dit "
                    "for a terminal to attach to)")
    keys = detach_keys(args.detach_keys or DEFAULT_DETACH_KEYS)
    check_cidfile(args)
    mgr = client(glob).manager
    record = mgr.create(definition)  # the record, not a Container: no status read for it
    cid = record["id"]
    write_cidfile(args, cid)
    if tty and not args.detach:
        return run_terminal(mgr, record, keys, stdin=interactive)
    if interactive and not args.detach:
        return _run_foreground(mgr, record)
    if args.detach:
        try:
            mgr.start_created(record)
        except Exception:
            if definition.auto_remove:
                mgr.remove(cid, force=True)
            raise
        out(cid)
        return 0
    return run_attached(mgr, record, remove=definition.auto_remove)


def run_attached(mgr, record, remove=False, start=True):
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


def run_terminal(mgr, record, keys, stdin):
    """``run -t``: started under the supervisor, which holds its pty (its output is logged),
    with our terminal attached from the start (cli/terminal.py): the container's status when
    it ends, 0 when the detach keys leave it running. Without -i our keyboard is not its:
    Ctrl-C and SIGTERM go to the container (docker's sig-proxy)."""
    import signal

    from kago.cli import terminal
    from kago.errors import KagoError
    from kago.manager.definition import of
    cid = record["id"]
    remove = of(record).auto_remove

    def proxy(signum, _frame):
        try:
            mgr.runtime(record).kill(cid, signum)
        except KagoError:
            pass  # it ended meanwhile
    old = {} if stdin else {s: signal.signal(s, proxy) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = terminal.attach(mgr.paths, cid, keys, stdin=stdin,
                               start=lambda: mgr.start(cid, attached=True))
    except BaseException:
        if remove:
            mgr.remove(cid, force=True)
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if code is None:
        return 0  # detached: it runs on
    if remove:
        mgr.remove(cid, force=True)
    else:
        mgr.release_quietly(cid)  # the supervisor releases it as well (docker's run)
    return code


def _run_foreground(mgr, record):
    """-i without -t: the runtime runs in the foreground with our terminal (it proxies the pty:
    resize, Ctrl-C, exit status); no restart policy applies. The record names this process
    as its ``client``, and a connection to the supervisor stays open while it runs: if this
    process dies, the supervisor takes the container over (manager/adoption.py)."""
    import subprocess
    import time

    from kago.manager import events
    from kago.manager.journal import creator
    cid = record["id"]
    mgr.prepare(record)
    runtime = mgr.runtime(record)
    # "foreground": the supervisor leaves it to us while we live
    mgr.records.update(cid, lambda r: r["state"].update(status="running", foreground=True,
                                                        client=creator(),
                                                        started_at=time.time()))
    conn = _foreground_watch(mgr, cid)
    events.started(mgr.paths, record, attached=True)
    code = None
    try:
        code = subprocess.call(runtime.run_argv(cid, mgr.paths.bundle(cid)))
        code = 128 - code if code < 0 else code
    finally:
        mgr.records.update(cid, lambda r: r["state"].update(
            status="exited", exit_code=code, finished_at=time.time(), pid=0,
            foreground=False, fresh=False))
        events.died(mgr.paths, record, code)
        if conn is not None:
            conn.close()
        from kago.manager.definition import of
        if of(record).auto_remove:
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

