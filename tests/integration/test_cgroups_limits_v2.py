"""Limits, delegation, freezer, kill, stats, PSI and OOM on a pure cgroup v2 host, as root.

The library (``kago.linux.cgroups``) against a real cgroup2 tree whose root hands its children
controllers (cpuset cpu io memory pids): ``./dev test-v2`` runs it in the pure v2 guest
(docs/cgroups-v2.md). runc's fs2 driver (and crun) are the reference:

- delegation: a controller is usable in a cgroup only if every ancestor below the root has it in
  cgroup.subtree_control; a cgroup that holds processes cannot give its children a domain
  controller (no internal processes), so a container's cgroup below a populated one gets no
  limits, and says why;
- pause/resume: cgroup.freeze, then cgroup.events says ``frozen 1``; kill: cgroup.kill;
- OOM: memory.events ``oom_kill``; stats: cpu.stat, memory.stat/current/peak/max, io.stat,
  pids.current/max, *.pressure;
- conversions: cpu.weight from the shares by current runc's curve (1024 -> 100),
  memory.swap.max = swap - limit (the spec's swap is memory+swap), io.bfq.weight where BFQ is
  there, else io.weight converted from blkio's range.

The same ``box`` as test_cgroups_limits.py: each test under its own /kago-test-<random> top,
everything killed, thawed and removed at the end, every wait bounded. What only some kernels or
disks have (swap, BFQ, cpu.idle, memory.peak) is probed (tests/hostprobe.py).
"""

import errno
import os
import signal
import time

import pytest

import hostprobe
from kago.errors import CgroupError, SpecError
from kago.linux.cgroups import detect, open_manager, read_proc_cgroup
from kago.linux.cgroups.resources import blkio_to_io_weight, shares_to_weight
from test_cgroups_limits import GATE, HOST_PYTHON, _flat, _read, _until, box  # noqa: F401

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make cgroups")]

MIB = 1 << 20
CONTROLLERS = ("cpu", "memory", "pids")


@pytest.fixture(scope="module")
def layout():
    layout = detect()
    if layout.mode != "v2":
        pytest.skip(f"needs a pure cgroup v2 host (this one is {layout.mode}): "
                    "./dev test-v2 runs these in a v2 guest")
    missing = [c for c in CONTROLLERS if f"{c}.max" not in hostprobe.child_files("unified")
               and f"{c}.weight" not in hostprobe.child_files("unified")]
    if missing:
        pytest.skip("this cgroup2 root gives its children no " + ", ".join(missing))
    return layout


def unified(m):
    return m.path_in("unified")


def has(name):
    return name in hostprobe.child_files("unified")


# --- delegation -------------------------------------------------------------------------------

def test_limits_land_in_the_v2_files(box, layout):
    m = box.manager()
    resources = {"cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0",
                         "mems": "0"},
                 "memory": {"limit": 64 * MIB, "reservation": 32 * MIB},
                 "pids": {"limit": 50}}
    if has("memory.swap.max"):
        resources["memory"]["swap"] = 96 * MIB
    if has("cpu.max.burst"):
        resources["cpu"]["burst"] = 1000
    m.apply(resources)
    d = unified(m)
    assert _read(d, "cpu.weight") == str(shares_to_weight(512)) == "59"  # runc's curve
    assert _read(d, "cpu.max") == "20000 100000"
    assert _read(d, "cpuset.cpus") == "0" and _read(d, "cpuset.mems") == "0"
    assert _read(d, "memory.max") == str(64 * MIB)
    assert _read(d, "memory.low") == str(32 * MIB)  # the reservation, as runc maps it
    assert _read(d, "pids.max") == "50"
    if has("memory.swap.max"):
        assert _read(d, "memory.swap.max") == str(32 * MIB)  # memory+swap 96M, memory 64M
    if has("cpu.max.burst"):
        assert _read(d, "cpu.max.burst") == "1000"


