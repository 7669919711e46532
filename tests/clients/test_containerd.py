"""containerd 1.6 (Debian's) running its tasks with kago-oci through the runc.v2 shim.

A private containerd (tests/clients/containerd_fixture.py: its own root, state, socket, runc
root and FIFO directory on a tmpfs) imports a busybox image from an OCI archive written here,
and ``ctr run --runtime io.containerd.runc.v2 --runc-binary kago-oci`` runs it: the shim calls
kago-oci exactly as it calls runc (``create --bundle --pid-file [--console-socket]``,
``start``, ``exec --process --detach``, ``kill``, ``pause``, ``resume``, ``ps``,
``delete``), reads its pid files and waits on the container as its subreaper. This host has
hybrid cgroups, so containerd and kago-oci use the v1 hierarchies (cgroupfs).

Every test removes its containers; the module's teardown stops containerd by PID, then its
shims, and asserts that no shim, cgroup or mount of it is left.
"""

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import KAGO_OCI, wait_for
from containerd_fixture import Containerd, argv_of, mount_tmpfs, unmount, write_oci_archive

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root and the real kernel"),
    pytest.mark.skipif(shutil.which("containerd") is None or shutil.which("ctr") is None
                       or shutil.which("containerd-shim-runc-v2") is None,
                       reason="containerd is not installed: apt-get install containerd"),
]

IMAGE = "docker.io/kago/busybox:test"
CG = "/sys/fs/cgroup"


