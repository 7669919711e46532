"""Cgroups through ``kago-oci``, black-box: limits at create, ``update``, ``events``,
``pause``/``resume``, ``kill --all`` and OOM, each checked for the exit status, the message and
the files in /sys/fs/cgroup/<controller>/kago-<id>/.

Written for a hybrid (or v1) host: the v1 controllers under /sys/fs/cgroup/<controller>, and
a cgroup2 tree at /sys/fs/cgroup/unified with no controller but the PSI files. So here
``linux.resources`` lands in v1 files, ``unified`` keys are translated to v1, and PSI is read
from the container's own directory in the cgroup2 tree. What differs between kernels is probed
(tests/hostprobe.py): the hierarchies mounted, the blkio weight file (CFQ's blkio.weight, BFQ's
blkio.bfq.weight, or neither where the disks use mq-deadline/none: then a weight must fail
create cleanly), swap accounting (memory.memsw.*), PSI, hugetlb and net_cls.

v2 device rules (an eBPF filter) are tested on this host's cgroup2 tree, through kago-oci too,
in test_device_filter_kernel.py.

On a pure v2 host (``./dev test-v2``'s guest) test_cgroups_oci_v2.py and
test_cgroups_limits_v2.py test what a hybrid host cannot show (no v2 controller is usable
here): the v2 controller writes (cpu.weight, cpu.max, cpu.max.burst, cpuset.*,
memory.max/low/swap.max, io.weight or io.bfq.weight, pids.max), enabling controllers in
cgroup.subtree_control, v2 statistics (memory.current/memory.stat/io.stat), the v2 OOM counter
(memory.events), the v2 freezer (cgroup.freeze; the v1 freezer wins on hybrid) and cgroup.kill.
hugetlb.*.max, rdma.max and the conversion formulas are tested as pure functions only.
hugetlb and net_cls have no controller on this host either: here they are only checked to fail
clearly, naming the field; real-time cpu (the host gives /kago no rt runtime), net_prio and
rdma are not exercised through kago-oci.

Every test stops what it starts: containers are deleted by the ``oci`` fixture, which also
checks no state dir, mount or cgroup of them is left; every wait and loop is bounded.
"""

import json
import os
import select
import subprocess
import time

import pytest
import hostprobe
from conftest import KAGO_OCI, pid_alive, wait_for
from test_lifecycle import SLEEPER, detached, error_message, failed, ok

pytestmark = pytest.mark.skipif(not hostprobe.is_hybrid_or_v1(),
                                reason="reads v1 controller files; this host is cgroup v2 only")

CG = "/sys/fs/cgroup"
MIB = 1 << 20
LIMIT_32M = {"memory": {"limit": 32 * MIB, "swappiness": 0}}  # what the HOG meets
HIERARCHIES = hostprobe.hierarchies()  # every one a container is placed in, unified included
WEIGHT_FILE = hostprobe.blkio_weight_file()  # CFQ's, BFQ's or None
SWAP = hostprobe.has_cgroup_file("memory", "memory.memsw.limit_in_bytes")
PSI = hostprobe.has_cgroup_file("unified", "cpu.pressure")
# runc's default device rules, as devices.list shows them once deny-all came first
IMPLIED = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
           "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]
BURNER = ["sh", "-c", "while :; do :; done"]
# doubles a shell string until the memory cgroup's OOM killer stops it (2**40 bytes is the bound);
# the limits it meets come with swappiness 0, so that a host with swap does not page it out
HOG = "x=a; i=0; while [ $i -lt 40 ]; do x=$x$x; i=$((i+1)); done; echo survived"


# --- helpers ---------------------------------------------------------------------------------

def cgdir(hierarchy, cid):
    return f"{CG}/{hierarchy}/kago-{cid}"


def cgread(hierarchy, cid, name):
    with open(f"{cgdir(hierarchy, cid)}/{name}") as f:
        return f.read().strip()


def cgroup_dirs(cid):
    """Every directory of the container in any hierarchy (v1, name=systemd and unified); the
    symlinks some hosts add (cpu -> cpu,cpuacct) are not hierarchies of their own."""
    return sorted(d for h in os.listdir(CG) if not os.path.islink(f"{CG}/{h}")
                  for d in [cgdir(h, cid)] if os.path.isdir(d))


def bundle_with(make_bundle, args=SLEEPER, resources=None, **kw):
    def mutate(cfg):
        if resources is not None:
            cfg["linux"]["resources"] = resources
        if kw.get("devices") is not None:
            cfg["linux"]["devices"] = kw["devices"]
        cfg["mounts"] += kw.get("mounts") or []
    return make_bundle(args, mutate=mutate)


