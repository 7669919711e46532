"""Cgroups through ``kago-oci`` on a pure cgroup v2 host, black-box: limits at create,
``update``, ``events``, ``pause``/``resume``, ``kill --all``, OOM and delete, each checked for
the exit status, the message and the files in /sys/fs/cgroup/kago-<id>/.

test_cgroups_oci.py is the same on a hybrid or v1 host; this file is what a v2 host shows
instead (runc's fs2 driver and crun are the reference): cpu.weight from the shares, cpu.max,
memory.max/low/swap.max, io.bfq.weight or io.weight, pids.max; pause by cgroup.freeze until
cgroup.events says ``frozen 1``; ``kill --all`` by cgroup.kill; the OOM counter of
memory.events; stats from cpu.stat, memory.*, io.stat, pids.* and PSI. ``./dev test-v2`` runs
it in a QEMU guest with a pure v2 hierarchy (docs/cgroups-v2.md). Device rules on v2 (the eBPF
filter) are test_device_filter_kernel.py's.

Every test stops what it starts: containers are deleted by the ``oci`` fixture, which also
checks no state dir, mount or cgroup of them is left; every wait and loop is bounded.
"""

import json
import os
import subprocess
import time

import pytest

import hostprobe
from conftest import pid_alive, wait_for
from kago.linux.cgroups.resources import blkio_to_io_weight, shares_to_weight
from test_cgroups_oci import HOG, bundle_with, lines, start, stats  # noqa: F401
from test_lifecycle import SLEEPER, detached, error_message, failed, ok

V2 = not hostprobe.is_hybrid_or_v1() and "unified" in hostprobe.cgroup_mounts()
pytestmark = pytest.mark.skipif(not V2, reason="needs a pure cgroup v2 host: ./dev test-v2 "
                                "runs these in a v2 guest")

CG = "/sys/fs/cgroup"
MIB = 1 << 20
LIMIT_32M = {"memory": {"limit": 32 * MIB, "swap": 32 * MIB}}  # no swap: the limit is all
BURNER = ["sh", "-c", "while :; do :; done"]


def has(name):
    return name in hostprobe.child_files("unified")


def cgdir(cid):
    return f"{CG}/kago-{cid}"


def cgread(cid, name):
    with open(f"{cgdir(cid)}/{name}") as f:
        return f.read().strip()


def flat(cid, name):
    return {k: int(v) for k, v in (line.split() for line in cgread(cid, name).splitlines())}


def left_behind(oci, cid):
    return [p for p in (cgdir(cid), os.path.join(oci.root, cid)) if os.path.exists(p)]


# --- create and update -------------------------------------------------------------------------

def test_create_applies_resources_in_v2_files(oci, make_bundle):
    resources = {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0",
                         "mems": "0"},
                 "memory": {"limit": 128 * MIB, "reservation": 64 * MIB},
                 "pids": {"limit": 50}}
    b = bundle_with(make_bundle, SLEEPER, resources)
    cid = oci.new_id("cg")
    ok(detached(oci, "create", "--bundle", b.path, cid))
    pid = oci.state(cid)["pid"]
    assert cgread(cid, "cpu.weight") == str(shares_to_weight(512)) == "59"  # runc's curve
    assert cgread(cid, "cpu.max") == "50000 100000"
    assert cgread(cid, "cpuset.cpus") == "0" and cgread(cid, "cpuset.mems") == "0"
    assert cgread(cid, "memory.max") == str(128 * MIB)
    assert cgread(cid, "memory.low") == str(64 * MIB)
    assert cgread(cid, "pids.max") == "50"
    assert cgread(cid, "cgroup.procs").split() == [str(pid)]
    ok(oci("update", "--pids-limit", "60", cid))  # a created container can be updated
    assert cgread(cid, "pids.max") == "60"
    ok(oci("start", cid))
    assert oci.state(cid)["status"] == "running"


