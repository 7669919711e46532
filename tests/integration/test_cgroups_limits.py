"""Resource limits, live update, stats, PSI and OOM on the real kernel, as root.

Every test works under its own "/kago-test-<random>" top: the `box` fixture thaws, kills (by
pid, with bounded waits) and removes everything the test made, even when it fails, and checks
that the top is gone from every hierarchy.

Tested here only as pure functions (tests/unit/cgroups/test_resources.py), because this hybrid
host has no v2 controller enabled in its cgroup2 tree, and on a pure v2 host by
test_cgroups_limits_v2.py (``./dev test-v2``): the v2 controller writes (cpu.weight, cpu.max,
cpu.max.burst, memory.max/low/swap.max, io.weight/io.bfq.weight/io.max, pids.max, hugetlb.*.max,
rdma.max on the cgroup2 side), enabling controllers in subtree_control (against a fake tree),
v2 stats from memory.*/io.stat files, and the v2 OOM counter (memory.events). The V2Manager is
run here against the cgroup2 core files: a raw `unified` write (cgroup.max.descendants), the
refusal of a controller the tree does not offer, cpu.stat usage and *.pressure.
"""

import errno
import os
import signal
import subprocess
import time
import uuid

import pytest

import hostprobe
from conftest import note_ids
from kago.errors import CgroupError, SpecError
from kago.linux.cgroups import Manager, detect, open_manager

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroups")]

HOST_PYTHON = "/usr/bin/python3"  # not the pyenv shim on PATH
GATE = "read go; "  # processes start their work only once add() put them in every hierarchy


def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _read(d, name):
    with open(f"{d}/{name}") as f:
        return f.read().strip()


def _flat(d, name):
    return {k: int(v) for k, v in (line.split() for line in _read(d, name).splitlines())}


class Box:
    """What one test made: managers, processes, and the unique top they all live under."""

    def __init__(self):
        self.name = f"kago-test-{uuid.uuid4().hex[:10]}"
        note_ids(self.name)  # the session's leak check looks for it too
        self.managers = []
        self.procs = []

    def manager(self, leaf="c1"):
        m = open_manager(f"/{self.name}/{leaf}")
        self.managers.append(m)
        m.create()
        return m

    def start(self, m, script, argv=("sh", "-c")):
        """A process running ``script`` inside ``m`` (it waits for "go" on stdin)."""
        p = subprocess.Popen([*argv, script], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        m.add(p.pid)
        p.stdin.write(b"go\n")
        p.stdin.flush()
        return p

    def cleanup(self):
        try:
            for m in self.managers:
                if m.exists():
                    _quietly(m.thaw)
                    _quietly(m.kill_all)
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=10)
                p.stdin.close()
        finally:
            for m in reversed(self.managers):
                _quietly(m.destroy, timeout=5.0)
        left = [d for m in self.managers for d in m.paths().values()
                if os.path.exists(d[:d.index(self.name) + len(self.name)])]
        assert not left, f"cgroups left behind: {left}"


def _quietly(fn, **kw):
    try:
        fn(**kw)
    except CgroupError:
        pass


@pytest.fixture
def box():
    b = Box()
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def layout():
    layout = detect()
    if layout.mode == "v2":
        pytest.skip("these tests read v1 controller files; this is a v2 host")
    return layout


# --- limits land in the files ----------------------------------------------------------------

ALL_RESOURCES = {
    "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0",
            "idle": 0, "burst": 1000},
    "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20,
               "swappiness": 10, "kernelTCP": 16 << 20, "useHierarchy": True},
    "pids": {"limit": 50},
    "blockIO": {"weight": 300,
                "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1 << 20}],
                "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]},
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 5, "minor": -1, "access": "rw"}],
}

ALL_READ_BACK = [  # (controller, file, value the kernel shows)
    ("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0"),
    ("memory", "memory.limit_in_bytes", str(64 << 20)),
    ("memory", "memory.memsw.limit_in_bytes", str(96 << 20)),
    ("memory", "memory.soft_limit_in_bytes", str(32 << 20)),
    ("memory", "memory.swappiness", "10"),
    # kernelTCP is written where the kernel has TCP accounting, as crun does
    ("memory", "memory.kmem.tcp.limit_in_bytes", str(16 << 20)),
    ("memory", "memory.use_hierarchy", "1"),
    ("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_quota_us", "20000"),
    ("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_burst_us", "1000"),
    ("cpu", "cpu.idle", "0"), ("pids", "pids.max", "50"),
    ("blkio", "blkio.throttle.read_bps_device", f"254:0 {1 << 20}"),
    ("blkio", "blkio.throttle.write_iops_device", "254:0 100"),
    ("devices", "devices.list", "c 1:3 rwm\nc 5:* rw"),
]

