"""podman 4.3 running its containers with kago-oci on a pure cgroup v2 host.

test_podman.py is podman on any host (its private store, fixtures and leak checks are used
here as they are); its tests that read v1 controller files skip on v2, and this file is what a
v2 host shows instead, read in the container's cgroup2 directory (podman's cgroupfs parent,
``/sys/fs/cgroup/libpod_parent/libpod-<id>``, found from the init's ``/proc/PID/cgroup``):
the default device rules podman puts in every spec (an eBPF filter there), ``--memory``,
``--memory-swap``, ``--cpus``, ``--cpu-shares`` and ``--pids-limit`` in memory.max,
memory.swap.max, cpu.max, cpu.weight and pids.max, ``pause``/``unpause`` by cgroup.freeze
and cgroup.events' ``frozen``, and an OOM kill counted in memory.events. ``./dev test-v2``
runs it in a QEMU guest with a pure v2 hierarchy (docs/cgroups-v2.md); on a hybrid host it
skips.
"""

import json
import os

import pytest

import hostprobe
import test_podman
from conftest import wait_for
from kago.linux.cgroups import devices_v2
from kago.linux.cgroups.resources import shares_to_weight
from test_podman import HOG, name, pod, podman  # noqa: F401 (fixtures)

V2 = not hostprobe.is_hybrid_or_v1() and "unified" in hostprobe.cgroup_mounts()
pytestmark = [*test_podman.pytestmark,
              pytest.mark.skipif(not V2, reason="needs a pure cgroup v2 host: ./dev test-v2 "
                                 "runs these in a v2 guest")]

CG = "/sys/fs/cgroup"
MIB = 1 << 20


def cgroup_of(podman, n):
    """The cgroup2 directory of container ``n``, from its init's /proc/PID/cgroup."""
    pid = podman("inspect", "--format", "{{.State.Pid}}", n, check=True).stdout.strip()
    with open(f"/proc/{pid}/cgroup") as f:
        [line] = f.read().splitlines()
    path = line.split("::", 1)[1]
    assert path.startswith(f"/{test_podman.LIBPOD_PARENT}/libpod-"), line
    return CG + path


def read(d, file):
    with open(os.path.join(d, file)) as f:
        return f.read().strip()


def flat(d, file):
    return {k: int(v) for k, v in (line.split() for line in read(d, file).splitlines())}


def spec_of(podman, n):
    """The config.json podman wrote for container ``n``."""
    cid = podman("inspect", "--format", "{{.Id}}", n, check=True).stdout.strip()
    path = os.path.join(podman.dirs["root"], "overlay-containers", cid, "userdata",
                        "config.json")
    with open(path) as f:
        return json.load(f)


def test_limits_land_in_the_containers_v2_files(podman):
    n = name()
    podman.run("-d", "--memory", "64m", "--memory-swap", "96m", "--cpus", "0.5",
               "--cpu-shares", "512", "--pids-limit", "50", "--", "sleep", "60", name=n,
               check=True)
    try:
        d = cgroup_of(podman, n)
        assert read(d, "memory.max") == str(64 * MIB)
        assert read(d, "memory.swap.max") == str(32 * MIB)  # the spec's swap is memory+swap
        assert read(d, "cpu.max") == "50000 100000"
        assert read(d, "cpu.weight") == str(shares_to_weight(512)) == "59"
        assert read(d, "pids.max") == "50"
        pid = podman("inspect", "--format", "{{.State.Pid}}", n).stdout.strip()
        assert read(d, "cgroup.procs").split() == [pid]
        # podman gives the container a cgroup namespace: its /sys/fs/cgroup is that directory
        inside = podman("exec", n, "sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max "
                        "/sys/fs/cgroup/pids.max")
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.split() == ["0::/", str(64 * MIB), "50"], inside.stdout
    finally:
        podman("rm", "-f", "-t", "0", n)


def test_default_device_rules_are_an_ebpf_filter_on_the_container(podman):
    """podman's spec denies every device and leaves the default ones (/dev/null, /dev/zero,
    ...) to the runtime; kago-oci adds runc's rules for those and for mknod of any node, and
    one filter program on the container's cgroup applies them: a block device made with mknod
    cannot be opened."""
    n = name()
    podman.run("-d", "--cap-add", "MKNOD", "--", "sleep", "60", name=n, check=True)
    try:
        assert spec_of(podman, n)["linux"]["resources"]["devices"] == [
            {"allow": False, "access": "rwm"}]
        d = cgroup_of(podman, n)
        assert len(devices_v2.attached(d)) == 1
        proc = podman("exec", n, "sh", "-c",
                      "echo x > /dev/null && head -c1 /dev/zero >/dev/null && echo null-zero-ok;"
                      " mknod /tmp/blk b 7 0 && echo mknod-ok;"
                      " head -c1 /tmp/blk >/dev/null 2>/tmp/err; echo rc=$?; cat /tmp/err")
        lines = proc.stdout.splitlines()
        assert lines[:3] == ["null-zero-ok", "mknod-ok", "rc=1"], (proc.stdout, proc.stderr)
        assert "Operation not permitted" in lines[3], lines
    finally:
        podman("rm", "-f", "-t", "0", n)


def test_pause_freezes_the_cgroup_and_unpause_thaws_it(podman):
    n = name()
    podman.run("-d", "--", "sleep", "60", name=n, check=True)
    try:
        d = cgroup_of(podman, n)
        podman("pause", n, check=True)
        assert read(d, "cgroup.freeze") == "1"
        assert flat(d, "cgroup.events")["frozen"] == 1
        # podman asks kago-oci's `state`, which reads cgroup.freeze
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() == "paused"
        podman("unpause", n, check=True)
        assert read(d, "cgroup.freeze") == "0"
        assert flat(d, "cgroup.events")["frozen"] == 0
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() \
            == "running"
        assert podman("exec", n, "true").returncode == 0
    finally:
        podman("rm", "-f", "-t", "0", n)


def test_oom_kill_in_exec_is_counted_in_memory_events(podman):
    """The init (sleep) survives; the exec'd hog is killed (137), and memory.events of the
    container's cgroup counts it."""
    n = name()
    podman.run("-d", "--memory", "32m", "--memory-swap", "32m", "--", "sleep", "60", name=n,
               check=True)
    try:
        d = cgroup_of(podman, n)
        assert read(d, "memory.swap.max") == "0"
        hog = podman("exec", n, "sh", "-c", HOG, timeout=120)
        assert hog.returncode == 137, (hog.returncode, hog.stderr)
        assert wait_for(lambda: flat(d, "memory.events")["oom_kill"] >= 1, 5), \
            read(d, "memory.events")
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() \
            == "running"
    finally:
        podman("rm", "-f", "-t", "0", n)