def test_update_flags_land_in_v2_files(oci, make_bundle):
    cid, _b, pid = start(oci, make_bundle)
    weight = os.path.exists(cgdir(cid) + "/io.bfq.weight") or \
        os.path.exists(cgdir(cid) + "/io.weight")
    optional = (["--memory-swap", "96m"] if has("memory.swap.max") else []) + \
        (["--blkio-weight", "300"] if weight else [])
    proc = ok(oci("update", "--memory", "64m", "--pids-limit", "30", "--cpu-quota", "20000",
                  "--cpu-period", "100000", "--cpuset-cpus", "0", "--cpu-share", "256",
                  *optional, cid))
    assert proc.stdout == "" and proc.stderr == ""
    assert cgread(cid, "memory.max") == str(64 * MIB)
    assert cgread(cid, "pids.max") == "30"
    assert cgread(cid, "cpu.max") == "20000 100000"
    assert cgread(cid, "cpu.weight") == str(shares_to_weight(256))
    assert cgread(cid, "cpuset.cpus") == "0"
    if has("memory.swap.max"):
        assert cgread(cid, "memory.swap.max") == str(32 * MIB)  # memory+swap 96m - 64m
        ok(oci("update", "--memory-swap", "128m", cid))  # alone: the limit the cgroup has
        assert cgread(cid, "memory.swap.max") == str(64 * MIB)
        assert cgread(cid, "memory.max") == str(64 * MIB)
    if os.path.exists(cgdir(cid) + "/io.bfq.weight"):
        assert cgread(cid, "io.bfq.weight").split()[-1] == "300"
    elif weight:
        assert cgread(cid, "io.weight").split()[-1] == str(blkio_to_io_weight(300))
    assert oci.state(cid)["status"] == "running" and pid_alive(pid)
    # a raw v2 key on update, and the v1-only swappiness refused naming its field
    ok(oci("update", "--resources", "-", cid,
           input=json.dumps({"unified": {"memory.high": str(48 * MIB)}})))
    assert cgread(cid, "memory.high") == str(48 * MIB)
    failed(oci("update", "--resources", "-", cid,
               input=json.dumps({"memory": {"swappiness": 10}})),
           "linux.resources.memory.swappiness: cgroup v2 has no equivalent")


def test_v1_only_setting_fails_create_cleanly(oci, make_bundle):
    b = bundle_with(make_bundle, SLEEPER, {"pids": {"limit": 10},
                                           "memory": {"disableOOMKiller": True}})
    cid = oci.new_id("cg")
    proc = failed(detached(oci, "create", "--bundle", b.path, cid),
                  "linux.resources.memory.disableOOMKiller: cgroup v2 has no equivalent")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert left_behind(oci, cid) == []


def test_network_section_is_not_applied_with_a_warning(oci, make_bundle):
    """v2 has no net_cls/net_prio: as runc 1.1, create accepts linux.resources.network and
    applies the rest (crun refuses it); kago-oci warns naming the field."""
    b = bundle_with(make_bundle, SLEEPER, {"pids": {"limit": 10},
                                           "network": {"classID": 0x100001}})
    cid = oci.new_id("cg")
    proc = ok(detached(oci, "create", "--bundle", b.path, cid))
    assert "level=warning" in proc.stderr, proc.stderr
    assert "linux.resources.network.classID: cgroup v2 has no net_cls controller: not " \
        "applied" in proc.stderr
    assert cgread(cid, "pids.max") == "10"


def own_cgroup():
    return open("/proc/self/cgroup").read().strip().split("::", 1)[1]


def test_limits_below_a_populated_cgroup_fail_create_saying_why(oci, make_bundle):
    """A cgroupsPath below the cgroup kago-oci runs in, which holds processes (this test's):
    cgroup v2 gives such a cgroup's children no controller. Without limits the container is
    placed there; with limits create fails in one line, leaving nothing."""
    own = own_cgroup()
    if own == "/":
        pytest.skip("this test runs in the root cgroup: nothing above a child holds processes")
    cid = oci.new_id("cg")

    def mutate(cfg, limits=None):
        cfg["linux"]["cgroupsPath"] = f"{own}/kago-{cid}"
        cfg["linux"]["resources"] = limits or {}
    b = make_bundle(SLEEPER, mutate=lambda c: mutate(c, {"pids": {"limit": 10}}))
    proc = failed(detached(oci, "create", "--bundle", b.path, cid), "cannot enable pids")
    msg = error_message(proc.stderr)
    assert f"{CG}{own}/cgroup.subtree_control" in msg and "holds processes" in msg, msg
    assert not os.path.exists(f"{CG}{own}/kago-{cid}")
    b = make_bundle(SLEEPER, mutate=mutate)
    ok(detached(oci, "create", "--bundle", b.path, cid))
    pid = oci.state(cid)["pid"]
    assert open(f"/proc/{pid}/cgroup").read().strip() == f"0::{own}/kago-{cid}"
    ok(oci("delete", "--force", cid))
    assert not os.path.exists(f"{CG}{own}/kago-{cid}")


