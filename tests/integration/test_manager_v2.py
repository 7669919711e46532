"""The manager (``kago run``, ``stats``, ``up``/``reload``/``down``, a definition's agent) on a
pure cgroup v2 host: what it asks for lands in the container's v2 files and what it reports
comes from them.

- ``kago run -d`` with --memory, --memory-swap, --cpus, --cpu-shares, --cpuset-cpus and
  --pids-limit: memory.max, memory.swap.max, cpu.max, cpu.weight, cpuset.cpus and pids.max of
  /sys/fs/cgroup/kago-<id>; ``kago stats`` shows its CPU, memory (with its limit), PIDs and
  PSI; ``kago rm`` removes the cgroup;
- an OOM kill under --memory: exit 137 and ``OOMKilled`` (from memory.events);
- ``kago up`` of the 100-container scenario cut to a few (ID ranges, own PID namespaces, a
  cpu.max quota, HTTP on 127.0.0.1), ``kago reload`` changing cpu.max without a restart,
  ``kago down`` leaving no cgroup;
- a definition's PSI (``on_pressure``) and OOM (``on_oom``) hooks fire on v2, and a PSI hook
  stops when its container ends.

``./dev test-v2`` runs it in the pure v2 guest (docs/cgroups-v2.md); on a hybrid or v1 host it
is skipped (test_manager_verbs.py and test_manager_define.py run there). Every wait is bounded
and ends on the condition it waits for, never on a fixed sleep: Python runs 10-15x slower in
the emulated guest. Every test leaves nothing behind (the ``kmt`` fixture checks).
"""

import json
import os
import shutil
import tempfile
import time

import pytest

import hostprobe
from conftest import pid_alive, wait_for
from test_manager_define import agent_pid, cpu_ticks, definition, lines
from kago.manager.testing import wait_http

V2 = not hostprobe.is_hybrid_or_v1() and "unified" in hostprobe.cgroup_mounts()
pytestmark = pytest.mark.skipif(not V2, reason="needs a pure cgroup v2 host: ./dev test-v2 "
                                "runs these in a v2 guest")

CG = "/sys/fs/cgroup"
MIB = 1 << 20


@pytest.fixture(scope="module")
def kago_env(rootfs_cache):
    """One manager root for the file (importing the image costs ~10 s in the guest).

    Its busybox has a file of uid 1000, outside the definitions' 100-ID ranges: the store
    must shift IDs with idmapped layers (on Linux 6.1, lowers attached for the overlay mount),
    which map what a range does not cover to nobody, not by chown, which refuses. So the root
    is on disk (/var/tmp), not on the suite's tmpfs: tmpfs takes idmapped mounts only from 6.3.
    """
    from kago.manager.testing import KagoEnv
    image = rootfs_cache
    base = tempfile.mkdtemp(prefix="kmt-v2-", dir="/var/tmp")
    os.chmod(base, 0o755)  # a container in its own user namespace reaches its files
    try:
        yield KagoEnv(base, rootfs_cache=image)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(name="kmt")
def kmt_fixture(kago_env):
    """The file's manager; after each test every container removed, the supervisor stopped
    and nothing of them left (mounts, netns, links, nft table, cgroups, processes)."""
    yield kago_env
    ids = [r["id"] for r in kago_env.manager().records.all()]
    from kago.manager import testing
    testing.MADE_IDS.update(ids)
    kago_env.cleanup()
    left = kago_env.leftovers(ids)
    assert not left, f"test left things behind: {left}"


def has(name):
    return name in hostprobe.child_files("unified")


def cgread(cid, name):
    with open(f"{CG}/kago-{cid}/{name}") as f:
        return f.read().strip()


