"""Manager.apply()/update()/oom against a fake cgroupfs in tmp_path: no root, no kernel.

Plain files stand in for control files. What they cannot do (refuse a value) is imitated by
patching os.write in kago.linux.cgroups.limits; enabling v2 controllers in ancestors'
cgroup.subtree_control is tested here and, on real v2 controllers, by
tests/integration/test_cgroups_limits_v2.py (``./dev test-v2``).
"""

import errno
import os

import pytest

from kago.errors import CgroupError, SpecError
from kago.linux.cgroups import HybridManager, V1Manager, V2Manager, limits
from kago.linux.cgroups.oom import OomWatch

# the fake trees' parents go to a ledger of the test's own (conftest.own_ledger)
pytestmark = pytest.mark.usefixtures("own_ledger")

V1_FILES = {
    "cpuset": ["cpuset.cpus", "cpuset.mems"],
    "cpu": ["cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"],
    "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.usage_in_bytes",
               "memory.oom_control", "cgroup.event_control"],
    "pids": ["pids.max"],
    "devices": ["devices.allow", "devices.deny"],
}


def _v1(tmp_path, cls=V1Manager, extra=None):
    dirs = {}
    for controller, files in V1_FILES.items():
        d = tmp_path / controller / "c1"
        d.mkdir(parents=True)
        for name in files:
            (d / name).write_text("")
        dirs[controller] = str(d)
    if extra:
        dirs.update(extra)
    return cls("/c1", dirs)


def _read(m, controller, name):
    with open(f"{m.path_in(controller)}/{name}") as f:
        return f.read()


def test_apply_writes_each_value(tmp_path):
    m = _v1(tmp_path)
    m.apply({"pids": {"limit": 7}, "cpu": {"shares": 512, "cpus": "0"}})
    assert _read(m, "pids", "pids.max") == "7"
    assert _read(m, "cpu", "cpu.shares") == "512"
    assert _read(m, "cpuset", "cpuset.cpus") == "0"


def test_a_missing_file_names_the_field_and_nothing_is_written(tmp_path):
    m = _v1(tmp_path)
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 7}, "cpu": {"idle": 1}})  # no cpu.idle in this "kernel"
    assert info.value.field == "linux.resources.cpu.idle"
    assert f"not supported on this host: {m.path_in('cpu')} has no cpu.idle" in str(info.value)
    assert _read(m, "pids", "pids.max") == ""


def test_a_missing_cgroup_is_a_cgroup_error(tmp_path):
    m = V1Manager("/c1", {"pids": str(tmp_path / "pids/c1")})
    with pytest.raises(CgroupError, match="the cgroup does not exist"):
        m.apply({"pids": {"limit": 7}})


def test_swap_accounting_is_probed(tmp_path):
    m = _v1(tmp_path)
    assert "memory.memsw.limit_in_bytes" in m.available()["files"]
    os.unlink(m.path_in("memory") + "/memory.memsw.limit_in_bytes")
    assert m.apply({"memory": {"limit": -1}}) == [("memory", "memory.limit_in_bytes", "-1")]
    with pytest.raises(SpecError) as info:
        m.apply({"memory": {"limit": 100, "swap": 200}})
    assert info.value.field == "linux.resources.memory.swap"


def test_the_current_limit_orders_memory_and_swap(tmp_path):
    m = _v1(tmp_path)
    (tmp_path / "memory/c1/memory.limit_in_bytes").write_text("16777216\n")
    writes = m.apply({"memory": {"limit": 32 << 20, "swap": 64 << 20}})
    assert [w[1] for w in writes] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    writes = m.apply({"memory": {"limit": 8 << 20, "swap": 16 << 20}})  # now 32M: lowering
    assert [w[1] for w in writes] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def _refuse(monkeypatch, names, err, times=1):
    """Make os.write refuse writes to files named in ``names`` (``times`` times each)."""
    real_write, real_open = os.write, os.open
    opened, left = {}, {n: times for n in names}

    def fake_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        opened[fd] = os.path.basename(path)
        return fd

    def fake_write(fd, data):
        name = opened.get(fd)
        if left.get(name):
            left[name] -= 1
            raise OSError(err, os.strerror(err))
        return real_write(fd, data)

    monkeypatch.setattr(limits.os, "open", fake_open)
    monkeypatch.setattr(limits.os, "write", fake_write)