def start(oci, make_bundle, args=SLEEPER, resources=None, **kw):
    """A running container with ``resources``: (id, bundle, init pid)."""
    b = bundle_with(make_bundle, args, resources, **kw)
    cid = oci.new_id("cg")
    ok(detached(oci, "create", "--bundle", b.path, cid))
    ok(oci("start", cid))
    return cid, b, oci.state(cid)["pid"]


def left_behind(oci, cid):
    """What a failed create must not leave: cgroup dirs anywhere and the state dir."""
    return cgroup_dirs(cid) + [p for p in [os.path.join(oci.root, cid)] if os.path.exists(p)]


def stats(oci, cid):
    event = json.loads(ok(oci("events", "--stats", cid)).stdout)
    assert event["type"] == "stats" and event["id"] == cid
    return event["data"]


def pressure_total(cid, resource):
    with open(f"{cgdir('unified', cid)}/{resource}.pressure") as f:
        return int(f.readline().split("total=")[1])


def devices_list(cid):
    return cgread("devices", cid, "devices.list").splitlines()


class Lines:
    """A command's stdout read line by line with a deadline (``events`` never ends itself)."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""

    def next(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise AssertionError(f"no line within {timeout}s "
                                     f"(exit {self.proc.poll()}, {self.buf!r})")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"stdout closed: exit {self.proc.wait(5)}: "
                                     f"{self.proc.stderr.read().decode()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def lines():
    made = []

    def factory(*argv):
        made.append(Lines([KAGO_OCI, *argv]))
        return made[-1]
    yield factory
    for reader in made:
        reader.stop()


# --- 1. create applies linux.resources -----------------------------------------------------

LIMITS = {
    "devices": [{"allow": False, "access": "rwm"}],
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "memory": {"limit": 128 * MIB, "reservation": 64 * MIB, "swappiness": 10},
    "pids": {"limit": 50},
} | ({"blockIO": {"weight": 300}} if WEIGHT_FILE else {})


def test_create_applies_resources_in_every_v1_controller(oci, make_bundle):
    b = bundle_with(make_bundle, SLEEPER, LIMITS)
    cid = oci.new_id("cg")
    ok(detached(oci, "create", "--bundle", b.path, cid))
    pid = oci.state(cid)["pid"]
    assert cgread("cpu", cid, "cpu.shares") == "512"
    assert cgread("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert cgread("cpu", cid, "cpu.cfs_period_us") == "100000"
    assert cgread("cpuset", cid, "cpuset.cpus") == "0"
    assert cgread("cpuset", cid, "cpuset.mems") == "0"
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(128 * MIB)
    assert cgread("memory", cid, "memory.soft_limit_in_bytes") == str(64 * MIB)
    assert cgread("memory", cid, "memory.swappiness") == "10"
    assert cgread("pids", cid, "pids.max") == "50"
    if WEIGHT_FILE:  # CFQ's or BFQ's, whichever the host has (CFQ left linux in 5.0)
        assert cgread("blkio", cid, WEIGHT_FILE).split()[-1] == "300"
    # the init is in the container's cgroup of every hierarchy, the cgroup2 tree included
    for h in HIERARCHIES:
        assert str(pid) in cgread(h, cid, "cgroup.procs").split(), h
    ok(oci("update", "--pids-limit", "60", cid))  # a created container can be updated
    assert cgread("pids", cid, "pids.max") == "60"
    ok(oci("start", cid))
    assert oci.state(cid)["status"] == "running"
    assert cgread("cpuset", cid, "cpuset.cpus") == "0"  # start changes nothing


@pytest.mark.skipif(WEIGHT_FILE is not None, reason=f"this host's blkio has {WEIGHT_FILE}")
def test_blkio_weight_without_cfq_or_bfq_fails_create_cleanly(oci, make_bundle):
    """Block devices on mq-deadline or none: blkio has only blkio.throttle.*. runc 1.1.5
    fails the same create (ENOENT on blkio.bfq.weight); kago says which field and why."""
    b = bundle_with(make_bundle, SLEEPER, {"pids": {"limit": 10}, "blockIO": {"weight": 300}})
    for command in ("create", "run"):
        cid = oci.new_id("cg")
        proc = failed(detached(oci, command, "--bundle", b.path, cid),
                      "linux.resources.blockIO.weight: not supported on this host: the blkio "
                      "hierarchy has neither blkio.weight nor blkio.bfq.weight "
                      "(no CFQ or BFQ I/O scheduler)")
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert left_behind(oci, cid) == []
    cid, _b, _pid = start(oci, make_bundle)
    failed(oci("update", "--blkio-weight", "300", cid), "has neither blkio.weight nor")
    assert oci.state(cid)["status"] == "running"


def test_default_deny_all_keeps_the_default_devices(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle)  # the default spec: devices [deny all]
    assert devices_list(cid) == IMPLIED
    proc = ok(oci("exec", cid, "sh", "-c",
                  "echo x > /dev/null && head -c 16 /dev/urandom | wc -c && "
                  "head -c 8 /dev/zero | wc -c && echo y > /dev/full; echo full=$?"))
    assert proc.stdout.split() == ["16", "8", "full=1"], proc.stdout
    assert "No space left on device" in proc.stderr  # /dev/full opened: the cgroup allowed it
    # /dev/tty: no controlling terminal here, so ENXIO from the tty layer, not EPERM
    tty = oci("exec", cid, "sh", "-c", "exec 3<>/dev/tty")
    assert tty.returncode != 0 and "No such device or address" in tty.stderr, tty.stderr


def test_spec_devices_are_usable_only_as_the_spec_rules_allow(oci, make_bundle):
    """A ``linux.devices`` node is made but, as with runc 1.1, gets no allow rule of its own:
    usable as the spec's rules say (``c 10:229 r``: open for reading, not for writing), and a
    node with no rule is refused by the device cgroup (EPERM at open, before any driver)."""
    devices = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 0o666, "uid": 0, "gid": 0},
               {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11,
                "fileMode": 0o644, "uid": 0, "gid": 0}]
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "r"}]
    cid, _b, _pid = start(oci, make_bundle, devices=devices, resources={"devices": rules})
    assert devices_list(cid) == ["c 10:229 r"] + IMPLIED
    read = oci("exec", cid, "sh", "-c", "exec 3</dev/fuse && echo opened")
    # opened, or refused by the driver (ENODEV without the module), never by the cgroup
    assert "Operation not permitted" not in read.stderr, read.stderr
    write = oci("exec", cid, "sh", "-c", "exec 3>/dev/fuse && echo opened")
    assert write.returncode != 0 and "Operation not permitted" in write.stderr, write.stderr
    kmsg = oci("exec", cid, "sh", "-c", "exec 3</dev/kmsg && echo opened")
    assert kmsg.returncode != 0 and "Operation not permitted" in kmsg.stderr, kmsg.stderr


def test_implied_rules_come_after_the_spec_rules(oci, make_bundle):
    """runc's order (specconv): the spec's rules, then the default allow rules. So a spec rule
    denying c 1:3 does not take /dev/null (or another node of 1:3) away: the default allow for
    1:3 is written after it. kago does the same."""
    devices = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                "fileMode": 0o666, "uid": 0, "gid": 0}]
    rules = [{"allow": False, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    cid, _b, _pid = start(oci, make_bundle, devices=devices, resources={"devices": rules})
    assert "c 1:3 rwm" in devices_list(cid)
    proc = ok(oci("exec", cid, "sh", "-c", "echo x > /dev/mynull && echo x > /dev/null && "
                  "echo usable"))
    assert proc.stdout == "usable\n"


# --- 2. v2 vocabulary on a hybrid host ---------------------------------------------------------

def test_unified_keys_land_in_v1_files(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, resources={
        "unified": {"memory.max": str(64 * MIB), "pids.max": "20"}})
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(64 * MIB)
    assert cgread("pids", cid, "pids.max") == "20"


def test_unified_key_without_v1_equivalent_is_refused(oci, make_bundle):
    b = bundle_with(make_bundle, SLEEPER, {"unified": {"memory.high": "1000000"}})
    cid = oci.new_id("cg")
    proc = detached(oci, "create", "--bundle", b.path, cid)
    failed(proc, "linux.resources.unified.memory.high: unified key memory.high has no "
           "cgroup v1 equivalent on this host")
    assert error_message(proc.stderr).startswith("create failed: ")
    assert left_behind(oci, cid) == []


# --- 3. what this host cannot honour ---------------------------------------------------------

@pytest.mark.parametrize("resources, field, words", [
    pytest.param({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MIB}]},
                 "linux.resources.hugepageLimits[0]", "the hugetlb controller is not available",
                 marks=pytest.mark.skipif(hostprobe.hierarchy_of("hugetlb") is not None,
                                          reason="hugetlb is mounted here"),
                 id="hugepageLimits"),
    pytest.param({"network": {"classID": 0x100001}}, "linux.resources.network.classID",
                 "the net_cls controller is not available",
                 marks=pytest.mark.skipif(hostprobe.hierarchy_of("net_cls") is not None,
                                          reason="net_cls is mounted here"),
                 id="network.classID"),
])
def test_unsupported_field_fails_create_cleanly(oci, make_bundle, resources, field, words):
    b = bundle_with(make_bundle, SLEEPER, dict(resources, pids={"limit": 10}))
    for command in ("create", "run"):
        cid = oci.new_id("cg")
        proc = detached(oci, command, "--bundle", b.path, cid)
        msg = error_message(proc.stderr)
        assert proc.returncode == 1, proc.stderr
        assert field in msg and words in msg, msg
        assert left_behind(oci, cid) == []
        failed(oci("state", cid), "container does not exist")


def test_value_the_kernel_refuses_fails_create_cleanly(oci, make_bundle):
    """A CPU that does not exist: the kernel's errno and the file are reported, and the
    cgroups made before the write are removed again, in every hierarchy."""
    with open("/sys/devices/system/cpu/possible") as f:
        missing = int(f.read().strip().split("-")[-1]) + 1
    b = bundle_with(make_bundle, SLEEPER, {"cpu": {"cpus": str(missing)},
                                           "memory": {"limit": 64 * MIB}})
    cid = oci.new_id("cg")
    proc = failed(detached(oci, "create", "--bundle", b.path, cid),
                  "numerical result out of range")
    msg = error_message(proc.stderr)
    assert f"{cgdir('cpuset', cid)}: write cpuset.cpus={missing}" in msg, msg
    assert left_behind(oci, cid) == []


KMEM_DEFAULT = "9223372036854771712"  # memory.kmem.*limit_in_bytes of a cgroup no one limited
KMEM_WARNING = "linux.resources.memory: kernel memory settings are ignored and will be removed"


def test_kernel_memory_is_ignored_with_runcs_warning_and_kernel_tcp_written(oci, make_bundle):
    """As runc and crun (was: the container refused): memory.kernel is not written and the
    warning says so once; kernelTCP is written where v1 has the file, as crun does."""
    b = bundle_with(make_bundle, resources={"memory": {"limit": 64 * MIB, "kernel": 32 * MIB,
                                                       "kernelTCP": 16 * MIB}})
    cid = oci.new_id("cg")
    proc = ok(detached(oci, "create", "--bundle", b.path, cid))
    assert proc.stderr.count(KMEM_WARNING) == 1, proc.stderr
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(64 * MIB)
    tcp = os.path.exists(f"{cgdir('memory', cid)}/memory.kmem.tcp.limit_in_bytes")
    if os.path.exists(f"{cgdir('memory', cid)}/memory.kmem.limit_in_bytes"):
        assert cgread("memory", cid, "memory.kmem.limit_in_bytes") == KMEM_DEFAULT
    if tcp:
        assert cgread("memory", cid, "memory.kmem.tcp.limit_in_bytes") == str(16 * MIB)
    ok(oci("start", cid))
    # update: runc warns when kernel is not 0, and writes the rest
    proc = ok(oci("update", "--kernel-memory", "10m", "--kernel-memory-tcp", "5m",
                  "--memory", "80m", cid))
    assert proc.stderr.count(KMEM_WARNING) == 1, proc.stderr
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(80 * MIB)
    if tcp:
        assert cgread("memory", cid, "memory.kmem.tcp.limit_in_bytes") == str(5 * MIB)
    proc = ok(oci("update", "--kernel-memory", "0", cid))
    assert "kernel memory" not in proc.stderr
    proc = ok(oci("update", "--resources", "-", cid,
                  input=json.dumps({"memory": {"kernelTCP": 1 * MIB}})))
    assert KMEM_WARNING not in proc.stderr
    if tcp:
        assert cgread("memory", cid, "memory.kmem.tcp.limit_in_bytes") == str(1 * MIB)
    ok(oci("delete", "--force", cid))


# --- 4. update ---------------------------------------------------------------------------------

def test_update_flags_land_in_their_files(oci, make_bundle):
    cid, _b, pid = start(oci, make_bundle)
    optional = (["--blkio-weight", "300"] if WEIGHT_FILE else []) + \
        (["--memory-swap", "128m"] if SWAP else [])
    proc = ok(oci("update", "--memory", "64m", "--pids-limit", "30", "--cpu-quota", "20000",
                  "--cpu-period", "100000", "--cpuset-cpus", "0", "--cpu-share", "256",
                  *optional, cid))
    assert proc.stdout == "" and proc.stderr == ""
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(64 * MIB)
    if SWAP:
        assert cgread("memory", cid, "memory.memsw.limit_in_bytes") == str(128 * MIB)
    assert cgread("pids", cid, "pids.max") == "30"
    assert cgread("cpu", cid, "cpu.cfs_quota_us") == "20000"
    assert cgread("cpu", cid, "cpu.cfs_period_us") == "100000"
    assert cgread("cpu", cid, "cpu.shares") == "256"
    assert cgread("cpuset", cid, "cpuset.cpus") == "0"
    if WEIGHT_FILE:
        assert cgread("blkio", cid, WEIGHT_FILE).split()[-1] == "300"
    assert oci.state(cid)["status"] == "running" and pid_alive(pid)
    if not SWAP:
        return
    # lowering the limit below memsw's: the limit is written first, then memsw (and back up)
    ok(oci("update", "--memory", "32m", "--memory-swap", "32m", cid))
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(32 * MIB)
    assert cgread("memory", cid, "memory.memsw.limit_in_bytes") == str(32 * MIB)
    ok(oci("update", "--memory", "256m", "--memory-swap", "-1", cid))
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(256 * MIB)
    assert int(cgread("memory", cid, "memory.memsw.limit_in_bytes")) > 1 << 60


def test_update_resources_file_and_stdin_leave_devices_alone(oci, make_bundle, tmp_path):
    cid, _b, _pid = start(oci, make_bundle)
    before = devices_list(cid)
    assert before == IMPLIED
    path = tmp_path / "resources.json"
    path.write_text(json.dumps({"memory": {"limit": 100 * MIB}, "cpu": {"shares": 300}}))
    ok(oci("update", "--resources", path, cid))
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(100 * MIB)
    assert cgread("cpu", cid, "cpu.shares") == "300"
    # containerd's form: the whole linux.resources on stdin, devices included
    # (zero and empty values are "unset", as Go's zero values arrive from containerd)
    whole = {"devices": [{"allow": False, "access": "rwm"}],
             "memory": {"limit": 80 * MIB, "swap": 0, "swappiness": 20},
             "pids": {"limit": 40},
             "cpu": {"shares": 400, "quota": 30000, "period": 100000, "realtimeRuntime": 0,
                     "realtimePeriod": 0, "cpus": "", "mems": ""},
             "blockIO": {}, "hugepageLimits": [], "unified": {}}
    ok(oci("update", "--resources", "-", cid, input=json.dumps(whole)))
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(80 * MIB)
    assert cgread("memory", cid, "memory.swappiness") == "20"
    assert cgread("pids", cid, "pids.max") == "40"
    assert cgread("cpu", cid, "cpu.shares") == "400"
    assert cgread("cpu", cid, "cpu.cfs_quota_us") == "30000"
    assert devices_list(cid) == before  # not reset to deny-all
    ok(oci("exec", cid, "sh", "-c", "echo x > /dev/null"))
    # flags win over the file for what both set
    path.write_text(json.dumps({"pids": {"limit": 45}}))
    ok(oci("update", "--resources", path, "--pids-limit", "46", cid))
    assert cgread("pids", cid, "pids.max") == "46"


def test_update_errors(oci, make_bundle, tmp_path):
    cid, _b, pid = start(oci, make_bundle, resources={"memory": {"limit": 128 * MIB,
                                                                 "swappiness": 0}})
    # a limit below the usage: the kernel refuses it (v1 reclaims, then EBUSY; no swapping)
    proc = failed(oci("update", "--memory", "1k", cid), "device or resource busy")
    msg = error_message(proc.stderr)
    assert f"{cgdir('memory', cid)}" in msg and "memory.limit_in_bytes=1024" in msg, msg
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(128 * MIB)
    assert oci.state(cid)["status"] == "running" and pid_alive(pid)
    # runc's wording for an unknown flag, and nothing changed
    failed(oci("update", "--bogus", "1", cid), "flag provided but not defined: -bogus")
    failed(oci("update", "--memory", "lots", cid), "--memory: must be a size like 512m")
    failed(oci("update", cid), "nothing to update")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert oci("update", "--resources", bad, cid).returncode == 1
    failed(oci("update", "--resources", tmp_path / "missing.json", cid),
           "no such file or directory")
    failed(oci("update", "--pids-limit", "5", "no-such-container"), "container does not exist")
    assert cgread("memory", cid, "memory.limit_in_bytes") == str(128 * MIB)
    assert cgread("pids", cid, "pids.max") == "max"


def test_update_stopped_container(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, ["true"])
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 5)
    failed(oci("update", "--memory", "64m", cid), "container not running")
    failed(oci("events", "--stats", cid), "container not running")


# --- 5. workloads ------------------------------------------------------------------------------

def test_memory_hog_is_oom_killed_run_exits_137(oci, make_bundle):
    b = bundle_with(make_bundle, ["sh", "-c", HOG], LIMIT_32M)
    cid = oci.new_id("cg")
    proc = oci("run", "--bundle", b.path, cid, timeout=30)
    assert proc.returncode == 137, (proc.returncode, proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout
    assert cgroup_dirs(cid) == []  # run deleted it


def test_memory_hog_detached_state_says_oom_killed(oci, make_bundle):
    b = bundle_with(make_bundle, ["sh", "-c", HOG], LIMIT_32M)
    cid = oci.new_id("cg")
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 15)
    state = oci.state(cid)
    assert state["oomKilled"] is True and state["pid"] == 0
    oom = dict(line.split() for line in cgread("memory", cid, "memory.oom_control").splitlines())
    assert int(oom["oom_kill"]) >= 1
    assert int(cgread("memory", cid, "memory.failcnt")) > 0


def test_not_oom_killed_has_no_flag(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, ["true"], resources=LIMIT_32M)
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 5)
    assert "oomKilled" not in oci.state(cid)


def test_fork_bomb_stops_at_pids_limit_and_kill_all_clears_it(oci, make_bundle):
    """The bomb runs by ``exec -d`` beside a sleeping init: busybox sh gives up at its first
    refused fork, and as the init it would take the whole pid namespace with it."""
    bomb = "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; wait"
    cid, _b, _pid = start(oci, make_bundle, resources={"pids": {"limit": 20}})
    ok(detached(oci, "exec", "-d", cid, "sh", "-c", bomb))

    def full():
        return int(cgread("pids", cid, "pids.current")) >= 20 or \
            int(cgread("pids", cid, "pids.events").split()[-1]) > 0
    assert wait_for(full, 10)
    time.sleep(0.3)  # the bomb keeps trying; the count must not pass the limit
    listed = json.loads(ok(oci("ps", "--format", "json", cid)).stdout)
    assert 1 < len(listed) <= 20, listed
    assert int(cgread("pids", cid, "pids.current")) <= 20
    assert int(cgread("pids", cid, "pids.events").split()[-1]) > 0  # max N: forks refused
    ok(oci("kill", "--all", cid, "KILL"))
    assert wait_for(lambda: cgread("pids", cid, "cgroup.procs") == "", 5)
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", 5)
    assert wait_for(lambda: cgread("pids", cid, "pids.current") == "0", 5)  # all reaped


def test_cpu_burner_is_throttled(oci, make_bundle):
    cid, _b, _pid = start(oci, make_bundle, BURNER,
                          resources={"cpu": {"quota": 10000, "period": 100000}})
    assert cgread("cpu", cid, "cpu.cfs_quota_us") == "10000"

    def throttled():
        return stats(oci, cid)["cpu"]["throttling"]["throttledPeriods"] > 0
    assert wait_for(throttled, 5, 0.2)
    data = stats(oci, cid)
    throttling = data["cpu"]["throttling"]
    assert throttling["periods"] >= throttling["throttledPeriods"] > 0
    assert throttling["throttledTime"] > 0
    flat = dict(line.split() for line in cgread("cpu", cid, "cpu.stat").splitlines())
    assert int(flat["nr_throttled"]) >= throttling["throttledPeriods"]
    assert data["cpu"]["usage"]["total"] > 0


def test_pause_freezes_and_resume_thaws(oci, make_bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    counter = ["sh", "-c", ("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); "
                            "echo $i > /out/count; sleep 0.02; done")]
    cid, _b, _pid = start(oci, make_bundle, counter, mounts=[
        {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind", "rw"]}])

    def count():
        try:
            return int((out / "count").read_text() or 0)
        except (OSError, ValueError):
            return 0
    assert wait_for(lambda: count() > 2, 5)
    ok(oci("pause", cid))
    assert oci.state(cid)["status"] == "paused"
    assert cgread("freezer", cid, "freezer.state") == "FROZEN"
    frozen = count()
    time.sleep(0.3)
    assert count() == frozen
    failed(oci("pause", cid), "container not running or created: paused")
    # a paused container can still be updated and read, as with runc
    ok(oci("update", "--pids-limit", "25", cid))
    assert cgread("pids", cid, "pids.max") == "25"
    assert stats(oci, cid)["pids"]["limit"] == 25
    assert count() == frozen
    ok(oci("resume", cid))
    assert oci.state(cid)["status"] == "running"
    assert cgread("freezer", cid, "freezer.state") == "THAWED"
    assert wait_for(lambda: count() > frozen, 5)
    failed(oci("resume", cid), "container not paused")


@pytest.mark.skipif(not PSI, reason="no cgroup2 tree with PSI (cpu.pressure) here")
def test_events_stats_sections_and_psi(oci, make_bundle):
    cid, _b, pid = start(oci, make_bundle, BURNER, resources={
        "memory": {"limit": 64 * MIB}, "pids": {"limit": 33}})
    time.sleep(0.2)  # some cpu time and pressure to read
    before = {r: pressure_total(cid, r) for r in ("cpu", "memory", "io")}
    data = stats(oci, cid)
    after = {r: pressure_total(cid, r) for r in ("cpu", "memory", "io")}
    assert {"cpu", "memory", "pids", "blkio"} <= set(data)
    assert data["memory"]["usage"]["limit"] == 64 * MIB
    assert 0 < data["memory"]["usage"]["usage"] <= 64 * MIB
    assert data["pids"] == {"current": 1, "limit": 33}
    assert data["cpu"]["usage"]["total"] > 0
    assert len(data["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert "ioServiceBytesRecursive" in data["blkio"]
    for section, resource in (("cpu", "cpu"), ("memory", "memory"), ("blkio", "io")):
        psi = data[section]["psi"]
        for kind in ("some", "full"):
            assert set(psi[kind]) == {"avg10", "avg60", "avg300", "total"}, psi
        # read from the container's own cgroup2 directory: totals only grow
        assert before[resource] <= psi["some"]["total"] <= after[resource], (resource, psi)
    assert data["cpu"]["psi"]["some"]["total"] > 0  # a burner waits for a CPU now and then
    assert str(pid) in cgread("unified", cid, "cgroup.procs").split()


def test_events_interval_prints_stats_then_oom(oci, make_bundle, lines):
    cid, _b, _pid = start(oci, make_bundle, resources=LIMIT_32M)
    events = lines("--root", oci.root, "events", "--interval", "1s", cid)
    first = events.next(5)
    t0 = time.monotonic()
    second = events.next(5)
    gap = time.monotonic() - t0
    assert first["type"] == second["type"] == "stats" and first["id"] == second["id"] == cid
    assert 0.5 < gap < 2.5, gap
    assert second["data"]["memory"]["usage"]["limit"] == 32 * MIB
    # the watch is in place (a stats line came): an OOM kill in the container is reported
    hog = oci("exec", cid, "sh", "-c", HOG, timeout=30)
    assert hog.returncode == 137, (hog.returncode, hog.stderr)
    seen = [events.next(5) for _ in range(3)]
    assert {"type": "oom", "id": cid} in seen, seen
    assert oci.state(cid)["status"] == "running"  # the init (sleep) was not the one killed
    events.stop()


def test_events_reports_the_init_oom_killed_then_ends(oci, make_bundle, lines):
    """Watching from ``created``: the hog starts at ``start``, is killed, and events prints
    the oom event before it notices the container stopped and exits 0."""
    b = bundle_with(make_bundle, ["sh", "-c", HOG], LIMIT_32M)
    cid = oci.new_id("cg")
    ok(detached(oci, "create", "--bundle", b.path, cid))
    events = lines("--root", oci.root, "events", "--interval", "30s", cid)
    assert events.next(5)["type"] == "stats"  # the watch is registered before the first line
    ok(oci("start", cid))
    assert events.next(15) == {"type": "oom", "id": cid}
    assert events.proc.wait(10) == 0
    assert oci.state(cid)["oomKilled"] is True


@pytest.mark.parametrize("how", [("kill", "KILL"), ("delete", "--force")],
                         ids=["killed", "deleted"])
def test_events_ends_when_the_container_stops(oci, make_bundle, lines, how):
    cid, _b, _pid = start(oci, make_bundle)
    events = lines("--root", oci.root, "events", "--interval", "10s", cid)
    assert events.next(5)["type"] == "stats"
    ok(oci(how[0], how[1], cid) if how[0] == "delete" else oci(how[0], cid, how[1]))
    assert events.proc.wait(5) == 0  # well before the next 10 s tick


def test_events_interval_takes_go_durations(oci, make_bundle, lines):
    """runc parses --interval with Go's time.ParseDuration: compound and fractional forms."""
    cid, _b, _pid = start(oci, make_bundle)
    for interval in ("1m30s", "1.5h", "250ms"):
        events = lines("--root", oci.root, "events", "--interval", interval, cid)
        assert events.next(5)["type"] == "stats", interval
    for bad in ("soon", "0s", "-1s", "1x", "5 s"):
        failed(oci("events", "--interval", bad, cid), f'invalid interval "{bad}"')