def test_create_enables_the_controllers_in_the_parents_it_made(box, layout):
    """As runc's CreateCgroupPath: every ancestor below the root gets the root's controllers in
    cgroup.subtree_control, so the container's cgroup has their files (stats, OOM counter)
    even when its spec sets no limit."""
    m = box.manager()
    top = os.path.dirname(unified(m))
    enabled = set(_read(top, "cgroup.subtree_control").split())
    offered = set(_read(layout.unified.mountpoint, "cgroup.subtree_control").split())
    assert enabled == offered >= set(CONTROLLERS)
    for name in ("memory.events", "memory.stat", "pids.current", "cpu.weight"):
        assert os.path.exists(f"{unified(m)}/{name}"), name
    # the container's own cgroup is a leaf: it gives its children nothing
    assert _read(unified(m), "cgroup.subtree_control") == ""


def test_a_cgroup_below_a_populated_one_gets_placement_not_limits(box, layout):
    """No internal processes: the parent holds a process, so it cannot give its children the
    memory controller. Placement works (runc ignores the subtree_control refusal at create);
    a limit is an error naming the parent's subtree_control and the reason."""
    outer = box.manager("outer")
    p = box.start(outer, GATE + "sleep 60")
    inner = open_manager(f"/{box.name}/outer/inner")
    box.managers.insert(0, inner)  # removed before outer
    inner.create()
    q = box.start(inner, GATE + "sleep 60")
    assert q.pid in inner.pids() and p.pid not in inner.pids()
    assert {p.pid, q.pid} <= set(outer.pids())  # with their children (sleep)
    with pytest.raises(CgroupError) as info:
        inner.apply({"pids": {"limit": 9}})
    control = unified(outer) + "/cgroup.subtree_control"
    assert info.value.path == control, str(info.value)
    assert info.value.errno == errno.EBUSY
    assert "holds processes" in str(info.value)
    assert info.value.field == "linux.resources.pids.limit"


def test_relative_path_hangs_beside_our_own_cgroup_and_takes_limits(box, layout):
    """runc's fs2 (defaultDirPath): a relative cgroupsPath hangs from the parent of the
    caller's cgroup, which holds the caller and could give its children no controller."""
    m = open_manager(box.name + "/c1")
    box.managers.append(m)
    m.create()
    m.apply({"pids": {"limit": 9}})
    p = box.start(m, GATE + "sleep 60")
    own = read_proc_cgroup()["unified"].rstrip("/")
    assert read_proc_cgroup(p.pid)["unified"] == (os.path.dirname(own).rstrip("/")
                                                  + f"/{box.name}/c1")
    assert _read(unified(m), "pids.max") == "9"
    m.kill_all()
    assert p.wait(timeout=5) == -signal.SIGKILL


def test_unified_keys_are_written_as_they_are(box, layout):
    m = box.manager()
    m.apply({"unified": {"memory.high": str(40 * MIB), "pids.max": "12",
                         "cpu.weight": "300"}})
    d = unified(m)
    assert _read(d, "memory.high") == str(40 * MIB)
    assert _read(d, "pids.max") == "12"
    assert _read(d, "cpu.weight") == "300"


def _disk():
    """MAJ:MIN of a real disk (io.max takes only those), or None."""
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "ram", "zram", "nbd", "sr")):
            with open(f"/sys/block/{name}/dev") as f:
                return f.read().strip()
    return None


def test_unified_values_are_written_line_by_line(box, layout):
    """runc's WriteFileByLine: io.max takes one device a write, so a two-line value is two
    writes (as one write the kernel refuses it); an empty value is skipped (crun: "" would be
    0 to memory.max); the core's own limits are written."""
    m = box.manager()
    d = unified(m)
    dev = _disk()
    if dev is None or not os.path.exists(d + "/io.max"):
        pytest.skip("no disk or no io.max here")
    m.apply({"unified": {"io.max": f"{dev} rbps=1048576\n{dev} wiops=100\n",
                         "memory.max": "", "cgroup.max.depth": "2"}})
    assert _read(d, "io.max") == f"{dev} rbps=1048576 wbps=max riops=max wiops=100"
    assert _read(d, "memory.max") == "max"
    assert _read(d, "cgroup.max.depth") == "2"
    with pytest.raises(SpecError, match="cgroup.procs cannot be set through unified"):
        m.apply({"unified": {"cgroup.procs": str(os.getpid())}})