def test_relative_cgroups_path_hangs_beside_our_cgroup_with_its_limits(oci, make_bundle):
    """runc's fs2 driver: a relative cgroupsPath hangs from the parent of the runtime's own
    cgroup (which holds processes, so its children could have no controller): the limits
    apply, and delete removes it."""
    parent = os.path.dirname(own_cgroup())
    cid = oci.new_id("cg")
    d = f"{CG}{parent.rstrip('/')}/kago-{cid}"

    def mutate(cfg):
        cfg["linux"]["cgroupsPath"] = f"kago-{cid}"
        cfg["linux"]["resources"] = {"pids": {"limit": 10}, "memory": {"limit": 64 * MIB}}
    ok(detached(oci, "create", "--bundle", make_bundle(SLEEPER, mutate=mutate).path, cid))
    pid = oci.state(cid)["pid"]
    assert open(f"/proc/{pid}/cgroup").read().strip() == f"0::{parent.rstrip('/')}/kago-{cid}"
    assert open(d + "/pids.max").read().strip() == "10"
    assert open(d + "/memory.max").read().strip() == str(64 * MIB)
    ok(oci("delete", "--force", cid))
    assert not os.path.exists(d)


def test_systemd_cgroups_path_is_refused_before_anything_is_made(oci, make_bundle):
    cid = oci.new_id("cg")
    b = make_bundle(SLEEPER, mutate=lambda c: c["linux"].update(
        cgroupsPath=f"system.slice:kago:{cid}"))
    proc = failed(detached(oci, "create", "--bundle", b.path, cid),
                  f'linux.cgroupsPath: "system.slice:kago:{cid}" is the systemd cgroup '
                  "driver's slice:prefix:name form; kago-oci has only the cgroupfs driver")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert left_behind(oci, cid) == []
    assert not [n for n in os.listdir(f"{CG}{os.path.dirname(own_cgroup())}") if cid in n]


def test_features_say_what_this_v2_host_offers(oci):
    doc = json.loads(ok(oci("features")).stdout)
    assert doc["linux"]["cgroup"] == {"v1": True, "v2": True, "systemd": False,
                                      "systemdUser": False, "rdma": True}
    annotations = doc["annotations"]
    assert annotations["io.github.kago.cgroup.host"] == "v2"
    assert annotations["io.github.kago.cgroup.v2.devices"] == "ebpf"  # root, CONFIG_CGROUP_BPF
    assert annotations["io.github.kago.mount.idmap"] == "true"  # Linux 6.1


def test_below_a_thread_root_create_fails_saying_why(oci, make_bundle):
    """Someone else's cgroup holds a process and hands the threaded pids controller down: it
    is a thread root, and a new child is "domain invalid", where no process can go (the start
    failed with a bare "cannot allocate memory"). create fails in one line naming the cgroup,
    leaving nothing."""
    cid = oci.new_id("cg")
    parent = f"{CG}/kago-{cid}-parent"
    os.mkdir(parent)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        with open(parent + "/cgroup.procs", "w") as f:
            f.write(str(holder.pid))
        with open(parent + "/cgroup.subtree_control", "w") as f:
            f.write("+pids")
        b = make_bundle(SLEEPER, mutate=lambda c: c["linux"].update(
            cgroupsPath=f"/kago-{cid}-parent/kago-{cid}"))
        proc = failed(detached(oci, "create", "--bundle", b.path, cid),
                      f"cgroup {parent}/kago-{cid}: cgroup type is domain invalid")
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not os.path.exists(f"{parent}/kago-{cid}")
        assert not os.path.exists(os.path.join(oci.root, cid))
    finally:
        holder.kill()
        holder.wait(5)
        assert wait_for(lambda: not open(parent + "/cgroup.procs").read().split(), 5)
        os.rmdir(parent)


# --- workloads ---------------------------------------------------------------------------------

def test_memory_hog_is_oom_killed_run_exits_137(oci, make_bundle):
    b = bundle_with(make_bundle, ["sh", "-c", HOG], LIMIT_32M)
    cid = oci.new_id("cg")
    proc = oci("run", "--bundle", b.path, cid, timeout=60)
    assert proc.returncode == 137, (proc.returncode, proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout
    assert not os.path.exists(cgdir(cid))  # run deleted it


def test_memory_hog_detached_state_says_oom_killed(oci, make_bundle):
    b = bundle_with(make_bundle, ["sh", "-c", HOG], LIMIT_32M)
    cid = oci.new_id("cg")
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 30)
    state = oci.state(cid)
    assert state["oomKilled"] is True and state["pid"] == 0
    events = flat(cid, "memory.events")
    assert events["oom_kill"] >= 1 and events["max"] > 0  # "max": runc's memory failcnt


