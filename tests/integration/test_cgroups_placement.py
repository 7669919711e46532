"""Cgroup placement on the real kernel, as root: create, add, pids, freeze, kill, destroy.

Every test works under its own "/kago-test-<random>" top and leaves nothing behind: the `box`
fixture thaws, kills (by pid, bounded waits) and removes everything the test made, even when
the test fails, then checks that the top is gone from every hierarchy.
"""

import errno
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import note_ids
from kago.errors import CgroupError
from kago.linux.cgroups import Manager, detect, open_manager, read_proc_cgroup

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroups")]


def _until(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _cpu_ticks(pid):
    """(state letter, utime + stime) from /proc/PID/stat."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[11]) + int(fields[12])


def _kill_strays(top):
    """SIGKILL whatever is still in a test's own top (a fork racing add() lands in only some
    hierarchies, out of reach of cgroup.kill in the others); returns how many it found."""
    found = 0
    for dirpath, _dirs, _files in os.walk(top):
        try:
            pids = open(dirpath + "/cgroup.procs").read().split()
        except FileNotFoundError:
            continue
        for pid in pids:
            found += 1
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    return found


def _rmdir_tree(top):
    """Bottom-up rmdir of a test's own top directory (the safety net behind destroy())."""
    if _kill_strays(top):
        time.sleep(0.1)  # killed tasks leave their cgroups a moment later
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        try:
            os.rmdir(dirpath)
        except FileNotFoundError:
            pass


