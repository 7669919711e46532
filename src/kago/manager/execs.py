"""``kago exec``: another process in a running container, through the runtime's ``exec``.

The runtime runs in the foreground with our stdin/stdout (and terminal with -t, which it
proxies: our size from the start and on resize, Ctrl-C, exit status; TERM=xterm as docker
sets it). Two things are the manager's: ``--user name`` becomes
numeric IDs from the container's own /etc/passwd (the runtime takes numbers only), and a
command that cannot be found or run exits 127/126 as with docker: the runtime's stderr passes
through us so its "executable file not found" line can be recognised.
"""


import subprocess
import sys

from kago.manager import events
from kago.manager.errors import StateError, command_error


def run(mgr, ref, command, tty=False, user=None, workdir=None, env=(), detach=False):
    record = mgr.resolve(ref)
    if mgr.live(record) != "running":
        raise StateError(f"container {record['name']} is not running")
    numeric = None
    if user:
        from kago.manager.rootfs_files import resolve_user
        u = resolve_user(f"/proc/{record['state']['pid']}/root", user, "--user")
        numeric = f"{u.uid}:{u.gid}"
    from kago.manager.definition.values import env as parse_env
    from kago.manager.definition.values import merge_env
    env = list(parse_env(env, "-e"))
    if tty and not _has_term(mgr, record):
        env = merge_env(["TERM=xterm"], env)  # docker's, for -t; a given TERM wins
    argv = mgr.runtime(record).exec_argv(record["id"], command, tty=tty, user=numeric,
                                          cwd=workdir, env=env, detach=detach)
    eid = events.exec_started(mgr.paths, record, command)
    if detach:
        return _detached(argv)
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    last = b""
    for line in proc.stderr:  # forwarded as it comes; the last line may be the runtime's
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
        last = line
    code = proc.wait()
    code = 128 - code if code < 0 else code
    events.container(mgr.paths, "exec_die", record, execID=eid, exitCode=code)
    if code == 255 and last:
        error = command_error(last.decode(errors="replace").strip())
        if error is not None:
            return error.exit_code
    return code





def _has_term(mgr, record):
    """Whether the container's own environment sets TERM (docker's exec keeps it then)."""
    import json
    try:
        with open(f"{mgr.paths.bundle(record['id'])}/config.json") as f:
            env = (json.load(f).get("process") or {}).get("env") or []
    except (OSError, ValueError):
        return False
    return any(str(item).startswith("TERM=") for item in env)


def _detached(argv):
    """``exec -d``: the runtime returns once the process runs, and the process keeps no stdio
    of ours (docker discards a detached exec's output): a pipe of ours in its hands would keep
    us reading until it ended. The runtime's own error comes from its --log, as JSON."""
    import tempfile
    from kago.manager.runtimes import _last_error
    with tempfile.NamedTemporaryFile(prefix="kago-exec-", suffix=".log") as log:
        argv = argv[:1] + ["--log", log.name, "--log-format", "json"] + argv[1:]
        code = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        message = _last_error(log.name) if code else ""
    code = 128 - code if code < 0 else code
    if message:
        sys.stderr.write(f"kago: {message}\n")
        error = command_error(message)
        if error is not None:
            return error.exit_code
    return code