# --- 6. nothing left behind --------------------------------------------------------------------

def test_delete_removes_the_cgroup_from_every_hierarchy(oci, make_bundle, tmp_path):
    cid, _b, pid = start(oci, make_bundle, resources=LIMITS)
    assert cgroup_dirs(cid) == sorted(cgdir(h, cid) for h in HIERARCHIES)
    pid_file = tmp_path / "exec.pid"
    ok(detached(oci, "exec", "-d", "--pid-file", pid_file, cid, "sleep", "100"))
    exec_pid = int(pid_file.read_text())
    for h in HIERARCHIES:  # an exec'd process joins every hierarchy too
        assert str(exec_pid) in cgread(h, cid, "cgroup.procs").split(), h
    ok(oci("delete", "--force", cid))
    assert wait_for(lambda: not pid_alive(pid) and not pid_alive(exec_pid), 5)
    assert cgroup_dirs(cid) == []
    assert not os.path.exists(os.path.join(oci.root, cid))


# --- 7. a cgroup already at the container's path ----------------------------------------------

@pytest.fixture
def premade():
    """premade(cid, hierarchies) makes kago-<cid> there, as another tool would; whatever is
    left at the end (and any process put in) is cleaned up."""
    made, procs = [], []

    def make(cid, hierarchies=HIERARCHIES):
        for h in hierarchies:
            os.mkdir(cgdir(h, cid))
            made.append(cgdir(h, cid))
        return made
    make.procs = procs
    yield make
    for p in procs:
        p.kill()
        p.wait(timeout=5)
    for d in made:
        if os.path.isdir(d):
            if os.path.exists(d + "/freezer.state"):
                with open(d + "/freezer.state", "w") as f:
                    f.write("THAWED")
            wait_for(lambda d=d: not open(d + "/cgroup.procs").read().split(), 5)
            os.rmdir(d)