def test_a_refused_write_names_dir_file_value_and_errno(tmp_path, monkeypatch):
    m = _v1(tmp_path)
    _refuse(monkeypatch, {"memory.limit_in_bytes"}, errno.EBUSY)
    with pytest.raises(CgroupError) as info:
        m.update({"memory": {"limit": 1 << 20}})
    assert str(info.value) == (f"cgroup {m.path_in('memory')}: write memory.limit_in_bytes="
                               f"{1 << 20}: device or resource busy (the cgroup uses more "
                               "memory than that)")
    assert info.value.errno == errno.EBUSY
    assert info.value.path == m.path_in("memory")
    assert info.value.field == "linux.resources.memory.limit"


def test_einval_on_a_write_repeated_later_is_retried_there(tmp_path, monkeypatch):
    m = _v1(tmp_path)
    _refuse(monkeypatch, {"cpu.cfs_period_us"}, errno.EINVAL)
    m.apply({"cpu": {"quota": 20000, "period": 50000}})
    assert _read(m, "cpu", "cpu.cfs_period_us") == "50000"
    assert _read(m, "cpu", "cpu.cfs_quota_us") == "20000"


def test_einval_on_the_last_write_is_an_error(tmp_path, monkeypatch):
    m = _v1(tmp_path)
    _refuse(monkeypatch, {"cpu.cfs_period_us"}, errno.EINVAL, times=2)
    with pytest.raises(CgroupError) as info:
        m.apply({"cpu": {"quota": 20000, "period": 50000}})
    assert "write cpu.cfs_period_us=50000: invalid argument" in str(info.value)


def test_update_leaves_devices_alone(tmp_path):
    m = _v1(tmp_path)
    writes = m.update({"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 3}})
    assert writes == [("pids", "pids.max", "3")]
    assert _read(m, "devices", "devices.deny") == ""
    assert m.apply({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 3}]})[0] == (
        "devices", "devices.deny", "a")


def test_check_before_update(tmp_path):
    m = _v1(tmp_path)
    (tmp_path / "memory/c1/memory.usage_in_bytes").write_text("5000000\n")
    with pytest.raises(CgroupError, match="memory limit 4096 is at or below the current usage "
                                          "5000000"):
        m.update({"memory": {"limit": 4096, "checkBeforeUpdate": True}})
    m.update({"memory": {"limit": 4096}})  # without the check the kernel decides
    m.update({"memory": {"limit": 8000000, "checkBeforeUpdate": True}})


@pytest.mark.parametrize("memory, words", [
    ({"limit": 5000000}, "memory limit 5000000 is at or below"),  # runc: limit <= usage
    ({"swap": 5000000}, "memory+swap limit 5000000 is at or below")])
def test_check_before_update_as_runc_equal_usage_and_swap_too(tmp_path, memory, words):
    m = _v1(tmp_path)
    (tmp_path / "memory/c1/memory.usage_in_bytes").write_text("5000000\n")
    with pytest.raises(CgroupError) as info:
        m.update({"memory": dict(memory, checkBeforeUpdate=True)})
    assert words in str(info.value)
    assert _read(m, "memory", "memory.limit_in_bytes") == ""  # refused before any write


# --- cgroup2: controllers enabled top down, below the root ------------------------------------