def test_run_limits_land_in_v2_files_and_stats_read_them(kmt):
    swap = ["--memory-swap", "64m"] if has("memory.swap.max") else []
    cid = kmt.kago("run", "-d", "--name", "kmt-lim", "--network", "none", "--memory", "64m",
                   *swap, "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
                   "--pids-limit", "20", "busybox", "sh", "-c",
                   "while :; do :; done", check=True).stdout.strip()
    assert cgread(cid, "memory.max") == str(64 * MIB)
    if swap:
        assert cgread(cid, "memory.swap.max") == "0"  # memory+swap == memory: no swap
    assert cgread(cid, "cpu.max") == "50000 100000"
    assert cgread(cid, "cpu.weight") == "59"  # current runc's curve (1024 shares -> 100)
    assert cgread(cid, "cpuset.cpus") == "0"
    assert cgread(cid, "pids.max") == "20"
    assert kmt.inspect("kmt-lim")["Kago"]["CgroupsPath"] == f"/kago-{cid}"
    # docker's stats columns, from cpu.stat, memory.*, pids.current and the PSI files
    row = json.loads(kmt.kago("stats", "--no-stream", "--format", "{{json .}}", "kmt-lim",
                              check=True).stdout)
    assert row["Name"] == "kmt-lim" and row["PIDs"] == "1"
    # stats' two readings are 0.5 s apart, too close for CFS periods of 100 ms under
    # emulation: it shows the burner burning; cpu.stat over 2 s shows the quota holding
    assert float(row["CPUPerc"].rstrip("%")) > 5.0, row
    usage, throttled, wall = _cpu_usage(cid, 2.0)
    assert usage / wall <= 0.5 * 1.2 and throttled > 0, (usage, throttled, wall)
    used, limit = row["MemUsage"].split(" / ")
    assert limit == "64MiB" and used.endswith(("KiB", "MiB")), row
    cpu, memory, io = row["Pressure"].split("/")
    assert all(float(v) >= 0 for v in (cpu, memory, io)), row  # numbers, not "--"
    kmt.kago("rm", "-f", "kmt-lim", check=True)
    assert not os.path.exists(f"{CG}/kago-{cid}")


def _cpu_usage(cid, seconds):
    """(CPU seconds used, periods throttled, wall seconds) of the cgroup over ``seconds``."""
    def stat():
        return time.monotonic(), {k: int(v) for k, v in (ln.split() for ln in
                                                         cgread(cid, "cpu.stat").splitlines())}
    t0, a = stat()
    time.sleep(seconds)  # a measuring window, not a wait for something
    t1, b = stat()
    return ((b["usage_usec"] - a["usage_usec"]) / 1e6, b["nr_throttled"] - a["nr_throttled"],
            t1 - t0)


def test_oom_kill_under_memory_limit_is_137_and_oomkilled(kmt):
    swap = ["--memory-swap", "16m"] if has("memory.swap.max") else []
    proc = kmt.kago("run", "--name", "kmt-oom", "--network", "none", "--memory", "16m", *swap,
                    "busybox", "sh", "-c",
                    "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
                    timeout=120)
    assert proc.returncode == 137, proc.stderr
    assert "survived" not in proc.stdout
    doc = kmt.inspect("kmt-oom")
    assert doc["State"]["OOMKilled"] is True and doc["State"]["ExitCode"] == 137
    assert not os.path.exists(f"{CG}/kago-{doc['Id']}")


WEB = """
from kago.manager.define import Container, id_range, tcp

for port in range({first}, {first} + {count}):
    web = Container(f"kmt-web-{{port}}", image="busybox", network="host",
                    command=["httpd", "-f", "-p", str(port), "-u", "33:33", "-h", "/etc"],
                    ids=id_range(port * 100, 100),
                    cgroup={{"cpu.max": env.get("CPU", "30000 100000")}},
                    stop_signal="SIGKILL")
    web.ready(tcp(port), timeout=30)
"""


def test_up_reload_down_id_ranges_and_cpu_max(kmt, tmp_path):
    first, count = 18511, 3
    path = definition(tmp_path, WEB.format(first=first, count=count))
    kmt.kago("up", path, check=True, timeout=180)
    pids, ids = {}, {}
    for port in range(first, first + count):
        assert wait_http(port, "/hostname", timeout=30) == f"kmt-web-{port}\n"
        doc = kmt.inspect(f"kmt-web-{port}")
        cid = ids[port] = doc["Id"]
        pid = pids[port] = doc["State"]["Pid"]
        with open(f"/proc/{pid}/status") as f:
            uid = next(line for line in f if line.startswith("Uid:")).split()[1]
        assert int(uid) == port * 100 + 33  # httpd dropped to 33 inside its range
        assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        assert doc["Kago"]["Rootfs"]["shift"] == "idmapped"
        assert cgread(cid, "cpu.max") == "30000 100000"
        with open(f"/proc/{pid}/cgroup") as f:
            assert f.read().strip() == f"0::/kago-{cid}"
    out = kmt.kago("reload", "-e", "CPU=50000 100000", path, check=True, timeout=120).stdout
    for port in range(first, first + count):
        assert f"kmt-web-{port}: limits applied" in out
        assert cgread(ids[port], "cpu.max") == "50000 100000"
        assert kmt.inspect(f"kmt-web-{port}")["State"]["Pid"] == pids[port]  # not restarted
    kmt.kago("down", "-t", "1", path, check=True, timeout=120)
    assert kmt.manager().records.all() == []
    assert [cid for cid in ids.values() if os.path.exists(f"{CG}/kago-{cid}")] == []
    assert not any(pid_alive(p) for p in pids.values())


