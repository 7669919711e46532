"""cgroup v1: one directory per mounted hierarchy (cpu, memory, ..., name=systemd).

Kernel docs: Documentation/admin-guide/cgroup-v1/cgroups.rst (hierarchies, cgroup.procs),
cgroup-v1/cpusets.rst (a new cpuset starts with empty cpuset.cpus and cpuset.mems, and
"cannot attach a task to a cpuset with no CPUs or memory nodes": ENOSPC) and
cgroup-v1/freezer-subsystem.rst (freezer.state THAWED / FREEZING / FROZEN).
"""

import errno
import os
import time

from kago.errors import CgroupError

from .common import Manager, read_text, write_text

# The hierarchies whose tree best answers "which processes are in the container", in order.
_PIDS_SOURCES = ("pids", "freezer")


class V1Manager(Manager):
    """A container cgroup on a v1-only host (the protocol is in the package docstring)."""

    __slots__ = ()
    mode = "v1"

    def _prepare(self, name, d):
        if "cpuset" in name.split(","):
            fill_cpuset(d)

    def _pids_dir(self):
        for controller in _PIDS_SOURCES:
            d = self._find(controller)
            if d is not None:
                return d
        return next(iter(self.dirs.values()))

    def can_freeze(self):
        return self._find("freezer") is not None

    def freeze(self, timeout=2.0):
        freeze_dir(self.path_in("freezer"), timeout)

    def thaw(self):
        thaw_dir(self.path_in("freezer"))

    def frozen(self):
        return self.can_freeze() and freezer_state(self.path_in("freezer")) == "FROZEN"


def fill_cpuset(d):
    """Copy cpuset.cpus/mems from the parent into ``d`` (and empty ancestors) where empty.

    The classic v1 gotcha: a new cpuset is created empty and refuses every task (ENOSPC) until
    both files are set. The walk stops at the first ancestor that has them (the root always does).
    """
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not read_text(f"{d}/{name}").strip():
            parent = os.path.dirname(d)
            fill_cpuset(parent)
            write_text(f"{d}/{name}", read_text(f"{parent}/{name}").strip())


def freezer_state(d):
    return read_text(d + "/freezer.state").strip()


def freeze_dir(d, timeout=2.0):
    """Write FROZEN and poll until the state reads FROZEN; thaw again and fail after ``timeout``.

    Every 25 polls it thaws and re-freezes, as runc does: forks racing the freeze can leave a v1
    cgroup FREEZING for good (seen up to at least 5.4), and a fresh attempt gets through.
    """
    state = d + "/freezer.state"
    deadline = time.monotonic() + timeout
    write_text(state, "FROZEN")
    polls = 0
    while freezer_state(d) != "FROZEN":
        if time.monotonic() >= deadline:
            write_text(state, "THAWED")
            raise CgroupError(state, f"still freezing after {timeout}s, thawed again",
                              errno.EBUSY)
        polls += 1
        if polls % 25 == 0:
            write_text(state, "THAWED")
            write_text(state, "FROZEN")
        time.sleep(0.001)


def thaw_dir(d):
    write_text(d + "/freezer.state", "THAWED")

