"""The user namespace holder behind idmapped mounts (idshift.make_userns): a clone(CLONE_VM |
CLONE_VFORK) child that runs libc's getpid and exits. Each test checks, by PID, that no holder is left:
no process, no zombie, nothing kept in idshift's list of unreaped holders."""

import os
import signal
import threading
import types

import pytest

from kago.errors import KernelError
from kago.kernel import userns as kernel_userns
from kago.storage import IdMap, StoreError, idshift, syscalls

SHIFTED = IdMap([(0, 100000, 65536)])


@pytest.fixture
def started(monkeypatch):
    """The holders started while the test runs (their PIDs are checked after it)."""
    holders = []
    start = syscalls.UsernsHolder.start

    def recording(holder):
        holders.append(holder)
        return start(holder)
    monkeypatch.setattr(syscalls.UsernsHolder, "start", recording)
    yield holders
    assert idshift._abandoned == []
    for holder in holders:
        assert_gone(holder.pid)


def assert_gone(pid):
    """``pid`` is neither running nor a zombie of ours."""
    assert pid > 0
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return
    # the PID was reused by some other process: it must not be our child in a new userns
    assert f"PPid:\t{os.getpid()}\n" not in status


def ns_id(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


def test_holder_gives_a_mapped_namespace_and_leaves_no_process(started, tmp_path):
    fd = idshift.make_userns(SHIFTED)
    try:
        assert ns_id(fd).startswith("user:[")
        assert ns_id(fd) != os.readlink("/proc/self/ns/user")
        assert len(started) == 1
        # the maps were written: an idmapped clone shows the host's root-owned dir as 100000
        mnt = idshift.idmapped_clone(str(tmp_path), fd)
        try:
            st = os.stat(f"/proc/self/fd/{mnt}")
            assert (st.st_uid, st.st_gid) == (100000, 100000)
        finally:
            os.close(mnt)
    finally:
        os.close(fd)


def test_each_map_its_own_namespace_and_the_cache_reuses_them(started):
    cache = idshift.UsernsCache(size=2)
    try:
        a = cache.get(SHIFTED)
        b = cache.get(IdMap([(0, 200000, 65536)]))
        assert ns_id(a) != ns_id(b)
        assert cache.get(SHIFTED) == a
        assert len(started) == 2
        cache.get(IdMap([(0, 300000, 65536)]))  # evicts the least recently used (b)
        assert len(cache._fds) == 2
    finally:
        cache.close()


def test_signal_mask_is_restored(started):
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    os.close(idshift.make_userns(SHIFTED))
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


def test_failure_after_the_clone_reaps_the_holder(started, monkeypatch):
    def interrupted(pid, uids, gids):
        raise KeyboardInterrupt
    monkeypatch.setattr(idshift.kernel_idmap, "write_maps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        idshift.make_userns(SHIFTED)
    assert len(started) == 1 and started[0].pid > 0


def test_a_map_the_kernel_refuses_is_an_error_and_leaves_nothing(started):
    # overlapping ranges (an IdMap refuses them itself; make_userns reads only these two)
    bad = types.SimpleNamespace(uids=[(0, 100000, 65536), (10, 300000, 5)], gids=[(0, 1, 1)])
    with pytest.raises(KernelError):
        idshift.make_userns(bad)
    assert len(started) == 1


def test_a_failed_clone_leaves_nothing(monkeypatch):
    monkeypatch.setattr(kernel_userns, "_clone", lambda *args: -1)  # the holder lives there
    with pytest.raises(KernelError, match="clone"):
        idshift.make_userns(SHIFTED)
    assert idshift._abandoned == []


def test_a_holder_reaped_by_someone_else_is_detected(started):
    holder = syscalls.UsernsHolder()
    pid = holder.start()
    os.waitpid(pid, 0)  # as a waitpid(-1) elsewhere in the process would
    assert idshift._reap(holder) is False


def test_reaped_by_someone_else_during_make_userns_is_an_error(started, monkeypatch):
    """The files opened through /proc/PID can only be trusted if PID was still our unreaped
    child afterwards: a reap that someone else made first fails the call, fd closed."""
    reap = idshift._reap

    def stolen(holder):
        os.waitpid(holder.pid, 0)
        return reap(holder)
    monkeypatch.setattr(idshift, "_reap", stolen)
    fds_before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(StoreError, match="reaped by someone else"):
        idshift.make_userns(SHIFTED)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


def test_reaped_before_the_maps_are_written(started, monkeypatch):
    write_maps = idshift.kernel_idmap.write_maps

    def stolen(pid, uids, gids):
        os.waitpid(pid, 0)
        write_maps(pid, uids, gids)
    monkeypatch.setattr(idshift.kernel_idmap, "write_maps", stolen)
    with pytest.raises(KernelError):
        idshift.make_userns(SHIFTED)


def test_concurrent_threads(started):
    errors, fds = [], []

    def work(base):
        try:
            for i in range(20):
                fds.append(idshift.make_userns(IdMap([(0, base + 65536 * i, 65536)])))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(100000 + 2_000_000 * t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len({ns_id(fd) for fd in fds}) == 80
    finally:
        for fd in fds:
            os.close(fd)
    assert len(started) == 80
