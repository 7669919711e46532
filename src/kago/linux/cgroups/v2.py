"""cgroup v2: one directory in the unified tree.

Kernel docs: Documentation/admin-guide/cgroup-v2.rst: "Core Interface Files" (cgroup.procs,
cgroup.events ``populated``/``frozen``, cgroup.freeze, cgroup.kill since 5.14) and "Processes"
(a process lives in exactly one cgroup; migrating it is a write to the target's cgroup.procs).
The freezer is part of the core, so it works even where no controller is enabled (the
controller-less cgroup2 tree of a hybrid host).

Enabling controllers in the ancestors' cgroup.subtree_control belongs to the resource layer,
not to placement.
"""

import errno
import time

from kago.errors import CgroupError

from .common import Manager, read_text, write_text
from .mountinfo import UNIFIED


class V2Manager(Manager):
    """A container cgroup on a v2-only host (the protocol is in the package docstring)."""

    __slots__ = ()
    mode = "v2"

    def _pids_dir(self):
        return self.dirs[UNIFIED]

    def _kill_file(self):
        return self.dirs[UNIFIED] + "/cgroup.kill"

    def can_freeze(self):
        return True

    def freeze(self, timeout=2.0):
        freeze_dir(self.dirs[UNIFIED], timeout)

    def thaw(self):
        thaw_dir(self.dirs[UNIFIED])

    def frozen(self):
        return is_frozen(self.dirs[UNIFIED])


def events(d):
    """cgroup.events as a dict: {"populated": "1", "frozen": "0"}."""
    pairs = (line.split(None, 1) for line in read_text(d + "/cgroup.events").splitlines())
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2}


def is_frozen(d):
    return events(d).get("frozen") == "1"


def freeze_dir(d, timeout=2.0):
    """Write 1 to cgroup.freeze and wait for cgroup.events to say ``frozen 1``.

    The write returns at once; tasks stop as they next leave the kernel, so the state is polled.
    """
    write_text(d + "/cgroup.freeze", "1")
    deadline = time.monotonic() + timeout
    while not is_frozen(d):
        if time.monotonic() >= deadline:
            thaw_dir(d)
            raise CgroupError(d + "/cgroup.events", f"not frozen after {timeout}s, thawed again",
                              errno.EBUSY)
        time.sleep(0.001)


def thaw_dir(d):
    write_text(d + "/cgroup.freeze", "0")
