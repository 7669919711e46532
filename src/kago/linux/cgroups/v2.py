"""cgroup v2: one directory in the unified tree.

Kernel docs: Documentation/admin-guide/cgroup-v2.rst: "Core Interface Files" (cgroup.procs,
cgroup.events ``populated``/``frozen``, cgroup.freeze, cgroup.kill since 5.14) and "Processes"
(a process lives in exactly one cgroup; migrating it is a write to the target's cgroup.procs).
The freezer is part of the core, so it works even where no controller is enabled (the
controller-less cgroup2 tree of a hybrid host).

Delegation ("Enabling and Disabling", "No Internal Process Constraint" there): a controller is
usable in a cgroup only if its parent lists it in cgroup.subtree_control, and a cgroup that
holds processes cannot hand its children a domain controller (EBUSY). As runc's fs2 driver
(CreateCgroupPath), create() enables every controller the mount root hands down in each ancestor
below the root, quietly where the kernel refuses, so a container without limits still has its
memory.events, memory.stat, pids.current...; apply() enables what its writes need and fails on a
refusal, saying why. The root's own subtree_control is the host's: it is never written.
"""

from .common import Manager
from .mountinfo import UNIFIED
from .v2tree import check_domain, enable_controllers, freeze_dir, is_frozen, thaw_dir


class V2Manager(Manager):
    """A container cgroup on a v2-only host (the protocol is in the package docstring)."""

    __slots__ = ()
    mode = "v2"

    def _prepare(self, name, d):
        if enable_controllers(d, None, strict=False) is None:
            return  # right below the root: always a valid domain
        check_domain(d)

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