class Ctr:
    """``ctr`` against the private daemon, in one namespace, with kago-oci as the runtime."""

    def __init__(self, daemon, ns):
        self.daemon = daemon
        self.ns = ns

    def __call__(self, *args, **kw):
        return self.daemon.ctr(*args, ns=self.ns, **kw)

    def run_args(self, cid, *flags):
        return ["run", "--runtime", "io.containerd.runc.v2", "--runc-binary", KAGO_OCI,
                "--runc-root", self.daemon.runc_root, "--fifo-dir", self.daemon.fifo_dir,
                "--cgroup", self.cgroup(cid), *flags, IMAGE, cid]

    def run(self, cid, *cmd, flags=(), **kw):
        return self(*self.run_args(cid, *flags), *cmd, **kw)

    def exec(self, cid, exec_id, *cmd, flags=()):
        """``ctr tasks exec``; the command lingers 0.1 s after it is done, keeping its exit
        status: ctr stops copying output once it has the status, and output written just
        before a fast exit was lost now and then under load (about 1 in 100 exits with
        kago-oci, none seen in 450 with runc: ctr's race or a timing kago-oci makes more likely)."""
        script = '"$@"; status=$?; sleep 0.1; exit $status'
        return self("tasks", "exec", "--exec-id", exec_id, "--fifo-dir", self.daemon.fifo_dir,
                    *flags, cid, "sh", "-c", script, "sh", *cmd)

    def cgroup(self, cid):
        return f"/{self.ns}/{cid}"

    def cgroup_file(self, controller, cid, name):
        with open(f"{CG}/{controller}{self.cgroup(cid)}/{name}") as f:
            return f.read().strip()

    def task_status(self, cid):
        for line in self("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return fields[2]
        return None

    def remove(self, cid):
        """Kill, delete the task, delete the container (its snapshot goes with it)."""
        if self.task_status(cid) not in (None, "STOPPED"):
            self("tasks", "kill", "-a", "-s", "SIGKILL", cid)
            wait_for(lambda: self.task_status(cid) == "STOPPED", timeout=10)
        self("tasks", "delete", cid)
        self("containers", "delete", cid)


@pytest.fixture(scope="module")
def daemon():
    yield from private_daemon()


def private_daemon():
    """A private containerd with the busybox image imported, as a Ctr in a namespace of its
    own; stopped and checked for leftovers afterwards (for a fixture: ``yield from``)."""
    base = tempfile.mkdtemp(prefix="kago-containerd-")
    mount_tmpfs(base)
    ns = f"kago-ctr-{uuid.uuid4().hex[:8]}"
    d = Containerd(base, cgroup_parents=[f"/{ns}"])
    try:
        from kago.testing import busybox
        rootfs = busybox.build_rootfs(os.path.join(base, "image-rootfs"))
        archive = write_oci_archive(os.path.join(base, "busybox.tar"), rootfs, IMAGE, ["sh"])
        d.start()
        ctr = Ctr(d, ns)
        ctr("images", "import", archive, check=True)
        yield ctr
    finally:
        left = d.stop()
        unmount(base)
        os.rmdir(base)
    assert not left, f"containerd left things behind: {left}"


@pytest.fixture
def ctr(daemon):
    """The namespace's ctr; after the test, no task, container or container cgroup is left."""
    yield daemon
    tasks = daemon("tasks", "ls", "-q").stdout.split()
    containers = daemon("containers", "ls", "-q").stdout.split()
    for cid in containers:
        daemon.remove(cid)
    cgroups = [d for d in daemon.daemon.cgroup_dirs() if os.path.basename(d) != daemon.ns]
    mounts = [m for m in daemon.daemon.mounts() if m.endswith("/rootfs")]
    assert not (tasks or containers or cgroups or mounts), \
        f"left behind: tasks {tasks}, containers {containers}, cgroups {cgroups}, mounts {mounts}"


def new_id():
    return f"c-{uuid.uuid4().hex[:8]}"


def test_run_exit_code_and_output(ctr):
    cid = new_id()
    proc = ctr.run(cid, "sh", "-c", "echo out $$; echo err >&2; "
                   "ls /proc/self/ns >/dev/null; hostname; exit 3", flags=["--rm"])
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines()[0] == "out 1"  # the command is PID 1 of its namespace
    assert "err" in proc.stderr
    assert ctr.run(new_id(), "true", flags=["--rm"]).returncode == 0


def test_kago_oci_is_the_runtime(ctr):
    cid = new_id()
    assert ctr.run(cid, "sleep", "60", flags=["-d"]).returncode == 0
    try:
        info = json.loads(ctr("containers", "info", cid, check=True).stdout)
        assert info["Runtime"]["Name"] == "io.containerd.runc.v2"
        # the shim's state for this task is kago-oci's record (runc has no "kago" key)
        state = os.path.join(ctr.daemon.runc_root, ctr.ns, cid, "state.json")
        with open(state) as f:
            record = json.load(f)
        assert "kago" in record and record["id"] == cid
        pid = int(ctr("tasks", "ls").stdout.split(cid)[1].split()[0])
        # `start` returns once the process is released, maybe before its execve is through
        assert wait_for(lambda: argv_of(pid) == ["sleep", "60"]), argv_of(pid)
    finally:
        ctr.remove(cid)


def test_exec_logs_pause_resume_kill_delete(ctr, tmp_path):
    cid = new_id()
    log = tmp_path / "out.log"
    script = "echo started; trap 'echo got TERM; exit 0' TERM; while :; do sleep 0.1; done"
    assert ctr.run(cid, "sh", "-c", script,
                   flags=["-d", "--log-uri", f"file://{log}"]).returncode == 0
    try:
        assert wait_for(lambda: log.exists() and "started" in log.read_text(), timeout=5)
        proc = ctr.exec(cid, "e1", "sh", "-c", "echo in exec $$; exit 5")
        assert proc.returncode == 5, proc.stderr
        assert proc.stdout.startswith("in exec ") and proc.stdout.split()[-1] != "1"
        assert ctr.exec(cid, "e2", "cat", "/proc/1/cmdline").stdout \
            .startswith("sh\0-c\0")  # exec joins the task's PID namespace
        proc = ctr.exec(cid, "e3", "id", flags=["--user", "1000"])
        assert proc.stdout.startswith("uid=1000(user) gid=1000(user)"), proc.stderr

        assert ctr("tasks", "pause", cid).returncode == 0
        assert ctr.task_status(cid) == "PAUSED"
        assert ctr.cgroup_file("freezer", cid, "freezer.state") == "FROZEN"
        assert ctr("tasks", "resume", cid).returncode == 0
        assert ctr.task_status(cid) == "RUNNING"
        assert ctr.cgroup_file("freezer", cid, "freezer.state") == "THAWED"

        ps = ctr("tasks", "ps", cid).stdout.split()
        assert len(ps) >= 3  # header, the shell, its sleep

        assert ctr("tasks", "kill", "-s", "SIGTERM", cid).returncode == 0
        assert wait_for(lambda: ctr.task_status(cid) == "STOPPED", timeout=10)
        assert wait_for(lambda: "got TERM" in log.read_text(), timeout=5)
        proc = ctr("tasks", "delete", cid)
        assert proc.returncode == 0 and "exit code" not in proc.stderr  # the trap's exit 0
        assert not os.path.exists(f"{CG}/memory{ctr.cgroup(cid)}")  # kago-oci delete removed it
        assert not os.path.exists(os.path.join(ctr.daemon.runc_root, ctr.ns, cid))
        assert ctr("containers", "delete", cid).returncode == 0
        assert cid not in ctr("containers", "ls", "-q").stdout.split()
    finally:
        ctr.remove(cid)


def test_kill_sigkill_a_task_that_ignores_term(ctr):
    cid = new_id()
    assert ctr.run(cid, "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done",
                   flags=["-d"]).returncode == 0
    try:
        assert ctr("tasks", "kill", "-s", "SIGTERM", cid).returncode == 0
        time.sleep(0.3)
        assert ctr.task_status(cid) == "RUNNING"
        assert ctr("tasks", "kill", "-s", "SIGKILL", cid).returncode == 0
        assert wait_for(lambda: ctr.task_status(cid) == "STOPPED", timeout=10)
        # `ctr tasks delete` reports the status the shim recorded: 128 + SIGKILL
        proc = ctr("tasks", "delete", cid)
        assert proc.returncode == 0 and "exit code 137" in proc.stderr, proc.stderr
    finally:
        ctr.remove(cid)


def test_kill_all_reaches_every_process(ctr):
    cid = new_id()
    assert ctr.run(cid, "sh", "-c", "sleep 1000 & sleep 1000 & wait", flags=["-d"]).returncode == 0
    try:
        assert wait_for(lambda: len(ctr("tasks", "ps", cid).stdout.splitlines()) == 4)
        pids = [int(line.split()[0]) for line in ctr("tasks", "ps", cid).stdout.splitlines()[1:]]
        assert ctr("tasks", "kill", "--all", "-s", "SIGKILL", cid).returncode == 0
        assert wait_for(lambda: ctr.task_status(cid) == "STOPPED", timeout=10)
        assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids))
    finally:
        ctr.remove(cid)


