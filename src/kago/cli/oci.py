"""``kago-oci``: the runc-compatible command line.

One short function per command: parsed args -> runtime call -> output; errors become one
``level=error`` log line (to ``--log`` in text or JSON, where containerd looks for it) plus a
line on stderr, and exit status 1; ``run`` and ``exec`` exit with the container's status.
Each command imports only what it uses: start-up is kago-oci's latency.
"""

import os
import sys

from kago import log
from kago.version import OCI_VERSION, __version__
from kago.cli.args import parse_command, parse_global
from kago.errors import KagoError, UsageError

USAGE = """kago-oci: a runc-compatible OCI container runtime

usage: kago-oci [global options] command [command options] [arguments...]

commands: create, start, state, kill, delete, run, exec, ps, list, pause, resume,
          update, events, features, spec, checkpoint, restore

global options: --root DIR (default /run/kago; rootless: $XDG_RUNTIME_DIR/kago), --log FILE,
                --log-format text|json, --debug, --systemd-cgroup, --rootless true|false|auto,
                --criu PATH (checkpoint/restore; default: criu on PATH), --version
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = None
    try:
        glob, command, rest = parse_global(argv)
        log.configure(glob.log, glob.log_format or "text", bool(glob.debug))
        if glob.version:
            return _print(f"kago-oci version {__version__}\nspec: {OCI_VERSION}")
        if glob.help or command is None:
            return _print(USAGE)
        if glob.systemd_cgroup:
            raise UsageError("--systemd-cgroup is not supported by kago-oci yet: "
                             "use the cgroupfs driver (omit the flag)")
        if glob.rootless not in (None, "auto", "true", "false"):
            raise UsageError(f"invalid --rootless value {glob.rootless!r}: "
                             "use true, false or auto")
        args = parse_command(command, rest)
        if args.help:
            return _print(USAGE)
        code = COMMANDS[command](glob, args) or 0
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_gone()
    except KagoError as e:
        return _fail(command, e)
    except OSError as e:  # a system call outside the runtime's own checks: still one line
        from kago.errors import describe
        return _fail(command, KagoError(describe(e)))
    except KeyboardInterrupt:
        return 130


def _reader_gone():
    """stdout's reader left (``kago-oci events | head``): not an error. stdout goes to
    /dev/null so the launcher's final flush has nowhere to fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    except OSError:
        pass
    return 0


def _fail(command, err):
    prefix = f"{command} failed: " if command in ("create", "run", "exec") else ""
    msg = prefix + str(err)
    log.error(msg)
    if not log.logs_to_stderr():
        os.write(2, (msg + "\n").encode())
    if command == "exec" and not isinstance(err, UsageError):
        return 255  # runc: an exec that fails is told apart from the program's own status
    return getattr(err, "exit_code", 1)


def _print(text):
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _store(glob):
    from kago.runtime.store import Store
    if glob.root:
        return Store(glob.root)
    from kago.host.rootless import default_root
    return Store(default_root())  # /run/kago, or the user's $XDG_RUNTIME_DIR/kago rootless


def _options(glob, args, **extra):
    from kago.host.rootless import rootless
    from kago.runtime.options import Options
    return Options(no_pivot=bool(args.no_pivot), pid_file=args.pid_file,
                   console_socket=args.console_socket, preserve_fds=args.preserve_fds or 0,
                   detach=bool(args.detach), no_new_keyring=bool(args.no_new_keyring),
                   notify_socket=os.environ.get("NOTIFY_SOCKET") or None,
                   rootless=rootless(glob.rootless), **extra)


def _bundle(args):
    return os.path.abspath(args.bundle or ".")


# --- commands -------------------------------------------------------------------------------

def cmd_create(glob, args):
    from kago.runtime import container
    container.create(_store(glob), args.id, _bundle(args), _options(glob, args))


def cmd_run(glob, args):
    from kago.runtime import container
    return container.run(_store(glob), args.id, _bundle(args), _options(glob, args))


def cmd_start(glob, args):
    from kago.runtime import container
    container.start(_store(glob), args.id, notify_socket=os.environ.get("NOTIFY_SOCKET") or None)


