"""Ending the rootless holder when the last user leaves (kago.runtime.holder.stop_if_unused and
kago.manager.rootless.release): a stand-in holder (a `sleep` of our own) on a temp runroot."""

import fcntl
import os
import subprocess
import time

import pytest

from kago.host import holder as H
from kago.manager import rootless
from kago.manager.paths import Paths
from kago.runtime import holder as L


def _stand_in(tmp_path, argv):
    """A runroot whose holder.pid names a live ``argv`` process; it is ended at the end."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    proc = subprocess.Popen(argv)
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{proc.pid}/exe").endswith("/unshare"):  # not yet exec'd
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with open(f"/proc/{proc.pid}/stat") as f:
            ticks, _ = H.start_time(f.read())
        (run / H.PID_FILE).write_text(H.pid_record(proc.pid, ticks))
        yield str(run), proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def runroot(tmp_path):
    yield from _stand_in(tmp_path, ["sleep", "60"])


@pytest.fixture
def foreign_runroot(tmp_path):
    """The recorded holder in a user namespace of its own, as the one a dead holder left a
    supervisor in looks from that supervisor."""
    yield from _stand_in(tmp_path, ["unshare", "--user", "sleep", "60"])


def _gone(proc):
    """Killed and reaped (the stop reaps a holder that is its child)."""
    return not os.path.exists(f"/proc/{proc.pid}")


def _holder(run):
    return L.Holder(run, L.lock(run), None)


def test_two_leaving_at_once_one_of_them_ends_the_holder(runroot):
    run, proc = runroot
    first, second = _holder(run), _holder(run)
    try:
        # the first tries while the second still holds its shared lock, then the second
        assert L.stop_if_unused(first, lambda: False) is False
        assert L.stop_if_unused(second, lambda: False) is True
    finally:
        os.close(first.lock_fd)
        os.close(second.lock_fd)
    assert _gone(proc)
    assert not os.path.exists(os.path.join(run, H.PID_FILE))


def test_needed_by_a_container_the_holder_stays_and_the_lock_is_given_up(runroot):
    run, proc = runroot
    leaving, other = _holder(run), _holder(run)
    os.close(other.lock_fd)
    try:
        assert L.stop_if_unused(leaving, lambda: True) is False
        assert L.alive(run) == proc.pid
        # given up: an exclusive lock from another open file is free
        probe = _holder(run)
        try:
            assert L.stop_if_unused(probe, lambda: False) is True
        finally:
            os.close(probe.lock_fd)
    finally:
        os.close(leaving.lock_fd)


def test_release_counts_a_supervisor_only_while_it_holds_its_lock(tmp_path, runroot):
    run, proc = runroot
    paths = Paths(str(tmp_path / "root"), run)
    supervisor = os.open(os.path.join(run, "supervisor.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(supervisor, fcntl.LOCK_EX)
        assert rootless.release(paths) is False  # a supervisor serves the root
    finally:
        os.close(supervisor)  # what an exiting supervisor does before its own release
    assert rootless.release(paths) is True
    assert _gone(proc)


def test_a_holder_of_another_user_namespace_is_not_ended(foreign_runroot):
    run, proc = foreign_runroot
    leaving = _holder(run)
    try:
        assert L.stop_if_unused(leaving, lambda: False) is False
    finally:
        os.close(leaving.lock_fd)
    assert L.alive(run) == proc.pid