def test_an_empty_cgroup_left_at_the_path_is_reused_and_removed_at_delete(
        oci, make_bundle, premade):
    """As runc (was: "already exists: another container uses it"): every v1 hierarchy and
    the cgroup2 tree had the container's directory before create; delete removes them."""
    cid = oci.new_id("cg")
    premade(cid)
    b = bundle_with(make_bundle, resources={"pids": {"limit": 40}})
    ok(detached(oci, "create", "--bundle", b.path, cid))
    pid = oci.state(cid)["pid"]
    for h in HIERARCHIES:
        assert str(pid) in cgread(h, cid, "cgroup.procs").split(), h
    assert cgread("pids", cid, "pids.max") == "40"
    ok(oci("start", cid))
    ok(oci("delete", "--force", cid))
    assert cgroup_dirs(cid) == []


def test_a_cgroup_with_a_process_in_it_is_refused(oci, make_bundle, premade):
    """runc 1.2's rule (1.1 warned and went on, and its delete then killed the stranger):
    nothing is created, and the cgroup and its process are left as they were."""
    cid = oci.new_id("cg")
    premade(cid, ["memory", "unified"])
    stranger = subprocess.Popen(["sleep", "60"])
    premade.procs.append(stranger)
    with open(cgdir("memory", cid) + "/cgroup.procs", "w") as f:
        f.write(str(stranger.pid))
    proc = detached(oci, "create", "--bundle", bundle_with(make_bundle).path, cid)
    assert proc.returncode == 1
    assert error_message(proc.stderr) == (f"create failed: cgroup /kago-{cid}: container's "
                                          "cgroup is not empty: 1 process(es) found")
    assert cgroup_dirs(cid) == [cgdir("memory", cid), cgdir("unified", cid)]
    assert stranger.poll() is None
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_a_frozen_cgroup_is_refused(oci, make_bundle, premade):
    cid = oci.new_id("cg")
    premade(cid, ["freezer"])
    with open(cgdir("freezer", cid) + "/freezer.state", "w") as f:
        f.write("FROZEN")
    proc = detached(oci, "create", "--bundle", bundle_with(make_bundle).path, cid)
    assert proc.returncode == 1
    assert error_message(proc.stderr) == (f"create failed: cgroup /kago-{cid}: container's "
                                          "cgroup unexpectedly frozen")
    assert cgroup_dirs(cid) == [cgdir("freezer", cid)]