def test_swap_as_runc_computes_it(box, layout):
    if not has("memory.swap.max"):
        pytest.skip("no memory.swap.max here (swap accounting off)")
    m = box.manager()
    m.apply({"memory": {"limit": 64 * MIB, "swap": 64 * MIB}})  # memory+swap == memory
    assert _read(unified(m), "memory.swap.max") == "0"
    m.update({"memory": {"limit": -1}})  # unlimited memory, swap unset: swap unlimited too
    assert _read(unified(m), "memory.max") == "max"
    assert _read(unified(m), "memory.swap.max") == "max"
    m.update({"memory": {"limit": -1, "swap": 32 * MIB}})  # no limit to subtract: as it is
    assert _read(unified(m), "memory.swap.max") == str(32 * MIB)


def test_io_weight_goes_to_bfq_where_it_is_else_io_weight(box, layout):
    m = box.manager()
    d = unified(m)
    if not os.path.exists(d + "/io.bfq.weight") and not os.path.exists(d + "/io.weight"):
        pytest.skip("neither io.bfq.weight nor io.weight in this cgroup2 tree")
    m.apply({"blockIO": {"weight": 300}})
    if os.path.exists(d + "/io.bfq.weight"):
        assert _read(d, "io.bfq.weight").split()[-1] == "300"  # blkio's own range
    else:
        assert _read(d, "io.weight").split()[-1] == str(blkio_to_io_weight(300))


