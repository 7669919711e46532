"""The rootless manager's bookkeeping (kago.manager.rootless) on temp roots: when the holder
is still needed and stats' row without a cgroup."""

import fcntl
import os

from kago.manager import rootless
from kago.manager.paths import Paths


def _paths(tmp_path):
    return Paths(str(tmp_path / "root"), str(tmp_path / "run"))


def test_in_use_while_a_record_exists_or_a_supervisor_holds_its_lock(tmp_path):
    paths = _paths(tmp_path)
    assert not rootless.in_use(paths)
    os.makedirs(paths.runroot)
    lock = os.open(os.path.join(paths.runroot, "supervisor.lock"), os.O_RDWR | os.O_CREAT)
    try:
        assert not rootless.in_use(paths)  # the file alone: no supervisor
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert rootless.supervisor_alive(paths)
        assert rootless.in_use(paths)
        assert not rootless.in_use(paths, supervisor=False)
    finally:
        os.close(lock)
    os.makedirs(os.path.join(paths.containers(), "abc"))
    assert rootless.in_use(paths, supervisor=False)


def test_release_without_a_holder_record_does_nothing(tmp_path):
    paths = _paths(tmp_path)
    assert rootless.release(paths) is False
    assert not os.path.exists(paths.runroot)


def test_stats_row_without_a_cgroup():
    from kago.manager.views import STATS_COLUMNS, unavailable_row
    row = unavailable_row({"id": "a" * 64, "name": "web", "network": {"mode": "host"},
                           "state": {}}, "no cgroup")
    assert set(STATS_COLUMNS) <= set(row)
    assert row["CPUPerc"] == "--" and row["PIDs"] == "--" and row["NetIO"] == "--"
    assert row["Unavailable"] == "no cgroup"