def cmd_state(glob, args):
    from kago import jsonio
    from kago.runtime import container
    return _print(jsonio.dumps(container.state(_store(glob), args.id), indent=2))


def cmd_kill(glob, args):
    from kago.oci.names import parse_signal
    from kago.runtime import container
    sig = parse_signal(args.signal or "SIGTERM")
    container.kill(_store(glob), args.id, sig, all_processes=bool(args.all))


def cmd_delete(glob, args):
    from kago.runtime import container
    container.delete(_store(glob), args.id, force=bool(args.force))


def cmd_exec(glob, args):
    from kago.runtime import exec as ex
    from kago.runtime.options import Options
    store = _store(glob)
    record = store.load(args.id)
    if args.process:
        proc = ex.load_process(args.process)
    elif args.rest:
        proc = ex.process_from_args(record, args.rest, cwd=args.cwd, env=args.env or (),
                                    user=args.user, caps=args.cap or (), tty=bool(args.tty),
                                    no_new_privs=args.no_new_privs)
    else:
        raise UsageError("nothing to run: give a command or --process FILE")
    if args.gids:
        proc.setdefault("user", {}).setdefault("additionalGids", [])
        proc["user"]["additionalGids"] += [int(g) for g in args.gids]
    opts = Options(pid_file=args.pid_file, console_socket=args.console_socket,
                   preserve_fds=args.preserve_fds or 0, detach=bool(args.detach))
    return ex.execute(store, args.id, proc, opts)


def cmd_ps(glob, args):
    from kago.runtime import container
    pids = container.pids(_store(glob), args.id)
    if args.format == "json":
        from kago import jsonio
        return _print(jsonio.dumps(pids))
    if args.format != "table":
        raise UsageError(f"invalid format option: {args.format}")
    import subprocess
    out = subprocess.run(["ps"] + (args.rest or ["-ef"]), capture_output=True, text=True)
    lines = out.stdout.splitlines()
    if not lines:
        raise KagoError(f"ps: {out.stderr.strip()}")
    col = lines[0].split().index("PID")
    wanted = {str(p) for p in pids}
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split()[col:col + 1][0] in wanted]
    return _print("\n".join(keep))


def cmd_list(glob, args):
    from kago.runtime import container
    states = container.list_states(_store(glob))
    if args.quiet:
        return _print("\n".join(s["id"] for s in states)) if states else 0
    if args.format == "json":
        from kago import jsonio
        return _print(jsonio.dumps(states))
    if args.format != "table":
        raise UsageError(f"invalid format option: {args.format}")
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"] or "")
             for s in states]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return _print("\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                            for r in rows))


def cmd_pause(glob, args):
    from kago.runtime import container
    container.pause(_store(glob), args.id)


def cmd_resume(glob, args):
    from kago.runtime import container
    container.resume(_store(glob), args.id)


def cmd_features(glob, args):
    from kago import jsonio
    from kago.errors import CgroupError
    from kago.linux.cgroups import detect
    from kago.plan.features import features
    try:
        layout = detect().mode
    except CgroupError:
        layout = "none"
    return _print(jsonio.dumps(features(cgroup_host=layout), indent=2))


def cmd_spec(glob, args):
    from kago import jsonio
    from kago.oci.defaults import default_spec
    path = os.path.join(args.bundle or ".", "config.json")
    if os.path.exists(path):
        raise KagoError("File config.json exists. Remove it first")
    with open(path, "w") as f:
        # --seccomp (kago's own flag): add the default seccomp profile; without it the
        # document is runc's
        from kago.host.facts import cgroup2_unified
        spec = default_spec(rootless=bool(args.rootless), seccomp=bool(args.seccomp),
                            cgroup_ns=cgroup2_unified())  # runc's, on a pure v2 host
        f.write(jsonio.dumps(spec, indent=2) + "\n")


def cmd_update(glob, args):
    from kago.runtime import resources as res
    text = None
    if args.resources == "-":
        text = sys.stdin.buffer.read()
    elif args.resources:
        try:
            with open(args.resources, "rb") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"open {args.resources}: {os.strerror(e.errno).lower()}") from None
    flags = {runc: getattr(args, dest) for dest, runc in res.UPDATE_FLAGS.items()}
    res.update(_store(glob), args.id, res.resources_from(text, flags))