def test_v1_only_settings_are_refused_naming_the_field(box, layout):
    m = box.manager()
    for resources, field in (({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
                             ({"blockIO": {"leafWeight": 100}},
                              "linux.resources.blockIO.leafWeight")):
        with pytest.raises(SpecError) as info:
            m.apply({"pids": {"limit": 9}} | resources)
        assert info.value.field == field
    assert _read(unified(m), "pids.max") == "max"  # checked first, nothing written


def test_network_is_checked_and_not_applied(box, layout, capfd):
    """No net_cls/net_prio on v2: as runc 1.1, the section is accepted and the rest applied."""
    m = box.manager()
    m.apply({"pids": {"limit": 9}, "network": {"classID": 0x100001}})
    assert _read(unified(m), "pids.max") == "9"
    assert "linux.resources.network.classID: cgroup v2 has no net_cls controller: not " \
        "applied" in capfd.readouterr().err


# --- the kernel refuses ------------------------------------------------------------------------

def test_cpuset_of_missing_cpus_names_file_and_errno(box, layout):
    m = box.manager()
    with pytest.raises(CgroupError) as info:
        m.apply({"cpu": {"cpus": "99"}})
    assert info.value.errno in (errno.EINVAL, errno.ERANGE)
    assert info.value.path == unified(m)
    assert "write cpuset.cpus=99: " in str(info.value)


def test_check_before_update_reads_memory_current(box, layout):
    m = box.manager()
    box.start(m, "import sys; sys.stdin.readline(); a = b'x' * (24 << 20); "
                 "import time; time.sleep(60)", argv=(HOST_PYTHON, "-c"))
    assert _until(lambda: int(_read(unified(m), "memory.current")) > 20 << 20, 20)
    with pytest.raises(CgroupError) as info:
        m.update({"memory": {"limit": 8 << 20, "checkBeforeUpdate": True}})
    assert "below the current usage" in str(info.value)
    assert _read(unified(m), "memory.max") == "max"


# --- update, enforcement, freezer, kill -------------------------------------------------------

def test_update_changes_a_live_limit(box, layout):
    m = box.manager()
    m.apply({"pids": {"limit": 10}, "memory": {"limit": 64 * MIB},
             "cpu": {"quota": 10000, "period": 100000}})
    p = box.start(m, GATE + "sleep 60")
    m.update({"pids": {"limit": 20}, "cpu": {"quota": 50000, "period": 100000},
              "memory": {"limit": 128 * MIB},
              "devices": [{"allow": False, "access": "rwm"}]})  # ignored, as by runc update
    d = unified(m)
    assert _read(d, "pids.max") == "20"
    assert _read(d, "cpu.max") == "50000 100000"
    assert _read(d, "memory.max") == str(128 * MIB)
    assert p.poll() is None


def test_memory_hog_is_oom_killed_and_counted(box, layout):
    m = box.manager()
    m.apply({"memory": {"limit": 32 * MIB} | ({"swap": 32 * MIB} if has("memory.swap.max")
                                              else {})})
    assert m.oom_count() == 0
    with m.oom_watch() as watch:
        p = box.start(m, "import sys; sys.stdin.readline(); a = []\n"
                         "while True: a.append(b'x' * (1 << 20))", argv=(HOST_PYTHON, "-c"))
        assert p.wait(timeout=60) == -signal.SIGKILL
        assert watch.wait(timeout=5) >= 1
    assert m.oom_count() >= 1
    assert _flat(unified(m), "memory.events")["oom_kill"] == m.oom_count()
    memory = m.stats()["memory"]
    assert memory["usage"]["limit"] == 32 * MIB
    assert memory["usage"]["failcnt"] > 0  # memory.events "max": the limit was hit
    if has("memory.peak"):
        assert memory["usage"]["max"] > 30 * MIB


def test_fork_bomb_stops_at_pids_max_and_cgroup_kill_clears_it(box, layout):
    m = box.manager()
    m.apply({"pids": {"limit": 16}})
    box.start(m, GATE + "while :; do sleep 60 & done")
    d = unified(m)
    assert _until(lambda: _flat(d, "pids.events")["max"] > 0, 20)  # forks were refused
    assert int(_read(d, "pids.current")) <= 16
    assert m.stats()["pids"] == {"current": int(_read(d, "pids.current")), "limit": 16}
    m.kill_all()  # cgroup.kill: one write, forks cannot outrun it
    assert _until(lambda: m.pids() == [], 10)
    assert _flat(d, "cgroup.events")["populated"] == 0


def test_freeze_waits_for_frozen_and_thaw_resumes(box, layout):
    m = box.manager()
    p = box.start(m, GATE + "while :; do :; done")
    d = unified(m)
    m.freeze(timeout=10)
    assert m.frozen() and _flat(d, "cgroup.events")["frozen"] == 1
    assert _read(d, "cgroup.freeze") == "1"
    usage = _flat(d, "cpu.stat")["usage_usec"]
    time.sleep(0.3)  # a frozen burner uses no CPU meanwhile
    assert _flat(d, "cpu.stat")["usage_usec"] - usage < 20_000
    m.thaw()
    assert not m.frozen() and _read(d, "cgroup.freeze") == "0"
    assert _until(lambda: _flat(d, "cpu.stat")["usage_usec"] > usage + 20_000, 10)
    m.freeze(timeout=10)
    m.kill_all()  # cgroup.kill reaches frozen tasks
    assert p.wait(timeout=10) == -signal.SIGKILL
    m.thaw()


def test_cpu_burner_is_throttled(box, layout):
    m = box.manager()
    m.apply({"cpu": {"quota": 10000, "period": 100000}})
    box.start(m, GATE + "while :; do :; done")
    d = unified(m)
    assert _until(lambda: _flat(d, "cpu.stat")["nr_throttled"] >= 3, 20)
    throttling = m.stats()["cpu"]["throttling"]
    assert throttling["throttledPeriods"] >= 3
    assert throttling["periods"] >= throttling["throttledPeriods"]
    assert throttling["throttledTime"] > 0


def test_stats_and_pressure_are_the_cgroups_own(box, layout):
    m = box.manager()
    m.apply({"cpu": {"quota": 10000, "period": 100000}, "pids": {"limit": 8},
             "memory": {"limit": 64 * MIB}})
    # memory is charged where it is allocated, and the shell moved in after its start-up:
    # it takes some (a 1 MB variable) once in, so memory.current cannot read 0
    box.start(m, GATE + "x=$(head -c 1000000 /dev/zero | tr '\\0' a); while :; do :; done")

    def busy():  # the loop runs, head and tr are gone
        stats = m.stats()
        return stats["cpu"]["usage"]["total"] > 50_000_000 and stats["pids"]["current"] == 1
    assert _until(busy, 30)
    stats = m.stats()
    usage = stats["cpu"]["usage"]
    assert usage["user"] + usage["kernel"] > 0 and usage["percpu"] == []  # v2: no per-cpu
    assert stats["pids"] == {"current": 1, "limit": 8}
    memory = stats["memory"]
    assert memory["usage"]["limit"] == 64 * MIB
    assert 0 < memory["usage"]["usage"] <= 64 * MIB
    assert {"anon", "file", "kernel_stack"} <= set(memory["raw"])  # memory.stat
    assert stats["cpuset"]["cpus"] == list(range(os.cpu_count()))
    assert set(stats["blkio"]) >= {"ioServiceBytesRecursive", "ioServicedRecursive"}
    if not has("cpu.pressure"):
        return
    psi = m.pressure()
    assert set(psi) >= {"cpu", "memory", "io"}
    before = psi["cpu"]["some"]["total"]
    assert _until(lambda: m.pressure()["cpu"]["some"]["total"] > before, 10)
    assert stats["cpu"]["psi"]["some"].keys() == {"avg10", "avg60", "avg300", "total"}
    assert stats["memory"]["psi"] and stats["blkio"]["psi"]


def test_io_stat_counts_the_cgroups_own_reads(box, layout):
    """io.stat -> runc's blkio stats: 4 MiB read past the page cache (O_DIRECT) from the disk
    by a process in the cgroup show as Read bytes and ios of that device."""
    m = box.manager()
    dev = _disk()
    if dev is None or not os.path.exists(unified(m) + "/io.stat"):
        pytest.skip("no disk or no io.stat here")
    name = next(n for n in sorted(os.listdir("/sys/block"))
                if open(f"/sys/block/{n}/dev").read().strip() == dev)
    p = box.start(m, GATE + f"dd if=/dev/{name} of=/dev/null bs=64k count=64 iflag=direct")
    assert p.wait(timeout=60) == 0
    major, minor = map(int, dev.split(":"))
    blkio = m.stats()["blkio"]

    def entry(key, op):
        return [e["value"] for e in blkio[key]
                if (e["major"], e["minor"], e["op"]) == (major, minor, op)]
    assert entry("ioServiceBytesRecursive", "Read")[0] >= 4 * MIB, blkio
    assert entry("ioServicedRecursive", "Read")[0] >= 64, blkio
    line = next(li for li in _read(unified(m), "io.stat").splitlines() if li.startswith(dev))
    assert int(dict(kv.split("=") for kv in line.split()[1:])["rbytes"]) >= 4 * MIB


def test_destroy_leaves_nothing_and_the_parents_go_too(box, layout):
    m = box.manager()
    m.apply({"pids": {"limit": 5}, "memory": {"limit": 64 * MIB}})
    p = box.start(m, GATE + "sleep 60")
    m.kill_all()
    p.wait(timeout=5)
    m.destroy()
    assert not os.path.exists(f"{layout.unified.mountpoint}/{box.name}")
