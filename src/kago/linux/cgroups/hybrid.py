"""Hybrid: every v1 hierarchy (name=systemd included) plus a directory in the cgroup2 tree.

systemd's legacy layout mounts the controllers as v1 under /sys/fs/cgroup/<controller> and a
controller-less cgroup2 tree at /sys/fs/cgroup/unified. The container joins both: v1 for the
limits, cgroup2 for what the core gives every cgroup there (PSI files, cgroup.events,
cgroup.kill, a recursive process list that cannot miss a hierarchy).

Kernel docs: Documentation/admin-guide/cgroup-v2.rst ("Issues with v1 and Rationales for v2",
"Deprecated v1 Core Features"), Documentation/accounting/psi.rst ("Cgroup2 interface") and the
v1 docs named in v1.py.

The freezer is the v1 one when it is mounted: it is what runc and a v1-minded reader look at
(freezer.state), and the two freezers must not disagree about one container.
"""

from . import v1, v2tree
from .common import Manager
from .mountinfo import UNIFIED


class HybridManager(Manager):
    """A container cgroup on a hybrid host (the protocol is in the package docstring)."""

    __slots__ = ()
    mode = "hybrid"

    def _prepare(self, name, d):
        if "cpuset" in name.split(","):
            v1.fill_cpuset(d)

    def _pids_dir(self):
        return self.dirs[UNIFIED]

    def _kill_file(self):
        return self.dirs[UNIFIED] + "/cgroup.kill"

    def can_freeze(self):
        return True  # the cgroup2 core freezer is the fall-back when no v1 freezer is mounted

    def freeze(self, timeout=2.0):
        d = self._find("freezer")
        if d is not None:
            v1.freeze_dir(d, timeout)
        else:
            v2tree.freeze_dir(self.dirs[UNIFIED], timeout)

    def thaw(self):
        d = self._find("freezer")
        if d is not None:
            v1.thaw_dir(d)
        else:
            v2tree.thaw_dir(self.dirs[UNIFIED])

    def frozen(self):
        d = self._find("freezer")
        if d is not None:
            return v1.freezer_state(d) == "FROZEN"
        return v2tree.is_frozen(self.dirs[UNIFIED])
