"""OOM kills of a container cgroup: a counter to read, and a watch that wakes when one happens.

- v1: memory.oom_control has ``oom_kill N`` (since 4.13), and an eventfd registered through
  cgroup.event_control ("<eventfd> <fd of memory.oom_control>") is signalled on every OOM in
  the cgroup, and once more when the cgroup is removed
  (Documentation/admin-guide/cgroup-v1/memory.rst, section 9 "OOM Control" and 13
  "Memory thresholds"; cgroups.rst section 4 "Notification API").
- v2: memory.events has ``oom_kill N`` (cgroup-v2.rst, "memory.events"); the kernel signals
  changes with inotify/poll on that file, which would need ctypes (inotify) here, so the watch
  polls it instead. On hybrid the v1 memory controller answers.

``kago-oci events`` multiplexes ``OomWatch.fileno()`` (or its interval) with its stats timer;
``kago-oci state`` can tell an OOM-killed container by ``oom_count() > 0``.
"""

import errno
import os
import time

from kago.errors import CgroupError

from .files import read_text, write_text
from .mountinfo import UNIFIED
from .stats import parse_flat


def memory_source(manager):
    """(directory, file) holding the container's oom_kill counter."""
    d = manager._find("memory") if manager.mode != "v2" else None
    if d is not None:
        return d, "memory.oom_control"
    unified = manager.dirs.get(UNIFIED)
    if unified is None:
        raise CgroupError(manager.path, "no memory hierarchy is mounted", errno.ENOENT)
    return unified, "memory.events"


def oom_count(manager):
    """How many processes of the container the OOM killer has killed (cgroup and children)."""
    d, name = memory_source(manager)
    return parse_flat(read_text(f"{d}/{name}")).get("oom_kill", 0)


class OomWatch:
    """Waits for OOM kills: ``wait(timeout)`` returns how many happened since the last call.

    ``fileno()`` is an eventfd on v1 (readable on each OOM), None where it polls (v2); ``gone``
    turns true once the cgroup has been removed. Close it (or use ``with``) when done.
    """

    def __init__(self, manager, poll_interval=0.1):
        self.dir, self.file = memory_source(manager)
        self.poll_interval = poll_interval
        self.gone = False
        self._seen = oom_count(manager)
        self._efd = self._cfd = None
        if self.file == "memory.oom_control":
            self._register()

    def _register(self):
        """cgroup.event_control: "<eventfd> <memory.oom_control fd>" (both kept open)."""
        self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            self._cfd = os.open(f"{self.dir}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            write_text(f"{self.dir}/cgroup.event_control", f"{self._efd} {self._cfd}",
                       "cannot watch for oom")
        except BaseException:
            self.close()
            raise

    def fileno(self):
        return self._efd

    def count(self):
        try:
            return parse_flat(read_text(f"{self.dir}/{self.file}")).get("oom_kill", 0)
        except CgroupError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV):
                raise
            self.gone = True
            return self._seen

    def wait(self, timeout=None):
        """OOM kills since the last call, waiting up to ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            fresh = self._new_kills()
            if fresh or self.gone:
                return fresh
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return 0
            self._sleep(left)

    def _new_kills(self):
        now = self.count()
        fresh, self._seen = max(now - self._seen, 0), max(now, self._seen)
        if not fresh and self._efd is not None and not os.path.isdir(self.dir):
            self.gone = True  # the eventfd also fires on rmdir
        return fresh

    def _sleep(self, left):
        if self._efd is None:
            time.sleep(self.poll_interval if left is None else min(left, self.poll_interval))
            return
        import select  # only `events` waits; keep it off every other command's start-up
        poller = select.poll()
        poller.register(self._efd, select.POLLIN)
        # the OOM kill may land a moment after the notification: poll briefly, then re-read
        if poller.poll(None if left is None else max(int(left * 1000), 1)):
            try:
                os.eventfd_read(self._efd)
            except BlockingIOError:
                pass
            time.sleep(0.01)

    def close(self):
        for fd in (self._cfd, self._efd):
            if fd is not None:
                os.close(fd)
        self._efd = self._cfd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