def _v2_tree(tmp_path, offered="cpu memory pids"):
    root = tmp_path / "cg"
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text(offered + "\n")
    (root / "cgroup.subtree_control").write_text(offered + "\n")
    parent, leaf = root / "kago", root / "kago" / "c1"
    for d in (parent, leaf):
        d.mkdir()
        for name in ("cgroup.type", "cgroup.subtree_control", "cgroup.procs"):
            (d / name).write_text("")
        (d / "cgroup.controllers").write_text(offered + "\n")
    (leaf / "pids.max").write_text("")
    (leaf / "memory.max").write_text("")
    return root, V2Manager("/kago/c1", {"unified": str(leaf)})


def test_v2_available_is_what_the_root_hands_down(tmp_path):
    _root, m = _v2_tree(tmp_path)
    assert m.available()["unified"] == {"cpu", "memory", "pids"}
    assert limits.ancestors_below_root(m.path_in("unified")) == [
        str(tmp_path / "cg/kago"), str(tmp_path / "cg/kago/c1")]


def test_v2_apply_enables_controllers_in_ancestors_only_below_the_root(tmp_path):
    root, m = _v2_tree(tmp_path)
    m.apply({"pids": {"limit": 5}, "memory": {"limit": 1 << 20}})
    assert (root / "kago/cgroup.subtree_control").read_text() == "+memory +pids"
    assert (root / "kago/c1/cgroup.subtree_control").read_text() == ""  # the leaf: none
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory pids\n"  # the host's
    assert (root / "kago/c1/pids.max").read_text() == "5"
    assert (root / "kago/c1/memory.max").read_text() == str(1 << 20)


def test_v2_already_enabled_controllers_are_not_written_again(tmp_path):
    root, m = _v2_tree(tmp_path)
    (root / "kago/cgroup.subtree_control").write_text("memory pids\n")
    assert not limits.enable_controllers(m.path_in("unified"), ["pids"])


def test_v2_controller_the_root_does_not_offer_names_the_field(tmp_path):
    _root, m = _v2_tree(tmp_path, offered="memory")
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 5}})
    assert str(info.value) == ("linux.resources.pids.limit: the pids controller is not "
                               "available on this host")


def _record_subtree_writes(monkeypatch, refuse=lambda value: None):
    """Record each write to a cgroup.subtree_control; ``refuse(value)`` -> errno refuses it."""
    real_write, real_open = os.write, os.open
    opened, seen = {}, []

    def fake_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        opened[fd] = path
        return fd

    def fake_write(fd, data):
        path = opened.get(fd, "")
        if path.endswith("/cgroup.subtree_control"):
            err = refuse(data.decode())
            if err:
                raise OSError(err, os.strerror(err))
            seen.append((os.path.basename(os.path.dirname(path)), data.decode()))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)
    return seen


def test_v2_create_enables_what_the_root_hands_down_in_the_parents(tmp_path, monkeypatch):
    """runc's CreateCgroupPath: a container without limits still gets memory.events,
    memory.stat, pids.current (stats, the OOM counter); the root and the leaf are left."""
    root, m = _v2_tree(tmp_path)
    seen = _record_subtree_writes(monkeypatch)
    m.create()
    assert seen == [("kago", "+cpu +memory +pids")]
    assert (root / "cgroup.subtree_control").read_text() == "cpu memory pids\n"


def test_v2_create_right_below_the_root_writes_nothing(tmp_path, monkeypatch):
    root, _m = _v2_tree(tmp_path)
    seen = _record_subtree_writes(monkeypatch)
    V2Manager("/c2", {"unified": str(root / "c2")}).create()
    assert seen == []


def test_v2_create_leaves_off_what_the_kernel_refuses(tmp_path, monkeypatch):
    """The kernel takes all of a write or none: as runc, each controller is tried alone."""
    _root, m = _v2_tree(tmp_path)
    seen = _record_subtree_writes(
        monkeypatch, lambda v: errno.EBUSY if "memory" in v else None)
    m.create()
    assert seen == [("kago", "+cpu"), ("kago", "+pids")]