def test_not_oom_killed_has_no_flag(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, ["true"], resources=LIMIT_32M)
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 10)
    assert "oomKilled" not in oci.state(cid)


def test_fork_bomb_stops_at_pids_max_and_kill_all_clears_it(oci, make_bundle):
    bomb = "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait"
    cid, _b, _pid = start(oci, make_bundle, resources={"pids": {"limit": 20}})
    ok(detached(oci, "exec", "-d", cid, "sh", "-c", bomb))
    assert wait_for(lambda: flat(cid, "pids.events")["max"] > 0, 30)
    assert int(cgread(cid, "pids.current")) <= 20
    listed = json.loads(ok(oci("ps", "--format", "json", cid)).stdout)
    assert 1 < len(listed) <= 20, listed
    ok(oci("kill", "--all", cid, "KILL"))  # cgroup.kill
    assert wait_for(lambda: cgread(cid, "cgroup.procs") == "", 10)
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 10)
    assert flat(cid, "cgroup.events")["populated"] == 0


def test_cpu_burner_is_throttled(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, BURNER,
                          resources={"cpu": {"quota": 10000, "period": 100000}})
    assert cgread(cid, "cpu.max") == "10000 100000"

    def throttled():
        return stats(oci, cid)["cpu"]["throttling"]["throttledPeriods"] > 0
    assert wait_for(throttled, 20, 0.5)
    throttling = stats(oci, cid)["cpu"]["throttling"]
    assert throttling["periods"] >= throttling["throttledPeriods"] > 0
    assert throttling["throttledTime"] > 0
    assert flat(cid, "cpu.stat")["nr_throttled"] >= throttling["throttledPeriods"]


def test_pause_freezes_and_resume_thaws(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, BURNER)
    ok(oci("pause", cid))
    assert oci.state(cid)["status"] == "paused"
    assert cgread(cid, "cgroup.freeze") == "1" and flat(cid, "cgroup.events")["frozen"] == 1
    usage = flat(cid, "cpu.stat")["usage_usec"]
    time.sleep(0.3)
    assert flat(cid, "cpu.stat")["usage_usec"] - usage < 20_000  # the burner stands still
    failed(oci("pause", cid), "container not running or created: paused")
    ok(oci("update", "--pids-limit", "25", cid))  # a paused container can still be updated
    assert cgread(cid, "pids.max") == "25"
    assert stats(oci, cid)["pids"]["limit"] == 25
    ok(oci("resume", cid))
    assert oci.state(cid)["status"] == "running"
    assert cgread(cid, "cgroup.freeze") == "0" and flat(cid, "cgroup.events")["frozen"] == 0
    assert wait_for(lambda: flat(cid, "cpu.stat")["usage_usec"] > usage + 20_000, 10)
    failed(oci("resume", cid), "container not paused")
    ok(oci("pause", cid))
    ok(oci("kill", "--all", cid, "KILL"))  # cgroup.kill reaches frozen tasks
    assert wait_for(lambda: cgread(cid, "cgroup.procs") == "", 10)


def test_events_stats_sections_and_psi(oci, make_bundle):
    cid, _b, pid = start(oci, make_bundle, BURNER, resources={
        "memory": {"limit": 64 * MIB}, "pids": {"limit": 33}})
    assert wait_for(lambda: flat(cid, "cpu.stat")["usage_usec"] > 0, 10)
    data = stats(oci, cid)
    assert {"cpu", "memory", "pids", "blkio", "cpuset"} <= set(data)
    assert data["memory"]["usage"]["limit"] == 64 * MIB
    assert 0 < data["memory"]["usage"]["usage"] <= 64 * MIB
    assert "anon" in data["memory"]["raw"]  # memory.stat
    assert data["pids"] == {"current": 1, "limit": 33}
    assert data["cpu"]["usage"]["total"] > 0 and data["cpu"]["usage"]["percpu"] == []
    assert data["cpuset"]["cpus"] == list(range(os.cpu_count()))
    assert "ioServiceBytesRecursive" in data["blkio"]
    if not has("cpu.pressure"):
        return
    for section in ("cpu", "memory", "blkio"):
        psi = data[section]["psi"]
        for kind in ("some", "full"):
            assert set(psi[kind]) == {"avg10", "avg60", "avg300", "total"}, psi
    assert str(pid) in cgread(cid, "cgroup.procs").split()