# A setting that only some kernels have, and the file it needs (swap accounting, TCP kmem,
# CFS burst (5.14), SCHED_IDLE groups (5.15), and a CFQ or BFQ weight: see hostprobe).
OPTIONAL = {("memory", "swap"): "memory.memsw.limit_in_bytes",
            ("memory", "kernelTCP"): "memory.kmem.tcp.limit_in_bytes",
            ("cpu", "burst"): "cpu.cfs_burst_us", ("cpu", "idle"): "cpu.idle"}


def _host_resources():
    """ALL_RESOURCES less what this host's child cgroups cannot take; READ_BACK to match."""
    resources = {k: (dict(v) if isinstance(v, dict) else v) for k, v in ALL_RESOURCES.items()}
    missing = set()
    for (section, key), filename in OPTIONAL.items():
        controller = "memory" if section == "memory" else "cpu"
        if not hostprobe.has_cgroup_file(controller, filename):
            del resources[section][key]
            missing.add(filename)
    if hostprobe.blkio_weight_file() is None:
        del resources["blockIO"]["weight"]
    read_back = [r for r in ALL_READ_BACK if r[1] not in missing]
    return resources, read_back


RESOURCES, READ_BACK = _host_resources()
SWAP = hostprobe.has_cgroup_file("memory", "memory.memsw.limit_in_bytes")
needs_swap_accounting = pytest.mark.skipif(
    not SWAP, reason="no memory.memsw.* here (swap accounting off: swapaccount=0 or no swap "
                     "controller)")


def test_limits_land_in_the_files(box, layout):
    m = box.manager()
    hostprobe.skip_unless_cgroup_files(*[(c, f) for c, f, _ in READ_BACK])
    writes = m.apply(RESOURCES)
    assert writes[0][:2] == ("cpuset", "cpuset.cpus")  # before anything else, tasks included
    for controller, filename, expected in READ_BACK:
        assert _read(m.path_in(controller), filename) == expected, filename
    weight_file = hostprobe.blkio_weight_file()
    if weight_file is not None:
        assert _read(m.path_in("blkio"), weight_file).split()[-1] == "300"


@pytest.mark.skipif(hostprobe.blkio_weight_file() is None,
                    reason="no blkio.weight or blkio.bfq.weight here (no CFQ or BFQ scheduler)")
def test_blkio_weight_lands_in_the_hosts_weight_file(box, layout):
    m = box.manager()
    m.apply({"blockIO": {"weight": 300}})
    assert _read(m.path_in("blkio"), hostprobe.blkio_weight_file()).split()[-1] == "300"


@pytest.mark.skipif(hostprobe.blkio_weight_file() is not None,
                    reason=f"this host's blkio has {hostprobe.blkio_weight_file()}")