def _run_on_pty(argv, timeout=30):
    """Run ``argv`` with a terminal as its stdio (as a person at a shell); (exit code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=max(1, deadline - time.monotonic())), out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_tty_run_and_exec(ctr):
    # each command lingers after its output: ctr stops copying a terminal's output once it
    # has the exit status, so output written just before a fast exit can be lost (rarely,
    # under load; ctr's race, with runc as well)
    cid = new_id()
    base = ["ctr", "--address", ctr.daemon.address, "--namespace", ctr.ns]
    code, out = _run_on_pty([*base, *ctr.run_args(cid, "--rm", "-t"), "sh", "-c",
                             "tty; test -t 0 && test -t 1 && echo both-ttys; sleep 0.2; exit 4"])
    assert code == 4, out
    assert "/dev/pts/0" in out and "both-ttys" in out
    # exec -t: kago-oci exec hands the shim a new terminal through its console socket
    assert ctr.run(cid, "sleep", "60", flags=["-d"]).returncode == 0
    try:
        code, out = _run_on_pty([*base, "tasks", "exec", "-t", "--exec-id", "t",
                                 "--fifo-dir", ctr.daemon.fifo_dir, cid,
                                 "sh", "-c", "tty; test -t 0 && echo a-tty; sleep 0.2; exit 6"])
        assert code == 6, out
        assert "/dev/pts/" in out and "a-tty" in out
    finally:
        ctr.remove(cid)


def test_memory_and_cpu_limits_in_the_cgroup(ctr):
    cid = new_id()
    flags = ["-d", "--memory-limit", str(64 << 20), "--cpus", "0.5", "--cpu-shares", "512"]
    assert ctr.run(cid, "sleep", "60", flags=flags).returncode == 0
    try:
        assert ctr.cgroup_file("memory", cid, "memory.limit_in_bytes") == str(64 << 20)
        assert ctr.cgroup_file("cpu", cid, "cpu.cfs_quota_us") == "50000"
        assert ctr.cgroup_file("cpu", cid, "cpu.cfs_period_us") == "100000"
        assert ctr.cgroup_file("cpu", cid, "cpu.shares") == "512"
        procs = ctr.cgroup_file("memory", cid, "cgroup.procs").split()
        pid = ctr("tasks", "ls").stdout.split(cid)[1].split()[0]
        assert pid in procs
        metrics = ctr("tasks", "metrics", cid).stdout  # the shim reads kago-oci's cgroup
        assert f"memory.limit_in_bytes    {64 << 20}" in metrics, metrics
        # an exec'd process lands in the task's cgroups too (ctr's spec mounts no cgroupfs)
        inside = ctr.exec(cid, "m", "cat", "/proc/self/cgroup")
        lines = inside.stdout.splitlines()
        assert any(line.endswith(f":memory:{ctr.cgroup(cid)}") for line in lines), inside
        assert any(line.endswith(f":cpu,cpuacct:{ctr.cgroup(cid)}") for line in lines) or \
            any(line.endswith(f":cpu:{ctr.cgroup(cid)}") for line in lines), inside
    finally:
        ctr.remove(cid)


def _read_until(fd, done, timeout=10):
    """Read ``fd`` until ``done(what was read)`` (bounded); return what was read."""
    out = b""
    deadline = time.monotonic() + timeout
    while not done(out) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out


def test_oom_kill_exits_137_with_an_oom_event(ctr):
    cid = new_id()
    events = subprocess.Popen(["ctr", "--address", ctr.daemon.address, "--namespace", ctr.ns,
                               "events"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        # subscribed once an event of our own comes through
        marker = new_id()
        ctr("containers", "create", IMAGE, marker, "true", check=True)
        ctr("containers", "delete", marker, check=True)
        seen = _read_until(events.stdout.fileno(), lambda out: marker.encode() in out)
        assert marker.encode() in seen
        proc = ctr.run(cid, "sh", "-c", "x=0123456789; while :; do x=$x$x; done",
                       flags=["--rm", "--memory-limit", str(32 << 20)])
        assert proc.returncode == 137, proc.stderr
        deleted = f'/containers/delete {{"id":"{cid}"}}'.encode()
        out = _read_until(events.stdout.fileno(), lambda out: deleted in out).decode()
    finally:
        events.send_signal(signal.SIGTERM)
        events.communicate(timeout=10)
    lines = [line for line in out.splitlines() if f'"{cid}"' in line]
    assert any("/tasks/oom" in line for line in lines), out
    exit_lines = [line for line in lines if "/tasks/exit" in line]
    assert exit_lines and '"exit_status":137' in exit_lines[0], out


def test_read_only_root(ctr):
    cid = new_id()
    proc = ctr.run(cid, "sh", "-c", "touch /x 2>&1; touch /tmp/y 2>&1; "
                   "grep ' / ' /proc/self/mounts", flags=["--rm", "--read-only"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Read-only file system") == 2, proc.stdout
    root_mount = proc.stdout.splitlines()[-1].split()
    assert root_mount[1] == "/" and "ro" in root_mount[3].split(",")


def test_task_survives_a_daemon_restart(ctr):
    """containerd killed outright: the shim keeps the task; a new daemon reconnects to it and
    kills and deletes it through kago-oci as before."""
    cid = new_id()
    assert ctr.run(cid, "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done",
                   flags=["-d"]).returncode == 0
    try:
        shims = ctr.daemon.shim_pids()
        assert shims
        ctr.daemon.proc.send_signal(signal.SIGKILL)
        ctr.daemon.proc.wait(10)
        assert ctr.daemon.shim_pids() == shims  # the shims outlive the daemon
        ctr.daemon.start()
        assert wait_for(lambda: ctr.task_status(cid) == "RUNNING", timeout=10)
        proc = ctr.exec(cid, "after", "echo", "still here")
        assert proc.returncode == 0 and proc.stdout == "still here\n", proc.stderr
        assert ctr("tasks", "kill", cid).returncode == 0
        assert wait_for(lambda: ctr.task_status(cid) == "STOPPED", timeout=10)
        assert ctr("tasks", "delete", cid).returncode == 0
    finally:
        if ctr.daemon.proc.poll() is not None:
            ctr.daemon.start()
        ctr.remove(cid)
