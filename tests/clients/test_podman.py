"""podman 4.3 (through conmon) running its containers with kago-oci instead of runc.

Part of ``./dev test`` (``./dev setup`` installs podman and conmon). podman runs with a private
store: ``--root``, ``--runroot`` and ``--tmpdir`` on the session's tmpfs, ``--cgroup-manager
cgroupfs``, ``--events-backend file`` (its events log is in that tmpdir) and ``TMPDIR`` there
too, so a user's own podman containers and images are neither seen nor touched, and removing
the directory removes all podman kept. The tests import the busybox rootfs as an image, run
containers the way a podman user does, and remove what they made; afterwards nothing of their
containers is left: no cgroup (podman's ``libpod_parent/libpod-<id>``, removed too if the
tests made it), kago-oci state dir (podman calls kago-oci without ``--root``: /run/kago),
mount or conmon process. Their IDs come from podman's own events log, so ``--rm`` runs count.

This host's root lacks CAP_SYS_RESOURCE, and podman asks for RLIMIT_NOFILE 1048576 by default;
runc fails on that exactly as kago-oci does, so the tests ask for limits the host can grant.

podman 4.3.1 with conmon 2.1.6 (Debian 12) reports ``OOMKilled: false`` for an OOM-killed
container with runc too: conmon sees the kill and writes its ``oom`` file into its working
directory, where podman does not look. So the OOM test checks the exit status (137) and the
kernel's own count in the container's memory cgroup.
"""

import json
import os
import shutil
import subprocess
import tarfile
import time
import uuid

import pytest

import hostprobe
from conftest import KAGO_OCI, IS_ROOT, wait_for

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="podman with a private store needs root"),
    pytest.mark.skipif(shutil.which("podman") is None or (
                       shutil.which("conmon") is None and
                       not os.path.exists("/usr/libexec/podman/conmon")),
                       reason="podman and conmon are not installed (./dev setup installs them)"),
]

RUN = ["--network", "none", "--log-driver", "k8s-file",
       "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
# doubles a shell string until the memory cgroup's OOM killer stops it (2**40 bytes is the bound)
HOG = "x=a; i=0; while [ $i -lt 40 ]; do x=$x$x; i=$((i+1)); done; echo survived"
LIBPOD_PARENT = "libpod_parent"
# the tests that read v1 controller files; test_podman_v2.py reads their v2 files instead
v1_files = pytest.mark.skipif(not hostprobe.is_hybrid_or_v1(), reason="reads v1 controller "
                              "files: test_podman_v2.py is their pure cgroup v2 counterpart")
IMAGE_FILE = "kago-image-file"  # in the test image's /var/tmp


class Podman:
    """podman with a private store under ``base``, running containers with kago-oci."""

    def __init__(self, base):
        self.base = base
        self.dirs = {d: os.path.join(base, d) for d in ("root", "runroot", "tmp", "cwd")}
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        self.env = dict(os.environ, TMPDIR=self.dirs["tmp"])
        self.image = None
        self.tar = None

    def __call__(self, *args, timeout=60, check=False, input=None):
        argv = ["podman", "--root", self.dirs["root"], "--runroot", self.dirs["runroot"],
                "--tmpdir", self.dirs["tmp"], "--cgroup-manager", "cgroupfs",
                "--events-backend", "file", "--runtime", KAGO_OCI, *map(str, args)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=self.env, cwd=self.dirs["cwd"], input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv[11:])} exited {proc.returncode}: "
                                 f"{proc.stderr}")
        return proc

    def run(self, *args, name=None, timeout=60, check=False):
        """``podman run [OPTS] IMAGE COMMAND`` with RUN's flags: ``args`` are OPTS, "--",
        COMMAND."""
        split = args.index("--")
        named = ["--name", name] if name else []
        return self("run", *named, *RUN, *args[:split], self.image, *args[split + 1:],
                    timeout=timeout, check=check)

    def container_ids(self):
        """Every container this store ever made (podman's events log: ``--rm`` ones too)."""
        log = os.path.join(self.dirs["tmp"], "events", "events.log")
        ids = set()
        if os.path.exists(log):
            with open(log) as f:
                for line in f:
                    event = json.loads(line)
                    if event.get("Type") == "container" and event.get("ID"):
                        ids.add(event["ID"])
        return ids