def test_blkio_weight_without_cfq_or_bfq_is_refused_before_any_write(box, layout):
    """Only blkio.throttle.* here: runc fails on blkio.bfq.weight's ENOENT, kago names both."""
    m = box.manager()
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 9}, "blockIO": {"weight": 300}})
    assert info.value.field == "linux.resources.blockIO.weight"
    assert "has neither blkio.weight nor blkio.bfq.weight" in str(info.value)
    assert _read(m.path_in("pids"), "pids.max") == "max"  # checked first, nothing written
    m.apply({"blockIO": {"throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]}})
    assert _read(m.path_in("blkio"), "blkio.throttle.write_iops_device") == "254:0 100"


def test_idle_and_shares_in_the_order_the_kernel_takes(box, layout):
    m = box.manager()
    if not os.path.exists(m.path_in("cpu") + "/cpu.idle"):
        pytest.skip("no cpu.idle (linux < 5.15)")
    m.apply({"cpu": {"idle": 1, "shares": 512}})  # shares first: refused while idle
    assert _read(m.path_in("cpu"), "cpu.idle") == "1"
    m.update({"cpu": {"idle": 0, "shares": 2048}})  # idle 0 first
    assert _read(m.path_in("cpu"), "cpu.shares") == "2048"


@needs_swap_accounting
def test_unified_keys_become_v1_files(box, layout):
    m = box.manager()
    m.apply({"unified": {"cpu.max": "30000 60000", "cpu.weight": "100",
                         "memory.max": str(48 << 20), "memory.swap.max": str(16 << 20),
                         "pids.max": "max"}})
    cpu, memory = m.path_in("cpu"), m.path_in("memory")
    assert _read(cpu, "cpu.cfs_quota_us") == "30000"
    assert _read(cpu, "cpu.cfs_period_us") == "60000"
    assert _read(cpu, "cpu.shares") == "1024"  # weight 100 is the default shares (runc)
    assert _read(memory, "memory.limit_in_bytes") == str(48 << 20)
    assert _read(memory, "memory.memsw.limit_in_bytes") == str(64 << 20)  # memory + swap
    assert _read(m.path_in("pids"), "pids.max") == "max"


def test_unified_key_without_v1_equivalent_names_it(box, layout):
    m = box.manager()
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 9}, "unified": {"memory.high": "1000000"}})
    assert info.value.field == "linux.resources.unified.memory.high"
    assert "has no cgroup v1 equivalent" in str(info.value)
    assert _read(m.path_in("pids"), "pids.max") == "max"  # checked first, nothing written


def test_unavailable_controller_is_an_error_naming_the_field(box, layout):
    if layout.find("net_cls") is not None:
        pytest.skip("net_cls is mounted here")
    m = box.manager()
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 9}, "network": {"classID": 0x100001}})
    assert str(info.value) == ("linux.resources.network.classID: the net_cls controller is "
                               "not available on this host")
    assert _read(m.path_in("pids"), "pids.max") == "max"


def test_missing_control_file_is_an_error_naming_the_field(box, layout):
    m = box.manager()
    if os.path.exists(m.path_in("blkio") + "/blkio.leaf_weight"):
        pytest.skip("this kernel still has CFQ's leaf weight")
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 9}, "blockIO": {"leafWeight": 100}})
    assert info.value.field == "linux.resources.blockIO.leafWeight"
    assert "has no blkio.leaf_weight" in str(info.value)
    assert _read(m.path_in("pids"), "pids.max") == "max"


# --- the kernel refuses ----------------------------------------------------------------------

def test_memory_limit_below_usage_names_file_value_and_errno(box, layout):
    m = box.manager()
    m.apply({"memory": {"swappiness": 0}})  # no swap to push the pages to, even if the host has
    p = box.start(m, "import sys; sys.stdin.readline(); a = b'x' * (24 << 20); "
                     "import time; time.sleep(60)", argv=(HOST_PYTHON, "-c"))
    memory = m.path_in("memory")
    assert _until(lambda: int(_read(memory, "memory.usage_in_bytes")) > 20 << 20)
    with pytest.raises(CgroupError) as info:
        m.update({"memory": {"limit": 1 << 20}})
    assert info.value.errno == errno.EBUSY
    assert str(info.value).startswith(
        f"cgroup {memory}: write memory.limit_in_bytes={1 << 20}: device or resource busy")
    assert info.value.field == "linux.resources.memory.limit"
    assert p.poll() is None


def test_check_before_update_refuses_below_usage(box, layout):
    m = box.manager()
    box.start(m, "import sys; sys.stdin.readline(); a = b'x' * (24 << 20); "
                 "import time; time.sleep(60)", argv=(HOST_PYTHON, "-c"))
    memory = m.path_in("memory")
    assert _until(lambda: int(_read(memory, "memory.usage_in_bytes")) > 20 << 20)
    with pytest.raises(CgroupError) as info:
        m.update({"memory": {"limit": 8 << 20, "checkBeforeUpdate": True}})
    assert "below the current usage" in str(info.value)
    assert _read(memory, "memory.limit_in_bytes") != str(8 << 20)