class Box:
    """What one test made: managers, processes, and the unique top they all live under."""

    def __init__(self):
        self.name = f"kago-test-{uuid.uuid4().hex[:10]}"
        note_ids(self.name)  # the session's leak check looks for it too
        self.managers = []
        self.procs = []

    def path(self, leaf="c1"):
        return f"/{self.name}/{leaf}"

    def open(self, path=None, **kw):
        m = open_manager(path or self.path(), **kw)
        self.managers.append(m)
        return m

    def spawn(self, *argv, stdin=subprocess.DEVNULL):
        p = subprocess.Popen(argv or ("sleep", "60"), stdin=stdin,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def tops(self):
        """Our top directory in every hierarchy, for every manager (relative ones included)."""
        tops = set()
        for m in self.managers:
            for d in m.paths().values():
                tops.add(d[:d.index("/" + self.name + "/") + len(self.name) + 1])
        return tops

    def cleanup(self):
        try:
            self._stop_processes()
        finally:
            for m in reversed(self.managers):  # children opened later are removed first
                _quietly(m.destroy)
            for top in self.tops():
                _rmdir_tree(top)
        left = [t for t in self.tops() if os.path.exists(t)]
        assert not left, f"cgroups left behind: {left}"

    def _stop_processes(self):
        # Thaw first: a SIGKILL sent to a task in a frozen v1 cgroup waits for the thaw.
        for m in self.managers:
            if m.can_freeze() and m.exists():
                _quietly(m.thaw)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for m in self.managers:  # what our processes forked lives only in our cgroups
            if m.exists():
                _quietly(m.kill_all)
        for p in self.procs:
            p.wait(timeout=5)
            if p.stdin:
                p.stdin.close()


def _quietly(fn):
    try:
        fn()
    except CgroupError:
        pass


@pytest.fixture
def box():
    b = Box()
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def layout():
    return detect()


# --- create -----------------------------------------------------------------------------------

def test_create_spans_every_hierarchy(box, layout):
    m = box.open()
    m.create()
    assert m.exists()
    for h in layout.hierarchies:
        assert m.path_in(h.name) == h.mountpoint + box.path()
        assert os.path.isdir(m.path_in(h.name))
        assert h.mountpoint + "/" + box.name in m.created  # the parent is ours too
    assert len(m.created) == 2 * len(layout.hierarchies)


def test_unified_leaf_has_psi(box, layout):
    if layout.unified is None or not os.path.exists(layout.unified.mountpoint + "/cpu.pressure"):
        pytest.skip("no cgroup2 tree with PSI on this host")
    m = box.open()
    m.create()
    assert os.path.exists(m.path_in("unified") + "/cpu.pressure")


def test_v1_cpuset_is_filled_from_the_parent(box, layout):
    cpuset = layout.find("cpuset")
    if cpuset is None or cpuset.version != 1:
        pytest.skip("no v1 cpuset hierarchy")
    m = box.open()
    m.create()
    root_cpus = open(cpuset.mountpoint + "/cpuset.cpus").read()
    assert open(m.path_in("cpuset") + "/cpuset.cpus").read() == root_cpus
    assert open(m.path_in("cpuset") + "/cpuset.mems").read().strip()


@pytest.mark.parametrize("leaf", ["memory.limit_in_bytes", "cgroup.procs"])
def test_failed_create_removes_what_it_made(box, layout, leaf):
    # "memory.limit_in_bytes" is a free name everywhere but in v1 memory (a control file there),
    # so create() fails half-way; "cgroup.procs" fails at the first leaf, after its parent.
    if leaf.startswith("memory.") and (layout.find("memory") is None or layout.mode == "v2"):
        pytest.skip("no v1 memory hierarchy")
    m = box.open(box.path(leaf))
    with pytest.raises(CgroupError) as info:
        m.create()
    assert info.value.errno == errno.EEXIST
    assert info.value.path.endswith("/" + box.name + "/" + leaf)
    assert m.created == []
    for h in layout.hierarchies:
        assert not os.path.exists(h.mountpoint + "/" + box.name)


# --- add / pids -------------------------------------------------------------------------------

def test_add_puts_the_process_in_every_hierarchy(box, layout):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    own = read_proc_cgroup(p.pid)
    for h in layout.hierarchies:
        assert own[h.name] == box.path(), h.name
        procs = open(m.path_in(h.name) + "/cgroup.procs").read().split()
        assert str(p.pid) in procs, h.name
    assert m.pids() == [p.pid]


def test_pids_include_child_cgroups(box):
    """A cgroup the container makes inside its own (its processes are there first: on v2 a
    cgroup that holds processes hands its children no controller, and one that does cannot
    take processes)."""
    m = box.open()
    m.create()
    p1, p2 = box.spawn(), box.spawn()
    m.add(p1.pid)
    sub = box.open(box.path("c1/sub"))
    sub.create()
    sub.add(p2.pid)
    assert m.pids() == sorted([p1.pid, p2.pid])
    assert sub.pids() == [p2.pid]


def test_add_of_a_dead_pid_names_the_file(box):
    m = box.open()
    m.create()
    p = box.spawn("true")
    p.wait(timeout=5)
    with pytest.raises(CgroupError) as info:
        m.add(p.pid)
    assert info.value.errno == errno.ESRCH
    assert info.value.path.endswith(box.path() + "/cgroup.procs")
    assert f"cannot add pid {p.pid}" in str(info.value)


# --- freezer ----------------------------------------------------------------------------------

def test_freeze_stops_the_process_and_thaw_resumes_it(box, layout):
    m = box.open()
    m.create()
    p = box.spawn("sh", "-c", "while :; do :; done")
    m.add(p.pid)
    assert _until(lambda: _cpu_ticks(p.pid)[1] > 0)
    m.freeze()
    assert m.frozen()
    if layout.find("freezer") is not None:
        assert open(m.path_in("freezer") + "/freezer.state").read().strip() == "FROZEN"
    state, ticks = _cpu_ticks(p.pid)
    time.sleep(0.3)
    assert _cpu_ticks(p.pid) == (state, ticks)
    assert state != "R"  # v1 shows D (in the refrigerator), the v2 freezer S
    m.thaw()
    assert not m.frozen()
    assert _until(lambda: _cpu_ticks(p.pid)[1] > ticks)


# --- kill -------------------------------------------------------------------------------------

def test_kill_all_sigkill(box):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    m.kill_all(signal.SIGKILL)
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert _until(lambda: m.pids() == [])


def test_kill_all_sigkill_of_a_paused_container(box):
    # On hybrid the v1 freezer holds the tasks: cgroup.kill alone would leave them stuck.
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    m.freeze()
    m.kill_all(signal.SIGKILL)
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert not m.frozen()


def test_kill_all_other_signal_goes_to_each_pid(box):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    m.kill_all(signal.SIGTERM)
    assert p.wait(timeout=5) == -signal.SIGTERM


def test_kill_all_by_walking_pids_under_the_v1_freezer(box, layout):
    # The path for kernels without cgroup.kill: a v1-only manager over this host's v1 dirs.
    if layout.find("freezer") is None or layout.find("freezer").version != 1:
        pytest.skip("no v1 freezer hierarchy")
    m = box.open()
    m.create()
    record = m.to_record()
    keep = [i for i, name in enumerate(record["hierarchies"]) if name != "unified"]
    v1_only = Manager.from_record(record | {
        "mode": "v1", "created": [],
        "hierarchies": [record["hierarchies"][i] for i in keep],
        "dirs": [record["dirs"][i] for i in keep]})
    # It forks only once it is in every hierarchy: a fork racing add() would leave the child
    # in the hierarchies written so far and in the parent's cgroups in the rest.
    p = box.spawn("sh", "-c", "read go; sleep 60 & sleep 60 & wait", stdin=subprocess.PIPE)
    m.add(p.pid)
    p.stdin.write(b"go\n")
    p.stdin.close()
    assert _until(lambda: len(v1_only.pids()) == 3)
    v1_only.kill_all(signal.SIGKILL)
    assert p.wait(timeout=5) == -signal.SIGKILL
    assert _until(lambda: v1_only.pids() == [])
    assert not v1_only.frozen()  # thawed again, or the next task to join would stop


def test_v2_manager_on_the_cgroup2_tree(box, layout):
    # The V2Manager code paths (cgroup.freeze, cgroup.events, cgroup.kill) on the real kernel,
    # here over the hybrid host's controller-less cgroup2 tree.
    if layout.unified is None:
        pytest.skip("no cgroup2 tree")
    m = box.open()
    m.create()
    v2_only = Manager.from_record({"mode": "v2", "path": m.path, "hierarchies": ["unified"],
                                   "dirs": [m.path_in("unified")], "created": []})
    p = box.spawn("sh", "-c", "while :; do :; done")
    m.add(p.pid)
    assert v2_only.pids() == [p.pid]
    v2_only.freeze()
    assert v2_only.frozen()
    assert "frozen 1" in open(m.path_in("unified") + "/cgroup.events").read()
    ticks = _cpu_ticks(p.pid)
    time.sleep(0.2)
    assert _cpu_ticks(p.pid) == ticks
    v2_only.kill_all()  # by cgroup.kill, on a paused container
    assert p.wait(timeout=5) == -signal.SIGKILL
    v2_only.thaw()
    assert not v2_only.frozen()


# --- destroy ----------------------------------------------------------------------------------

def test_destroy_removes_every_directory_and_the_parent(box, layout):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    m.kill_all()
    p.wait(timeout=5)
    m.destroy()
    assert not m.exists() and m.created == []
    for h in layout.hierarchies:
        assert not os.path.exists(h.mountpoint + "/" + box.name), h.name
    m.destroy()  # already gone is fine


def test_destroy_removes_cgroups_the_container_made_inside(box, layout):
    m = box.open()
    m.create()
    for d in m.paths().values():
        os.makedirs(d + "/inner/deeper")  # as systemd inside a container would
    m.destroy()
    for h in layout.hierarchies:
        assert not os.path.exists(h.mountpoint + "/" + box.name), h.name


def test_destroy_waits_for_a_task_that_is_still_exiting(box):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    os.kill(p.pid, signal.SIGKILL)  # not reaped yet, maybe not even dead yet
    m.destroy(timeout=2.0)
    assert not m.exists()


def test_destroy_with_a_live_process_says_so(box):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    with pytest.raises(CgroupError) as info:
        m.destroy(timeout=0.2)
    assert info.value.errno == errno.EBUSY
    assert f"1 processes remain ({p.pid})" in str(info.value)
    assert info.value.path in m.paths().values()
    assert m.exists() and len(m.created) == len(box.tops()) * 2
    p.kill()
    p.wait(timeout=5)
    m.destroy()
    assert not m.exists()


# --- paths and records ------------------------------------------------------------------------

def test_relative_path_hangs_under_our_own_cgroup(box, layout):
    """runc's cgroupfs drivers: below our own cgroup in each v1 hierarchy (and a hybrid host's
    cgroup2 tree); below its parent on a pure v2 host (fs2: our own holds processes)."""
    own = read_proc_cgroup()
    if layout.mode == "v2":
        own = {name: os.path.dirname(path.rstrip("/")) for name, path in own.items()}
    m = box.open(box.name + "/c1")
    for h in layout.hierarchies:
        assert m.path_in(h.name) == (h.mountpoint + own[h.name]).rstrip("/") + box.path()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    theirs = read_proc_cgroup(p.pid)
    for h in layout.hierarchies:  # v1 ones and the cgroup2 tree, whichever this host has
        assert theirs[h.name] == own[h.name].rstrip("/") + box.path(), h.name
    m.kill_all()
    p.wait(timeout=5)
    m.destroy()
    assert not m.exists()


def test_record_reopens_the_same_cgroup(box):
    m = box.open()
    m.create()
    p = box.spawn()
    m.add(p.pid)
    again = Manager.from_record(json.loads(json.dumps(m.to_record())))
    box.managers.append(again)
    assert again.pids() == [p.pid]
    again.kill_all()
    assert p.wait(timeout=5) == -signal.SIGKILL
    again.destroy()
    assert not m.exists()