def name():
    return f"kago-t-{uuid.uuid4().hex[:10]}"


def leftovers(ids):
    """What kago-oci, conmon or podman still hold for container ``ids`` on the host."""
    left = []
    for cid in ids:
        for h in hostprobe.hierarchies():
            d = f"{hostprobe.cgroup_mounts()[h][2]}/{LIBPOD_PARENT}/libpod-{cid}"
            if os.path.isdir(d):
                left.append(f"cgroup {d}")
        if os.path.exists(f"/run/kago/{cid}"):
            left.append(f"kago-oci state /run/kago/{cid}")
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    left += [f"mount naming {cid}" for cid in ids if cid in mounts]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"conmon" and any(
                a.decode(errors="replace") in ids for a in argv):
            left.append(f"conmon process {pid}")
    return left


def _rmdir_quietly(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


@pytest.fixture(scope="module")
def pod(workdir):
    """The private podman with the busybox image imported; afterwards everything removed."""
    from kago.testing import busybox
    p = Podman(os.path.join(workdir, f"podman-{uuid.uuid4().hex[:6]}"))
    had_parent = {h: os.path.isdir(f"{m[2]}/{LIBPOD_PARENT}")
                  for h, m in hostprobe.cgroup_mounts().items()}
    rootfs = busybox.build_rootfs(os.path.join(p.base, "rootfs"))
    os.makedirs(os.path.join(rootfs, "var", "tmp"), exist_ok=True)  # for --read-only's copy-up
    with open(os.path.join(rootfs, "var", "tmp", IMAGE_FILE), "w") as f:
        f.write("from the image\n")
    tar = os.path.join(p.base, "rootfs.tar")
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    p.image = f"localhost/kago-test-{uuid.uuid4().hex[:8]}"
    p.tar = tar
    p("import", tar, p.image, check=True)
    try:
        yield p
    finally:
        p("rm", "-af", "-t", "0")
        p("rmi", "-af")
        ids = p.container_ids()
        wait_for(lambda: not leftovers(ids), 5)  # conmon exits on its own time
        for h, made in had_parent.items():  # podman's cgroupfs parent, if our tests made it
            if not made:
                base = f"{hostprobe.cgroup_mounts()[h][2]}/{LIBPOD_PARENT}"
                _rmdir_quietly(f"{base}/conmon")
                _rmdir_quietly(base)
        left = leftovers(ids)
        with open("/proc/self/mountinfo") as f:
            mounted = [line.split()[4] for line in f if line.split()[4].startswith(p.base + "/")]
        for m in reversed(mounted):  # podman unmounts its storage on rm: any left is a leak,
            subprocess.run(["umount", "-l", m], check=False)  # reported once it is undone
        shutil.rmtree(p.base, ignore_errors=True)
        assert not left, f"podman's containers left things behind: {left}"
        assert not mounted, f"podman left mounts in its store: {mounted}"


@pytest.fixture
def podman(pod):
    """The module's podman; after each test none of its containers is left, nor what they held."""
    before = pod.container_ids()
    yield pod
    made = pod.container_ids() - before
    listed = pod("ps", "-aq", "--no-trunc").stdout.split()
    for cid in listed:
        pod("rm", "-f", "-t", "0", cid)
    assert not listed, f"the test left podman containers: {listed}"
    assert wait_for(lambda: not leftovers(made), 5), leftovers(made)


# --- run, exit codes ---------------------------------------------------------------------------

def test_run_gets_podmans_seccomp_and_capabilities(podman):
    proc = podman.run("--rm", "--", "sh", "-c",
                      "echo hello; id -u; grep -E '^(Seccomp|CapEff):' /proc/self/status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[:2] == ["hello", "0"]
    assert "Seccomp:" in lines and lines[lines.index("Seccomp:") + 1] == "2"  # filter mode
    assert lines[lines.index("CapEff:") + 1] == "00000000800405fb"  # docker's default set


def test_exit_codes_as_podman_users_expect(podman):
    assert podman.run("--rm", "--", "sh", "-c", "exit 3").returncode == 3
    assert podman.run("--rm", "--", "nosuchprog").returncode == 127
    assert podman.run("--rm", "--", "/etc/passwd").returncode == 126


# --- tty -------------------------------------------------------------------------------------

def test_run_t_gives_a_terminal_inside(podman):
    proc = podman.run("--rm", "-t", "--", "sh", "-c",
                      "tty; test -t 0 && echo in-tty; test -t 1 && echo out-tty")
    assert proc.returncode == 0, proc.stderr
    # (a tty's \r\n: text mode's universal newlines make it \n)
    assert proc.stdout.splitlines()[:3] == ["/dev/pts/0", "in-tty", "out-tty"], proc.stdout
    plain = podman.run("--rm", "--", "sh", "-c", "test -t 1 && echo tty || echo no-tty")
    assert plain.stdout == "no-tty\n", plain.stdout


def test_exec_t_gives_a_terminal_and_plain_exec_none(podman):
    n = name()
    podman.run("-d", "--", "sleep", "60", name=n, check=True)
    try:
        proc = podman("exec", "-t", n, "sh", "-c", "tty; test -t 0 && echo in-tty")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("/dev/pts/") and lines[1] == "in-tty", proc.stdout
        plain = podman("exec", n, "sh", "-c", "tty")
        assert plain.returncode == 1 and plain.stdout == "not a tty\n", plain
    finally:
        podman("rm", "-f", "-t", "0", n)


# --- detached: exec, top, pause, logs, stop, rm ------------------------------------------------

def test_detached_exec_top_pause_logs_stop_rm(podman):
    n = name()
    podman.run("-d", "--", "sh", "-c", "echo started; echo oops >&2; sleep 60", name=n,
               check=True)
    try:
        proc = podman("exec", n, "sh", "-c", "echo $$")
        assert proc.returncode == 0 and proc.stdout.strip() != "1", proc.stderr
        assert podman("exec", n, "sh", "-c", "exit 7").returncode == 7
        assert "sleep 60" in podman("top", n).stdout
        cid = podman("inspect", "--format", "{{.Id}}", n).stdout.strip()
        if "freezer" in hostprobe.cgroup_mounts():
            freezer, frozen = (f"{hostprobe.cgroup_mounts()['freezer'][2]}/{LIBPOD_PARENT}"
                               f"/libpod-{cid}/freezer.state", ("FROZEN", "THAWED"))
        else:  # pure v2 (test_podman_v2.py checks cgroup.events too)
            freezer = f"/sys/fs/cgroup/{LIBPOD_PARENT}/libpod-{cid}/cgroup.freeze"
            frozen = ("1", "0")
        podman("pause", n, check=True)
        # podman asks kago-oci's `state`, which reads the freezer
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() == "paused"
        with open(freezer) as f:
            assert f.read().strip() == frozen[0]
        podman("unpause", n, check=True)
        with open(freezer) as f:
            assert f.read().strip() == frozen[1]
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() \
            == "running"
        assert podman("exec", n, "true").returncode == 0
        logs = podman("logs", n)
        assert logs.stdout == "started\n" and logs.stderr == "oops\n", logs
        podman("stop", "-t", "1", n, check=True)
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() \
            == "exited"
    finally:
        assert podman("rm", "-f", n).returncode == 0
    assert podman("inspect", n).returncode != 0  # gone from podman too


# --- stop: SIGTERM, then SIGKILL after the timeout -------------------------------------------

def test_stop_sends_sigterm_and_the_container_exits_its_way(podman):
    n = name()
    podman.run("-d", "--", "sh", "-c", "trap 'exit 4' TERM; echo trapped; "
               "while :; do sleep 0.1; done", name=n, check=True)
    # a TERM before the trap is in place would be ignored (sh is the namespace's init)
    assert wait_for(lambda: "trapped" in podman("logs", n).stdout)
    t0 = time.monotonic()
    podman("stop", "-t", "10", n, check=True)
    assert time.monotonic() - t0 < 5  # the trap ran: no wait for the timeout
    assert podman("inspect", "--format", "{{.State.ExitCode}}", n).stdout.strip() == "4"
    podman("rm", n, check=True)


def test_stop_kills_after_the_timeout_when_sigterm_is_ignored(podman):
    n = name()
    podman.run("-d", "--", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done", name=n,
               check=True)
    t0 = time.monotonic()
    proc = podman("stop", "-t", "1", n, check=True)
    took = time.monotonic() - t0
    assert 1 <= took < 6, took
    assert "resorting to SIGKILL" in proc.stderr, proc.stderr
    assert podman("inspect", "--format", "{{.State.ExitCode}}", n).stdout.strip() == "137"
    podman("rm", n, check=True)


# --- limits: read back in the container's own cgroup files ----------------------------------

@v1_files
def test_memory_cpu_and_pids_limits_land_in_the_containers_cgroup(podman):
    proc = podman.run("--rm", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "50",
                      "--cpu-shares", "512", "--", "sh", "-c",
                      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
                      "/sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max; "
                      "grep -c libpod- /proc/self/cgroup")
    assert proc.returncode == 0, proc.stderr
    values = proc.stdout.split()
    assert values[:5] == [str(64 << 20), "50000", "100000", "512", "50"], proc.stdout
    # in podman's cgroup in every hierarchy (the v1 ones and the cgroup2 tree)
    assert int(values[5]) == len(hostprobe.hierarchies()), proc.stdout


def test_pids_limit_stops_a_fork_bomb(podman):
    # (busybox sh gives up at a refused fork of its own: the forks are in subshells; the
    # counters are read by builtins, which need no fork); v1: the pids hierarchy, v2: the
    # container's cgroup2 directory, both at podman's cgroup namespace root
    pids = "/sys/fs/cgroup/pids" if hostprobe.is_hybrid_or_v1() else "/sys/fs/cgroup"
    proc = podman.run("--rm", "--pids-limit", "10", "--", "sh", "-c",
                      "i=0; while [ $i -lt 30 ]; do (sleep 5 &) 2>/dev/null; i=$((i+1)); done; "
                      f"read c < {pids}/pids.current; "
                      f"read e < {pids}/pids.events; echo $c $e")
    assert proc.returncode == 0, proc.stderr
    current, _max, refused = proc.stdout.split()[:3]
    assert int(current) <= 10 and int(refused) > 0, proc.stdout


# --- OOM -------------------------------------------------------------------------------------

def no_swap():
    """podman flags that leave a container no swap: memory+swap as its memory limit where the
    host accounts swap (v1's memsw files, cgroup2's memory.swap.max), else swappiness 0."""
    if hostprobe.has_cgroup_file("memory", "memory.memsw.limit_in_bytes") or \
            not hostprobe.is_hybrid_or_v1():
        return ["--memory-swap", "32m"]
    return ["--memory-swappiness", "0"]


def test_memory_hog_is_oom_killed_exit_137(podman):
    n = name()
    proc = podman.run("--memory", "32m", *no_swap(), "--", "sh", "-c", HOG, name=n)
    assert proc.returncode == 137, (proc.returncode, proc.stdout, proc.stderr)
    assert "survived" not in proc.stdout
    assert podman("inspect", "--format", "{{.State.ExitCode}}", n).stdout.strip() == "137"
    podman("rm", n, check=True)


@v1_files
def test_oom_kill_in_exec_is_counted_by_the_containers_cgroup(podman):
    """The init (sleep) survives; the exec'd hog is killed (137) and the kernel's own OOM
    counter in the container's memory cgroup says so."""
    n = name()
    podman.run("-d", "--memory", "32m", *no_swap(), "--", "sleep", "60", name=n, check=True)
    try:
        hog = podman("exec", n, "sh", "-c", HOG)
        assert hog.returncode == 137, (hog.returncode, hog.stderr)
        oom = podman("exec", n, "cat", "/sys/fs/cgroup/memory/memory.oom_control").stdout
        assert int(dict(line.split() for line in oom.splitlines())["oom_kill"]) >= 1, oom
        assert podman("inspect", "--format", "{{.State.Status}}", n).stdout.strip() \
            == "running"
    finally:
        podman("rm", "-f", "-t", "0", n)


# --- read-only root --------------------------------------------------------------------------

def test_read_only_root_with_writable_tmpfs(podman):
    """``--read-only``: / is read-only; podman mounts tmpfs with ``tmpcopyup`` on /tmp,
    /var/tmp and /run (what the image had there is copied up first)."""
    proc = podman.run("--rm", "--read-only", "--", "sh", "-c",
                      "touch /x 2>&1; echo root=$?; "
                      "for d in /tmp /var/tmp /run; do touch $d/y && echo $d=ok; done; "
                      f"cat /var/tmp/{IMAGE_FILE}; "
                      "grep -E ' / | /tmp | /var/tmp ' /proc/self/mounts | cut -d' ' -f2,3,4")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "from the image" in out, out  # copied up into the tmpfs
    assert "Read-only file system" in out and "root=1" in out, out
    assert "/tmp=ok" in out and "/var/tmp=ok" in out and "/run=ok" in out, out
    mounts = {line.split()[0]: line.split()[1:] for line in out.splitlines()
              if line.startswith("/") and " " in line}
    assert mounts["/"][1].split(",")[0] == "ro", mounts
    for d in ("/tmp", "/var/tmp"):
        assert mounts[d][0] == "tmpfs" and mounts[d][1].split(",")[0] == "rw", mounts


# --- a user's own podman -----------------------------------------------------------------------

def test_a_users_podman_containers_are_left_alone(podman, workdir):
    """Another store's running container (as a user's would be, in podman's default store)
    is not seen, stopped or counted by these tests' cleanup and leak check."""
    user = Podman(os.path.join(workdir, f"user-podman-{uuid.uuid4().hex[:6]}"))
    user.image = "localhost/users-own"
    try:
        user("import", podman.tar, user.image, check=True)
        theirs = name()
        user.run("-d", "--", "sleep", "600", name=theirs, check=True)
        their_id = user("inspect", "--format", "{{.Id}}", theirs).stdout.strip()
        mine = name()
        podman.run("-d", "--", "sleep", "60", name=mine, check=True)
        assert podman("ps", "-aq", "--no-trunc").stdout.split() == [
            podman("inspect", "--format", "{{.Id}}", mine).stdout.strip()]
        podman("rm", "-af", "-t", "0", check=True)  # what the fixtures do
        assert their_id not in podman.container_ids()
        assert wait_for(lambda: not leftovers(podman.container_ids()), 5)
        assert user("inspect", "--format", "{{.State.Status}}", theirs).stdout.strip() \
            == "running"
        assert leftovers([their_id])  # it holds its cgroups and conmon: the check sees them
    finally:
        user("rm", "-af", "-t", "0")
        user("rmi", "-af")
        ids = user.container_ids()
        wait_for(lambda: not leftovers(ids), 5)
        shutil.rmtree(user.base, ignore_errors=True)
    assert not leftovers(ids), leftovers(ids)