def test_stats_of_a_container_without_limits(oci, make_bundle):
    """memory and pids files are there without any limit (the controllers are enabled for
    every container, as runc does): usage is reported, limits read as none."""
    cid, _b, _pid = start(oci, make_bundle)
    data = stats(oci, cid)
    assert data["memory"]["usage"]["usage"] > 0
    assert data["memory"]["usage"]["limit"] == (1 << 64) - 1  # "max"
    assert data["pids"] == {"current": 1, "limit": 0}
    assert oci.state(cid).get("oomKilled") is None


def test_events_interval_prints_stats_then_oom(oci, make_bundle, lines):
    cid, _b, _pid = start(oci, make_bundle, resources=LIMIT_32M)
    events = lines("--root", oci.root, "events", "--interval", "2s", cid)
    first = events.next(15)
    assert first["type"] == "stats" and first["data"]["memory"]["usage"]["limit"] == 32 * MIB
    hog = oci("exec", cid, "sh", "-c", HOG, timeout=60)
    assert hog.returncode == 137, (hog.returncode, hog.stderr)
    # the stats lines of the seconds the hog ran are queued before the oom line: read past
    # them (under emulation the hog can run for many intervals), bounded
    seen = []
    while {"type": "oom", "id": cid} not in seen and len(seen) < 30:
        seen.append(events.next(15))
    assert {"type": "oom", "id": cid} in seen, [e["type"] for e in seen]
    assert oci.state(cid)["status"] == "running"  # the init (sleep) was not the one killed
    events.stop()


def test_delete_removes_the_cgroup(oci, make_bundle, tmp_path):
    cid, _b, pid = start(oci, make_bundle, resources={"pids": {"limit": 40},
                                                      "memory": {"limit": 64 * MIB}})
    pid_file = tmp_path / "exec.pid"
    ok(detached(oci, "exec", "-d", "--pid-file", pid_file, cid, "sleep", "100"))
    exec_pid = int(pid_file.read_text())
    assert str(exec_pid) in cgread(cid, "cgroup.procs").split()
    ok(oci("delete", "--force", cid))
    assert wait_for(lambda: not pid_alive(pid) and not pid_alive(exec_pid), 10)
    assert left_behind(oci, cid) == []


def test_delete_after_a_crash_removes_the_cgroup_left_behind(oci, make_bundle):
    """The container's processes die under it (SIGKILL from outside, the OOM killer, a host
    agent): the cgroup and the state are left. delete, without --force, removes both."""
    cid, _b, pid = start(oci, make_bundle, resources={"pids": {"limit": 40},
                                                      "memory": {"limit": 64 * MIB}})
    os.kill(pid, 9)
    assert wait_for(lambda: not pid_alive(pid), 10)
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 10)
    assert os.path.isdir(cgdir(cid)) and cgread(cid, "cgroup.procs") == ""
    ok(oci("delete", cid))
    assert left_behind(oci, cid) == []


def test_exec_joins_the_inits_cgroup_once_the_container_hands_controllers_down(
        oci, make_bundle, tmp_path):
    """What systemd or a nested runtime does inside: move the init into a child cgroup and
    enable controllers for the children. No process may join the container's cgroup itself
    after that (EBUSY): as runc, exec joins the init's cgroup."""
    cid, _b, pid = start(oci, make_bundle, resources={"pids": {"limit": 40}})
    os.mkdir(cgdir(cid) + "/init.scope")
    with open(cgdir(cid) + "/init.scope/cgroup.procs", "w") as f:
        f.write(str(pid))
    with open(cgdir(cid) + "/cgroup.subtree_control", "w") as f:
        f.write("+pids")
    pid_file = tmp_path / "exec.pid"
    ok(detached(oci, "exec", "-d", "--pid-file", pid_file, cid, "sleep", "100"))
    exec_pid = int(pid_file.read_text())
    assert open(f"/proc/{exec_pid}/cgroup").read() == f"0::/kago-{cid}/init.scope\n"
    assert ok(oci("exec", cid, "echo", "hi")).stdout == "hi\n"
    ok(oci("delete", "--force", cid))  # the child cgroup goes with the container's
    assert left_behind(oci, cid) == []
