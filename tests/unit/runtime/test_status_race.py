"""A container's status while it ends: its cgroup can vanish between the liveness check and
the freezer read (ENOENT, or ENODEV for a cgroup removed while its file is read)."""

import errno

import pytest

from kago.errors import CgroupError
from kago.runtime import container


class _Cgroup:
    def __init__(self, error=None, frozen=False):
        self.error, self._frozen = error, frozen

    def can_freeze(self):
        return True

    def frozen(self):
        if self.error is not None:
            raise CgroupError("/sys/fs/cgroup/freezer/c1", "cannot read: no such device",
                              self.error)
        return self._frozen


def _status(monkeypatch, cgroup, alive):
    answers = iter(alive)
    monkeypatch.setattr(container.st, "alive", lambda pid, start: next(answers))
    monkeypatch.setattr(container, "cgroup_of", lambda record: cgroup)
    store = type("S", (), {"dir": staticmethod(lambda cid: "/nonexistent/" + cid)})()
    return container.status(store, {"id": "c1", "status": "running", "pid": 42,
                                    "kago": {"pid_start": 1}})


@pytest.mark.parametrize("err", [errno.ENODEV, errno.ENOENT])
def test_a_cgroup_removed_while_read_means_stopped_not_an_error(monkeypatch, err):
    assert _status(monkeypatch, _Cgroup(err), alive=[True, False]) == container.STOPPED


def test_a_frozen_cgroup_is_paused_and_a_live_one_running(monkeypatch):
    assert _status(monkeypatch, _Cgroup(frozen=True), alive=[True]) == container.PAUSED
    assert _status(monkeypatch, _Cgroup(), alive=[True, True]) == container.RUNNING


def test_another_cgroup_error_is_still_raised(monkeypatch):
    with pytest.raises(CgroupError):
        _status(monkeypatch, _Cgroup(errno.EACCES), alive=[True, True])