def cmd_events(glob, args):
    import gc
    gc.enable()  # the launcher turns it off for short commands; this one may run for days
    from kago import jsonio
    from kago.runtime import resources as res
    store = _store(glob)
    if args.stats:
        return _print(jsonio.dumps(res.stats_event(store, args.id)))

    def emit(event):
        sys.stdout.write(jsonio.dumps(event) + "\n")
        sys.stdout.flush()
    res.events(store, args.id, parse_duration(args.interval or "5s"), emit)


def _criu_options(args, leave_running=False):
    from kago.runtime.criu import CriuOptions
    if args.lazy_pages:
        raise UsageError("--lazy-pages is not supported by kago-oci: it needs CRIU's lazy-pages "
                         "daemon and a page server, which kago-oci does not run")
    # runc's default image path: ./checkpoint
    return CriuOptions(args.image_path or os.path.join(os.getcwd(), "checkpoint"),
                       work_path=args.work_path, leave_running=leave_running,
                       tcp_established=bool(args.tcp_established),
                       ext_unix_sk=bool(args.ext_unix_sk), shell_job=bool(args.shell_job),
                       file_locks=bool(args.file_locks),
                       manage_cgroups_mode=args.manage_cgroups_mode,
                       empty_ns=args.empty_ns or (), auto_dedup=bool(args.auto_dedup))


def cmd_checkpoint(glob, args):
    from kago.runtime import checkpoint, criu
    for flag, given in (("--page-server", args.page_server), ("--status-fd", args.status_fd),
                        ("--parent-path", args.parent_path)):
        if given:
            raise UsageError(f"{flag} is not supported by kago-oci (it belongs to pre-dump "
                             "and lazy-pages migration)")
    opts = _criu_options(args, leave_running=bool(args.leave_running))
    criu_bin = criu.find(glob.criu)
    if args.pre_dump:
        checkpoint.check_pre_dump(criu_bin)
    checkpoint.checkpoint(_store(glob), args.id, opts, criu_bin, pre_dump=bool(args.pre_dump))


def cmd_restore(glob, args):
    from kago.runtime import checkpoint, criu
    opts = _criu_options(args)
    criu_bin = criu.find(glob.criu)
    store = _store(glob)
    record = checkpoint.restore(store, args.id, _bundle(args), opts, criu_bin,
                                _options(glob, args), console_socket=args.console_socket)
    if args.detach:
        return 0
    return checkpoint.wait_and_delete(store, args.id, record["pid"])


_DURATION_UNITS = (("ns", 1e-9), ("us", 1e-6), ("\u00b5s", 1e-6), ("\u03bcs", 1e-6),
                   ("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def parse_duration(text):
    """Go-style durations as runc takes them (time.ParseDuration): "5s", "500ms", "1m30s",
    "1.5h", "100us"; a plain number is seconds."""
    value = _duration(text.strip())
    if value is None or value <= 0:
        raise UsageError(f'invalid interval "{text}": use a positive duration like 5s')
    return value


def _duration(text):
    """Seconds, or None when ``text`` is not a duration."""
    if _is_decimal(text):
        return float(text)
    total, rest = 0.0, text
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isascii() and rest[i].isdigit() or rest[i] == "."):
            i += 1
        number, rest = rest[:i], rest[i:]
        unit = next((u for u in _DURATION_UNITS if rest.startswith(u[0])), None)
        if not _is_decimal(number) or unit is None:
            return None
        rest = rest[len(unit[0]):]
        total += float(number) * unit[1]
    return total if text else None


def _is_decimal(text):
    whole, _dot, frac = text.partition(".")
    return bool(whole or frac) and all(c.isascii() and c.isdigit() for c in whole + frac)


COMMANDS = {"create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state,
            "kill": cmd_kill, "delete": cmd_delete, "exec": cmd_exec, "ps": cmd_ps,
            "list": cmd_list, "pause": cmd_pause, "resume": cmd_resume,
            "features": cmd_features, "spec": cmd_spec, "update": cmd_update,
            "events": cmd_events, "checkpoint": cmd_checkpoint, "restore": cmd_restore}

