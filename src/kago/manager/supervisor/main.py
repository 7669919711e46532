"""The supervisor's entry point (``python -c "...main()..." --root R --runroot RR`` as
client._spawn starts it, or ``python -m kago.manager.supervisor`` with the same arguments):
it takes RUNROOT/supervisor.lock for its lifetime (a second one exits at once), writes its
pid file and serves until idle.
"""

import errno
import fcntl
import os
import sys

from kago.manager.paths import Paths
from kago.manager.supervisor.server import Supervisor
from kago.manager.supervisor.state import say


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = dict(zip(argv[::2], argv[1::2]))
    paths = Paths(opts.get("--root"), opts.get("--runroot"))
    from kago.manager import perms
    perms.make_runroot(paths)
    lock = os.open(os.path.join(paths.runroot, "supervisor.lock"),
                   os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return 0  # another supervisor serves this root
        raise
    from kago import log
    log.configure(paths.supervisor_log())  # the runtime's own warnings go here too
    with open(paths.supervisor_pid() + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(paths.supervisor_pid() + ".tmp", paths.supervisor_pid())
    say(f"supervisor {os.getpid()} serving {paths.root}")
    try:
        Supervisor(paths, lock).serve()
    finally:
        try:
            os.unlink(paths.supervisor_pid())
        except FileNotFoundError:
            pass
        say(f"supervisor {os.getpid()} exits")
        os.close(lock)  # before the holder's release: see kago.manager.rootless.release
        _release_holder(paths)
    return 0


def _release_holder(paths):
    """A user's supervisor ends the user's holder as it exits, when no container and no
    command needs it (kago.manager.rootless)."""
    from kago.manager import rootless
    if not rootless.active():
        return
    try:
        if rootless.release(paths):
            say("holder stopped: no container left")
    except OSError as e:
        say(f"holder not stopped: {e}")