def test_cpuset_of_missing_cpus_names_file_and_errno(box, layout):
    m = box.manager()
    with pytest.raises(CgroupError) as info:
        m.apply({"cpu": {"cpus": "99"}})
    assert info.value.errno in (errno.EINVAL, errno.ERANGE)  # 6.x: ERANGE past nr_cpu_ids
    assert info.value.path == m.path_in("cpuset")
    assert "write cpuset.cpus=99: " in str(info.value)


def test_realtime_runtime_without_parent_budget_says_why(box, layout):
    m = box.manager()
    if not os.path.exists(m.path_in("cpu") + "/cpu.rt_runtime_us"):
        pytest.skip("no CONFIG_RT_GROUP_SCHED")
    with pytest.raises(CgroupError) as info:
        m.apply({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 100000}})
    assert "write cpu.rt_runtime_us=1000" in str(info.value)
    assert "no real-time runtime to give" in str(info.value)


# --- update ----------------------------------------------------------------------------------

@needs_swap_accounting
def test_update_changes_a_live_limit(box, layout):
    m = box.manager()
    m.apply({"pids": {"limit": 10}, "memory": {"limit": 64 << 20, "swap": 64 << 20},
             "cpu": {"quota": 10000, "period": 100000}})
    p = box.start(m, GATE + "sleep 60")
    m.update({"pids": {"limit": 20}, "cpu": {"quota": 50000},
              "memory": {"limit": 128 << 20, "swap": 256 << 20},  # raising: memsw first
              "devices": [{"allow": False, "access": "rwm"}]})  # ignored, as by runc update
    assert _read(m.path_in("pids"), "pids.max") == "20"
    assert _read(m.path_in("cpu"), "cpu.cfs_quota_us") == "50000"
    assert _read(m.path_in("memory"), "memory.limit_in_bytes") == str(128 << 20)
    assert _read(m.path_in("memory"), "memory.memsw.limit_in_bytes") == str(256 << 20)
    m.update({"memory": {"limit": 32 << 20, "swap": 48 << 20}})  # lowering: limit first
    assert _read(m.path_in("memory"), "memory.limit_in_bytes") == str(32 << 20)
    assert _read(m.path_in("memory"), "memory.memsw.limit_in_bytes") == str(48 << 20)
    m.update({"memory": {"limit": -1}})  # unlimited: swap follows
    assert int(_read(m.path_in("memory"), "memory.memsw.limit_in_bytes")) > 1 << 60
    assert p.poll() is None


# --- enforcement -----------------------------------------------------------------------------

def test_memory_hog_is_oom_killed_and_counted(box, layout):
    m = box.manager()
    # no swap, whether or not the host has swap accounting: the limit is all it gets
    m.apply({"memory": {"limit": 32 << 20, "swappiness": 0} |
             ({"swap": 32 << 20} if SWAP else {})})
    assert m.oom_count() == 0
    with m.oom_watch() as watch:
        p = box.start(m, "import sys; sys.stdin.readline(); a = []\n"
                         "while True: a.append(b'x' * (1 << 20))", argv=(HOST_PYTHON, "-c"))
        assert p.wait(timeout=20) == -signal.SIGKILL
        assert watch.wait(timeout=5) >= 1
    assert m.oom_count() >= 1
    memory = m.stats()["memory"]
    # (memory.failcnt and memsw.failcnt stay 0 on this 6.18 kernel even then: the peak and
    # the OOM counter are what show it)
    assert memory["usage"]["max"] > 30 << 20
    assert memory["usage"]["limit"] == 32 << 20


def test_fork_bomb_stops_at_pids_max(box, layout):
    m = box.manager()
    m.apply({"pids": {"limit": 16}})
    box.start(m, GATE + "while :; do sleep 60 & done")
    pids = m.path_in("pids")
    assert _until(lambda: _flat(pids, "pids.events")["max"] > 0)  # forks were refused
    assert int(_read(pids, "pids.current")) <= 16
    assert len(m.pids()) <= 16
    assert m.stats()["pids"] == {"current": int(_read(pids, "pids.current")), "limit": 16}
    m.kill_all()
    assert _until(lambda: m.pids() == [])


def test_cpu_burner_is_throttled(box, layout):
    m = box.manager()
    m.apply({"cpu": {"quota": 10000, "period": 100000}})
    box.start(m, GATE + "while :; do :; done")
    cpu = m.path_in("cpu")
    assert _until(lambda: _flat(cpu, "cpu.stat")["nr_throttled"] >= 3)
    throttling = m.stats()["cpu"]["throttling"]
    assert throttling["throttledPeriods"] >= 3
    assert throttling["periods"] >= throttling["throttledPeriods"]
    assert throttling["throttledTime"] > 0


