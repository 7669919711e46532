"""``kago exec``: another process in a running container, through the runtime's ``exec``.

The runtime runs in the foreground with our stdin/stdout (and terminal with -t, which it
proxies: resize, Ctrl-C, exit status). Two things are the manager's: ``--user name`` becomes
numeric IDs from the container's own /etc/passwd (the runtime takes numbers only), and a
command that cannot be found or run exits 127/126 as with docker: the runtime's stderr passes
through us so its "executable file not found" line can be recognised.
"""


import subprocess
import sys

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
    from kago.manager import config as C
    argv = mgr.runtime(record).exec_argv(record["id"], command, tty=tty, user=numeric,
                                          cwd=workdir, env=C.parse_env(env), detach=detach)
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    last = b""
    for line in proc.stderr:  # forwarded as it comes; the last line may be the runtime's
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()
        last = line
    code = proc.wait()
    code = 128 - code if code < 0 else code
    if code == 255 and last:
        error = command_error(last.decode(errors="replace").strip())
        if error is not None:
            return error.exit_code
    return code