def test_v2_apply_below_a_populated_cgroup_says_why(tmp_path, monkeypatch):
    """No internal processes: the parent holds processes, so the kernel refuses (EBUSY)."""
    root, m = _v2_tree(tmp_path)
    _record_subtree_writes(monkeypatch, lambda v: errno.EBUSY)
    with pytest.raises(CgroupError) as info:
        m.apply({"pids": {"limit": 5}})
    control = str(root / "kago/cgroup.subtree_control")
    assert str(info.value) == (
        f"cgroup {control}: cannot enable pids: device or resource busy (it holds processes, "
        "and cgroup v2 hands controllers only to the children of a cgroup without processes "
        "of its own: use a cgroups path beside them)")
    assert (info.value.path, info.value.errno) == (control, errno.EBUSY)
    assert info.value.field == "linux.resources.pids.limit"
    assert (root / "kago/c1/pids.max").read_text() == ""


def test_v2_a_parent_holding_processes_is_never_written(tmp_path, monkeypatch):
    """The kernel would take the threaded controllers (cpu, pids) there and make it a thread
    root: its children turn "domain invalid" and refuse every process (EOPNOTSUPP). create
    leaves it alone; apply says why, naming the file, before writing anything."""
    root, m = _v2_tree(tmp_path)
    (root / "kago/cgroup.procs").write_text("4242\n")
    seen = _record_subtree_writes(monkeypatch)
    m.create()
    assert seen == []
    with pytest.raises(CgroupError) as info:
        m.apply({"pids": {"limit": 5}})
    assert info.value.errno == errno.EBUSY
    assert str(info.value).startswith(
        f"cgroup {root / 'kago/cgroup.subtree_control'}: cannot enable pids: device or "
        "resource busy (it holds processes")
    assert seen == [] and (root / "kago/c1/pids.max").read_text() == ""


def test_v2_create_refuses_a_domain_invalid_cgroup(tmp_path):
    """Below a thread root no process can join (the start failed with a bare ENOMEM)."""
    root, m = _v2_tree(tmp_path)
    (root / "kago/c1/cgroup.type").write_text("domain invalid\n")
    with pytest.raises(CgroupError) as info:
        m.create()
    assert str(info.value).startswith(f"cgroup {root / 'kago/c1'}: cgroup type is domain "
                                      "invalid: a parent holds processes")
    assert m.created == []


def test_hybrid_with_a_controller_less_tree_never_touches_it(tmp_path):
    root, v2 = _v2_tree(tmp_path, offered="")
    m = _v1(tmp_path / "v1", cls=HybridManager, extra={"unified": v2.path_in("unified")})
    m.apply({"pids": {"limit": 5}})
    assert (root / "kago/cgroup.subtree_control").read_text() == ""
    assert m.available()["unified"] == set()


# --- OOM counters -----------------------------------------------------------------------------

def test_oom_count_v1_and_v2(tmp_path):
    m = _v1(tmp_path)
    (tmp_path / "memory/c1/memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert m.oom_count() == 2
    _root, v2 = _v2_tree(tmp_path / "v2")
    (tmp_path / "v2/cg/kago/c1/memory.events").write_text("max 4\noom 1\noom_kill 1\n")
    assert v2.oom_count() == 1


def test_oom_watch_polls_memory_events_on_v2(tmp_path):
    _root, m = _v2_tree(tmp_path)
    events = tmp_path / "cg/kago/c1/memory.events"
    events.write_text("oom 0\noom_kill 0\n")
    with OomWatch(m, poll_interval=0.01) as watch:
        assert watch.fileno() is None
        assert watch.wait(timeout=0.05) == 0
        events.write_text("oom 2\noom_kill 2\n")
        assert watch.wait(timeout=1) == 2
        assert watch.wait(timeout=0) == 0
        events.unlink()
        assert watch.wait(timeout=1) == 0 and watch.gone


# --- v2 values as runc writes them ------------------------------------------------------------

def _record_writes(monkeypatch):
    """(file name, bytes) of every write(2) to the fake tree, in order."""
    real_write, real_open = os.write, os.open
    opened, seen = {}, []

    def fake_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        opened[fd] = os.path.basename(path)
        return fd

    def fake_write(fd, data):
        seen.append((opened.get(fd), data.decode()))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)
    return seen