def test_stats_and_pressure_are_the_cgroups_own(box, layout):
    m = box.manager()
    m.apply({"cpu": {"quota": 10000, "period": 100000}, "pids": {"limit": 8}})
    box.start(m, GATE + "while :; do :; done")
    assert _until(lambda: m.stats()["cpu"]["usage"]["total"] > 50_000_000)  # 50 ms of CPU
    stats = m.stats()
    assert stats["cpu"]["usage"]["user"] + stats["cpu"]["usage"]["kernel"] > 0
    assert len(stats["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert stats["pids"] == {"current": 1, "limit": 8}  # sh alone: read and : are builtins
    assert stats["memory"]["usage"]["usage"] >= 0  # a shell loop allocates nothing here
    assert stats["memory"]["usage"]["limit"] > 1 << 60
    if not hostprobe.has_cgroup_file("unified", "cpu.pressure"):
        return  # no cgroup2 tree or no PSI (CONFIG_PSI off, psi=0)
    psi = m.pressure()
    assert set(psi) >= {"cpu", "memory", "io"}
    for resource in psi.values():
        assert set(resource["some"]) == {"avg10", "avg60", "avg300", "total"}
        assert isinstance(resource["some"]["avg10"], float)
    # a 10% quota makes the burner wait: its own cpu pressure grows, the root's is unrelated
    before = psi["cpu"]["some"]["total"]
    assert _until(lambda: m.pressure()["cpu"]["some"]["total"] > before)
    assert stats["cpu"]["psi"]["some"].keys() == psi["cpu"]["some"].keys()


# --- the cgroup2 core, through the V2Manager -------------------------------------------------

def _v2_view(m):
    return Manager.from_record({"mode": "v2", "path": m.path, "hierarchies": ["unified"],
                                "dirs": [m.path_in("unified")], "created": []})


def test_v2_manager_writes_raw_unified_core_keys(box, layout):
    if layout.unified is None:
        pytest.skip("no cgroup2 tree")
    m = box.manager()
    v2 = _v2_view(m)
    v2.apply({"unified": {"cgroup.max.descendants": "3"}})
    assert _read(m.path_in("unified"), "cgroup.max.descendants") == "3"
    assert v2.available()["unified"] == set(open(
        layout.unified.mountpoint + "/cgroup.subtree_control").read().split())


def test_v2_manager_refuses_a_controller_the_tree_does_not_offer(box, layout):
    if layout.unified is None:
        pytest.skip("no cgroup2 tree")
    if "pids" in open(layout.unified.mountpoint + "/cgroup.subtree_control").read().split():
        pytest.skip("pids is enabled in this cgroup2 tree")
    m = box.manager()
    with pytest.raises(SpecError) as info:
        _v2_view(m).apply({"pids": {"limit": 5}})
    assert str(info.value) == ("linux.resources.pids.limit: the pids controller is not "
                               "available on this host")


def test_v2_manager_stats_from_core_cpu_stat_and_pressure(box, layout):
    if not hostprobe.has_cgroup_file("unified", "cpu.pressure"):
        pytest.skip("no cgroup2 tree with PSI (cpu.pressure) here")
    m = box.manager()
    box.start(m, GATE + "while :; do :; done")
    v2 = _v2_view(m)
    assert _until(lambda: v2.stats()["cpu"]["usage"]["total"] > 20_000_000)
    assert "psi" in v2.stats()["cpu"]
    assert set(v2.pressure()) >= {"cpu", "memory", "io"}


# --- cleanup ---------------------------------------------------------------------------------

def test_destroy_after_limits_leaves_nothing(box, layout):
    m = box.manager()
    m.apply(RESOURCES | {"devices": [], "cpu": {"quota": 20000, "period": 100000}})
    p = box.start(m, GATE + "sleep 60")
    m.kill_all()
    p.wait(timeout=5)
    m.destroy()
    for h in layout.hierarchies:
        assert not os.path.exists(f"{h.mountpoint}/{box.name}"), h.name