WATCHED = r"""
from kago.manager.define import Container, bind

def write(text):
    with open(env["LOG"], "a") as f:
        f.write(text + "\n")

shared = [bind(env["SHARED"], "/shared")]
busy = Container("kmt-busy", image="busybox", network="none", mounts=shared,
                 command=["sh", "-c", "while [ ! -e /shared/stop ]; do :; done"],
                 cgroup={"cpu.max": "5000 100000"})
hog = Container("kmt-hog", image="busybox", network="none", mounts=shared,
                stop_signal="SIGKILL", cgroup={"memory.max": "16m", NO_SWAP},
                command=["sh", "-c", "while :; do if [ -e /shared/hog ]; then rm /shared/hog; "
                                     "dd if=/dev/zero of=/dev/null bs=64M count=1; "
                                     "fi; sleep 0.1; done"])

@busy.on_pressure("cpu", stall_ms=100, window_ms=2000)
def starved(c):
    write("cpu pressure")

@busy.on("exit")
def ended(c, status):
    write(f"exit {status}")

@hog.on_oom
def killed(c):
    write("oom")
"""


def oom_story(kmt, path, hog, log):
    """What a missing OOM hook saw: the hog's memory.events, the hook log, the agent's log."""
    from kago.manager.define.group import Group
    try:
        with open(f"{hog}/memory.events") as f:
            events = f.read().replace("\n", "; ")
    except OSError as e:
        events = str(e)
    group = Group(kmt.manager(), path)
    try:
        with open(group.file[:-5] + ".log") as f:
            agent = f.read()[-2000:]
    except OSError as e:
        agent = str(e)
    hooks = log.read_text() if log.exists() else "(none)"
    return f"memory.events: {events}\nhooks: {hooks}\nagent log: {agent}"


def holds(pid, path):
    """Whether process ``pid`` has ``path`` open (the agent's armed trigger or watch)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            continue
    return False


def test_agent_pressure_and_oom_hooks_on_v2_and_none_after_the_end(kmt, tmp_path):
    log, shared = tmp_path / "watch.log", tmp_path / "shared"
    shared.mkdir()
    no_swap = '"memory.swap.max": "0"' if has("memory.swap.max") else '"memory.high": "max"'
    path = definition(tmp_path, WATCHED.replace("NO_SWAP", no_swap))
    kmt.kago("up", "-e", f"LOG={log}", "-e", f"SHARED={shared}", path, check=True, timeout=120)
    agent = agent_pid(kmt, path)
    busy, hog = (f"{CG}/kago-{kmt.inspect(n)['Id']}" for n in ("kmt-busy", "kmt-hog"))
    # armed: a PSI trigger on the burner's cpu.pressure, the hog's memory.events watched
    assert wait_for(lambda: holds(agent, f"{busy}/cpu.pressure")
                    and holds(agent, f"{hog}/memory.events"), 60, 0.1)
    assert wait_for(lambda: lines(log, "cpu pressure") >= 1, 60, 0.1), log
    # one 64 MiB read buffer past memory.max: an OOM kill in the hog within a second even under
    # emulation (a shell variable grown 128 bytes a read took 3 s there, and more under load)
    (shared / "hog").touch()
    assert wait_for(lambda: lines(log, "oom") >= 1, 60, 0.1), oom_story(kmt, path, hog, log)
    with open(f"{hog}/memory.events") as f:
        assert int(dict(ln.split() for ln in f)["oom_kill"]) >= 1
    # the burner ends; its cgroup goes, and with it the trigger, which then polls as ready
    # (POLLPRI|POLLERR) for ever: the agent drops it instead of firing on it
    (shared / "stop").touch()
    assert wait_for(lambda: lines(log, "exit 0") == 1, 60, 0.1), log.read_text()
    assert wait_for(lambda: not holds(agent, f"{busy}/cpu.pressure"), 30, 0.1)
    # after its exit hooks the agent releases the container (unmounts its rootfs): idle next
    busy_id = os.path.basename(busy)[len("kago-"):]
    assert wait_for(lambda: kmt.held(busy_id) == [], 60, 0.1), kmt.held(busy_id)
    fired, cpu = lines(log, "cpu pressure"), cpu_ticks(agent)
    time.sleep(2)  # nothing to wait for: the agent's loop wakes at least twice meanwhile
    assert lines(log, "cpu pressure") == fired, log.read_text()
    assert cpu_ticks(agent) - cpu < 50, "the agent spins after its container ended"
    kmt.kago("down", "-t", "0", path, check=True, timeout=120)
    assert wait_for(lambda: not pid_alive(agent), 30, 0.1)