def test_v2_unified_multi_line_value_is_written_line_by_line(tmp_path, monkeypatch):
    """runc's WriteFileByLine, crun's strtok loop: io.max takes one device a write."""
    root, m = _v2_tree(tmp_path, offered="io pids")
    (root / "kago/c1/io.max").write_text("")
    seen = _record_writes(monkeypatch)
    m.apply({"unified": {"io.max": "8:0 rbps=1048576\n\n8:16 wiops=100\n"}})
    assert [w for w in seen if w[0] == "io.max"] == [("io.max", "8:0 rbps=1048576"),
                                                     ("io.max", "8:16 wiops=100")]


def test_v2_a_refused_line_is_named_in_the_error(tmp_path, monkeypatch):
    root, m = _v2_tree(tmp_path, offered="io")
    (root / "kago/c1/io.max").write_text("")
    real_write = os.write

    def refuse_second(fd, data):
        if data.startswith(b"8:16"):
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", refuse_second)
    with pytest.raises(CgroupError) as info:
        m.apply({"unified": {"io.max": "8:0 rbps=1\n8:16 rbps=2"}})
    assert str(info.value) == (f"cgroup {root / 'kago/c1'}: write io.max=8:16 rbps=2: "
                               "no such device")
    assert info.value.field == "linux.resources.unified.io.max"


def test_v2_hugetlb_rsvd_is_written_where_the_file_is(tmp_path):
    """runc: hugetlb.<size>.rsvd.max gets the limit too where the kernel has it (5.7)."""
    root, m = _v2_tree(tmp_path, offered="hugetlb")
    leaf = root / "kago/c1"
    for name in ("hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"):
        (leaf / name).write_text("")
    writes = m.apply({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20},
                                         {"pageSize": "1GB", "limit": 0}]})
    assert [tuple(w) for w in writes] == [
        ("unified", "hugetlb.2MB.max", str(4 << 20)),
        ("unified", "hugetlb.2MB.rsvd.max", str(4 << 20)),
        ("unified", "hugetlb.1GB.max", "0")]  # no rsvd file for this size: only the limit
    assert (leaf / "hugetlb.2MB.rsvd.max").read_text() == str(4 << 20)


def test_v2_swap_under_unlimited_memory_lands_as_it_is(tmp_path):
    root, m = _v2_tree(tmp_path)
    (root / "kago/c1/memory.swap.max").write_text("")
    m.apply({"memory": {"limit": -1, "swap": 1 << 30}})
    assert (root / "kago/c1/memory.swap.max").read_text() == str(1 << 30)
    assert (root / "kago/c1/memory.max").read_text() == "max"


def test_v2_update_of_the_swap_alone_takes_the_limit_the_cgroup_has(tmp_path):
    """runc update --memory-swap alone: the limit from the container's config; here memory.max
    now. memory.max "max": the swap as it is; a swap below the limit: runc's error."""
    root, m = _v2_tree(tmp_path)
    leaf = root / "kago/c1"
    (leaf / "memory.swap.max").write_text("")
    (leaf / "memory.max").write_text(f"{64 << 20}\n")
    writes = m.update({"memory": {"swap": 96 << 20}})
    assert [tuple(w) for w in writes] == [("unified", "memory.swap.max", str(32 << 20))]
    assert (leaf / "memory.max").read_text() == f"{64 << 20}\n"  # left as it was
    with pytest.raises(SpecError) as info:
        m.update({"memory": {"swap": 32 << 20}})
    assert str(info.value) == (f"linux.resources.memory.swap: memory+swap limit {32 << 20} "
                               f"must not be below the memory limit {64 << 20} (memory.max now)")
    (leaf / "memory.max").write_text("max\n")
    m.update({"memory": {"swap": 16 << 20}})
    assert (leaf / "memory.swap.max").read_text() == str(16 << 20)
