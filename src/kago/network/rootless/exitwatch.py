"""What tells a holder's slirp4netns that the holder is gone: the fd it gets as ``--exit-fd``.

slirp4netns exits when its exit fd hangs up (POLLHUP). A pidfd of the holder does that once
the holder is reaped, but only on Linux 6.9 and later; before (Debian 12's 6.1, Ubuntu
22.04's 5.15) a pidfd only turns readable (POLLIN) when its process ends and never hangs
up, so a slirp4netns watching one outlives its holder, keeping the holder's network
namespace alive through its tap device. ``pidfd_hangs_up`` says which: yes from 6.9 on,
else it asks the running kernel (a child forked, reaped and polled, once per process: a
vendor kernel may carry the change back).

Where it does not, the exit fd is the read end of a pipe whose only write end a
**watcher** holds: ``tail --pid=HOLDER -f /dev/null`` (coreutils), which ends within its
1 s poll once the holder is gone and reaped, and the pipe hangs up with it. The watcher
runs detached, as slirp4netns's user, and ``stop`` ends it by pid (checked to be that
holder's watcher, not a pid reused since) when slirp4netns is disconnected first.
"""

import functools
import os
import select
import shutil
import signal
import subprocess

from kago.network.rootless import command
from kago.network.rootless.errors import RootlessNetError

TAIL = "/usr/bin/tail"


HANGS_UP_SINCE = (6, 9)     # Linux's pidfd_poll reports POLLHUP for a reaped process


def release(text):
    """(major, minor) of a kernel release string ("6.1.0-57-amd64"), or None."""
    parts = text.split(".", 2)
    try:
        return int(parts[0]), int("".join(c for c in parts[1].split("-")[0] if c.isdigit()))
    except (IndexError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def pidfd_hangs_up():
    """Whether this kernel's pidfds hang up (POLLHUP) once their process is reaped."""
    known = release(os.uname().release)
    if known is not None and known >= HANGS_UP_SINCE:
        return True
    return probe()


def probe():
    """pidfd_hangs_up asked of the kernel: a child forked, reaped, its pidfd polled (6-21 ms
    on a loaded 2-core host: the child's turn to run and exit)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    fd = os.pidfd_open(pid)
    try:
        os.waitpid(pid, 0)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return any(events & select.POLLHUP for _, events in poller.poll(0))
    finally:
        os.close(fd)


def argv(holder_pid):
    return [shutil.which("tail") or TAIL, f"--pid={holder_pid}", "-f", "/dev/null"]


def start(holder_pid, user=None):
    """A watcher of ``holder_pid``: (the pipe's read end, for slirp4netns's --exit-fd; the
    watcher's Popen). ``user``: (uid, gid) it runs as, for a root caller acting for a user.
    Its starter ends it through the Popen if what it is for fails (by pid, ``stop``, it may
    not be recognisable yet: just after its exec its command line can read empty)."""
    read_end, write_end = os.pipe()
    extra = {} if user is None else {"user": user[0], "group": user[1], "extra_groups": []}
    try:
        proc = subprocess.Popen(argv(holder_pid), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                pass_fds=(write_end,), start_new_session=True, **extra)
    except OSError as e:
        os.close(read_end)
        raise RootlessNetError(f"cannot start {argv(holder_pid)[0]} to watch holder pid "
                               f"{holder_pid} for slirp4netns: {e.strerror or e}") from None
    finally:
        os.close(write_end)
    return read_end, proc


def is_watcher(pid, holder_pid):
    """Whether ``pid`` is the watcher of ``holder_pid``: not a pid reused since."""
    return command.runs(pid, "tail", f"--pid={holder_pid}")


def stop(pid, holder_pid):
    """Ends the watcher ``pid`` of ``holder_pid`` if it still runs (SIGTERM by pid; for
    another process than the one that started it)."""
    if pid and is_watcher(pid, holder_pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
