"""runtime.rootless: the checks before an unprivileged create, and which limits count."""

import errno

import pytest

from kago.errors import CgroupError, SpecError
from kago.runtime import rootless


def test_asks_for_limits_ignores_device_rules():
    assert not rootless.asks_for_limits(None)
    assert not rootless.asks_for_limits({"devices": [{"allow": False, "access": "rwm"}]})
    assert rootless.asks_for_limits({"memory": {"limit": 1 << 26}})
    assert not rootless.asks_for_limits({"memory": {}, "pids": None})


def test_ranges_inside_the_subuids_or_the_own_id_pass():
    rootless._check_ranges("linux.uidMappings", [(0, 1001, 1), (1, 100000, 65536)], 1001,
                           [(100000, 65536)], "subuid", "alice")


def test_a_range_outside_names_the_users_ranges():
    with pytest.raises(SpecError, match=r"host IDs 165536-165545 are outside user alice's "
                                        r"/etc/subuid ranges \(100000-165535\)"):
        rootless._check_ranges("linux.uidMappings", [(0, 165536, 10)], 1001,
                               [(100000, 65536)], "subuid", "alice")


def test_no_entry_names_the_usermod_line():
    with pytest.raises(SpecError, match=r"usermod --add-subgids 300000-300099 alice"):
        rootless._check_ranges("linux.gidMappings", [(0, 300000, 100)], 1001, [], "subgid",
                               "alice")


class _Mgr:
    def __init__(self, err):
        self.err = err

    def create(self):
        raise CgroupError("/sys/fs/cgroup/memory/x", "cannot create: permission denied", self.err)

    def apply(self, resources):
        raise CgroupError("/sys/fs/cgroup/x/memory.max", "cannot open: permission denied",
                          self.err)


def test_a_denied_cgroup_is_skipped_and_other_errors_raise():
    assert rootless.create_cgroup(_Mgr(errno.EACCES), {}) is None
    rootless.apply_limits(_Mgr(errno.EPERM), {"memory": {"limit": 1}})
    with pytest.raises(CgroupError):
        rootless.create_cgroup(_Mgr(errno.EBUSY), {})
    with pytest.raises(CgroupError):
        rootless.apply_limits(_Mgr(errno.EINVAL), {"memory": {"limit": 1}})
