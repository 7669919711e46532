"""runtime.container.status while a container ends: its cgroup may go between the liveness
check and the freezer read (``kago ps`` or ``kago compose down`` during a teardown)."""

import os

from kago.host.procfs import start_time
from kago.runtime import container


def record(tmp_path):
    gone = str(tmp_path / "freezer" / "kago-ended")  # a cgroup directory that is not there
    return {"id": "x", "status": "running", "pid": os.getpid(),
            "kago": {"pid_start": start_time(os.getpid()),
                     "cgroup": {"mode": "v1", "path": "/kago-ended", "hierarchies": ["freezer"],
                                "dirs": [gone], "created": [gone]}}}


class Store:
    def __init__(self, tmp_path):
        self.base = tmp_path

    def dir(self, cid):
        return str(self.base / cid)


def test_a_cgroup_gone_with_the_last_process_is_stopped_not_an_error(tmp_path, monkeypatch):
    answers = iter([True, False])  # alive at the first check, gone at the second
    monkeypatch.setattr(container.st, "alive", lambda pid, start: next(answers))
    assert container.status(Store(tmp_path), record(tmp_path)) == container.STOPPED


def test_a_missing_cgroup_of_a_live_process_is_not_paused(tmp_path):
    assert container.status(Store(tmp_path), record(tmp_path)) == container.RUNNING
