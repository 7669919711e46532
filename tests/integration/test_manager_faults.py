"""The manager under faults and hostile neighbours, through the real ``kago`` command line:
a non-root caller, a full log disk and an fd limit in the supervisor, other local users
reading the state root, a second root wanting the same host port, ``exec -d`` and a
definition whose container exits before it is ready.

Every test has its own manager root (kago.manager.testing.KagoEnv); mounts it makes for
itself (a small tmpfs for a log directory) are unmounted before it ends.
"""

import os
import subprocess

import pytest

from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture, wait_http  # noqa: F401 (fixture)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def wait_until(predicate, timeout=10.0, interval=0.05):
    return wait_for(predicate, timeout, interval)


def as_nobody(argv, env=None):
    return subprocess.run(NOBODY + list(argv), capture_output=True, text=True, env=env,
                          timeout=30, check=False)


# --- without root ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["ps"], ["ps", "-a"], ["import", "/etc/hostname", "x"],
                                  ["run", "busybox", "true"], ["inspect", "x"]])
def test_a_user_without_subordinate_ids_is_told_what_to_add(kmt, argv):
    """(nobody has no /etc/subuid entry: kago as a user needs one for its namespace)"""
    before = sorted(os.listdir(kmt.root))
    proc = as_nobody([KAGO, "--root", kmt.root] + argv)
    assert proc.returncode == 125, proc
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "user nobody has no range in /etc/subuid" in proc.stderr, proc.stderr
    assert sorted(os.listdir(kmt.root)) == before


# --- exec -d --------------------------------------------------------------------------------

def test_exec_detached_returns_at_once_and_the_program_runs_on(kmt):
    import time
    kmt.kago("run", "-d", "--name", "kmt-xd", "--network", "none", "busybox", "sleep", "60",
             check=True)
    start = time.monotonic()
    proc = kmt.kago("exec", "-d", "kmt-xd", "sh", "-c", "sleep 4; touch /tmp/done",
                    timeout=30)
    took = time.monotonic() - start
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert took < 3, f"exec -d took {took:.1f} s"
    assert kmt.kago("exec", "kmt-xd", "test", "-e", "/tmp/done").returncode == 1
    assert wait_until(lambda: kmt.kago("exec", "kmt-xd", "test", "-e", "/tmp/done")
                      .returncode == 0, timeout=10)
    proc = kmt.kago("exec", "-d", "kmt-xd", "no-such-cmd")
    assert proc.returncode == 127 and "not found" in proc.stderr, proc
    assert proc.stderr.count("\n") == 1
    kmt.kago("rm", "-f", "kmt-xd", check=True)


# --- up: a container that exits before it is ready ------------------------------------------

def test_up_reports_a_container_that_exits_before_it_is_ready_with_its_output(kmt, tmp_path):
    import textwrap
    import time
    path = tmp_path / "def.py"
    path.write_text(textwrap.dedent("""\
        from kago.manager.define import Container, tcp
        c = Container("kmt-early", image="busybox", network="none",
                      command=["sh", "-c", "echo starting; echo DB_HOST is not set >&2; exit 1"])
        c.ready(tcp(20321), timeout=10)
        """))
    start = time.monotonic()
    proc = kmt.kago("up", str(path))
    took = time.monotonic() - start
    assert proc.returncode == 125, proc
    assert "container kmt-early exited with 1 before it was ready: DB_HOST is not set" \
        in proc.stderr, proc.stderr
    assert "kmt-early | starting" in proc.stderr
    assert took < 8, f"up took {took:.1f} s to notice"
    assert kmt.manager().records.all() == []  # rolled back


# --- the supervisor on a full log disk, and without fds -------------------------------------

def _supervisor_log(kmt):
    from kago.manager.paths import Paths
    with open(Paths(kmt.root).supervisor_log()) as f:
        return f.read()


def _log_lines(kmt, ref):
    return kmt.kago("logs", ref).stdout.splitlines()


@pytest.fixture
def small_log_disk(kmt):
    """``mount(cid)``: a 64 KiB tmpfs on that container's log directory, unmounted after."""
    mounted = []

    def mount(cid):
        path = os.path.join(kmt.root, "containers", cid, "logs")
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=700", "kmt-logs", path],
                       check=True)
        mounted.append(path)
        return path
    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", path], check=False)


def test_a_full_log_disk_drops_lines_and_the_supervisor_goes_on(kmt, small_log_disk):
    loud = kmt.kago("create", "--name", "kmt-loud", "--network", "none", "busybox", "sh", "-c",
                    "i=0; while :; do i=$((i+1)); echo line $i padded to fill the disk; "
                    "[ $((i % 50)) = 0 ] && sleep 0.05; done", check=True).stdout.strip()
    logdir = small_log_disk(loud)
    kmt.kago("start", "kmt-loud", check=True)
    pid = kmt.supervisor_pid()
    assert wait_until(lambda: "no space left on device" in _supervisor_log(kmt), timeout=20)
    # the supervisor lives and still supervises: another container's end and output
    kmt.kago("run", "-d", "--name", "kmt-other", "--network", "none", "busybox", "sh", "-c",
             "echo other; exit 5", check=True)
    assert wait_until(lambda: kmt.inspect("kmt-other")["State"]["Status"] == "exited")
    assert kmt.inspect("kmt-other")["State"]["ExitCode"] == 5
    assert _log_lines(kmt, "kmt-other") == ["other"]
    assert kmt.supervisor_pid() == pid and kmt.inspect("kmt-loud")["State"]["Running"]
    assert _supervisor_log(kmt).count("dropping log lines") == 1  # warned once
    shown = kmt.kago("system", "supervisor", check=True).stdout
    assert f"{loud[:12]}: " in shown and "log lines dropped" in shown, shown
    # space comes back: capture resumes
    size = os.path.getsize(os.path.join(logdir, "ctr.log"))
    subprocess.run(["mount", "-o", "remount,size=1m", logdir], check=True)
    assert wait_until(lambda: os.path.getsize(os.path.join(logdir, "ctr.log")) > size + 4096)
    assert wait_until(lambda: "writing again after dropping" in _supervisor_log(kmt))
    kmt.kago("stop", "-t", "0", "kmt-loud", check=True)
    last = _log_lines(kmt, "kmt-loud")[-1]
    assert last.startswith("line ") and int(last.split()[1]) > 1000
    subprocess.run(["umount", logdir], check=True)
    assert kmt.supervisor_pid() == pid


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_no_fd_left_in_the_supervisor_loses_nothing_but_log_lines(kmt):
    kmt.kago("run", "-d", "--name", "kmt-tick", "--network", "none", "--log-opt",
             "max-size=1k", "busybox", "sh", "-c",
             "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done", check=True)
    kmt.kago("run", "-d", "--name", "kmt-ends", "--network", "none", "busybox", "sh", "-c",
             "sleep 4; exit 4", check=True)
    pid = kmt.supervisor_pid()
    hard = subprocess.run(["prlimit", "--pid", str(pid), "--nofile", "--raw", "--noheadings",
                           "--output=HARD"], capture_output=True, text=True, check=True
                          ).stdout.strip()
    # below every fd it holds: each new one (a rotated log, a record edit) fails with EMFILE
    subprocess.run(["prlimit", "--pid", str(pid), f"--nofile=3:{hard}"], check=True)
    waiter = None
    try:
        assert kmt.inspect("kmt-ends")["State"]["Running"]  # so it ends under the limit
        # a client it cannot accept waits in the backlog, without the supervisor spinning
        waiter = subprocess.Popen([KAGO, "wait", "kmt-ends"], env=kmt.env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert wait_until(lambda: "cannot accept a client" in _supervisor_log(kmt))
        cpu = _cpu_seconds(pid)
        import time
        time.sleep(1)
        assert _cpu_seconds(pid) - cpu < 0.5
        assert wait_until(lambda: "too many open files" in _supervisor_log(kmt), timeout=15), \
            _supervisor_log(kmt)
        assert wait_until(lambda: "recording its end failed" in _supervisor_log(kmt),
                          timeout=15), _supervisor_log(kmt)
        assert kmt.supervisor_pid() == pid
    finally:
        subprocess.run(["prlimit", "--pid", str(pid), f"--nofile=1024:{hard}"], check=True)
    # fds again: the waiting client is served, the end is recorded, the log written again
    out, err = waiter.communicate(timeout=30)
    assert (waiter.returncode, out) == (0, "4\n"), err
    assert wait_until(lambda: kmt.inspect("kmt-ends")["State"]["Status"] == "exited")
    assert kmt.inspect("kmt-ends")["State"]["ExitCode"] == 4
    assert wait_until(lambda: "writing again after dropping" in _supervisor_log(kmt))
    before = int(_log_lines(kmt, "kmt-tick")[-1].split()[1])
    assert wait_until(lambda: int(_log_lines(kmt, "kmt-tick")[-1].split()[1]) > before)
    assert kmt.supervisor_pid() == pid
    kmt.kago("rm", "-f", "kmt-tick", "kmt-ends", check=True)


# --- who may read the state ------------------------------------------------------------------

def _secret_container(kmt):
    cid = kmt.kago("run", "-d", "--name", "kmt-secret", "--network", "none", "-e",
                   "DB_PASSWORD=hunter2-kmt", "busybox", "sh", "-c",
                   "echo pw=$DB_PASSWORD; sleep 60", check=True).stdout.strip()
    assert wait_until(lambda: "hunter2-kmt" in kmt.kago("logs", "kmt-secret").stdout)
    return cid


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_other_users_cannot_read_records_specs_or_logs(kmt):
    cid = _secret_container(kmt)
    cdir = os.path.join(kmt.root, "containers", cid)
    for path in (os.path.join(cdir, "container.json"), os.path.join(cdir, "bundle",
                                                                     "config.json"),
                 os.path.join(cdir, "logs", "ctr.log")):
        proc = as_nobody(["cat", path])
        assert proc.returncode != 0 and "Permission denied" in proc.stderr, (path, proc)
        assert _mode(path) == 0o600
    assert as_nobody(["ls", kmt.root]).returncode != 0  # searchable, not listable
    proc = as_nobody(["grep", "-rl", "hunter2-kmt", kmt.root])
    assert proc.stdout == "", proc.stdout
    assert (_mode(kmt.root), _mode(os.path.join(cdir, "logs"))) == (0o711, 0o700)
    proc = as_nobody([KAGO, "--root", kmt.root, "inspect", "kmt-secret"])
    assert proc.returncode == 125 and "hunter2" not in proc.stdout + proc.stderr
    kmt.kago("rm", "-f", "kmt-secret", check=True)


def test_a_root_left_open_is_tightened_by_the_next_command(kmt):
    cid = _secret_container(kmt)
    cdir = os.path.join(kmt.root, "containers", cid)
    old = {kmt.root: 0o755, os.path.join(kmt.root, "containers"): 0o755, cdir: 0o755,
           os.path.join(cdir, "container.json"): 0o644,
           os.path.join(cdir, "bundle", "config.json"): 0o644,
           os.path.join(cdir, "logs"): 0o755, os.path.join(cdir, "logs", "ctr.log"): 0o644,
           os.path.join(kmt.root, "names"): 0o755}
    for path, mode in old.items():
        os.chmod(path, mode)  # as an older kago left it
    assert as_nobody(["cat", os.path.join(cdir, "container.json")]).returncode == 0
    kmt.kago("ps", check=True)
    assert {p: _mode(p) for p in old} == {
        kmt.root: 0o711, os.path.join(kmt.root, "containers"): 0o711, cdir: 0o711,
        os.path.join(cdir, "container.json"): 0o600,
        os.path.join(cdir, "bundle", "config.json"): 0o600,
        os.path.join(cdir, "logs"): 0o700, os.path.join(cdir, "logs", "ctr.log"): 0o600,
        os.path.join(kmt.root, "names"): 0o700}
    assert as_nobody(["cat", os.path.join(cdir, "container.json")]).returncode != 0
    # the supervisor still writes its log, and a restart still works
    kmt.kago("restart", "-t", "0", "kmt-secret", check=True)
    assert wait_until(lambda: kmt.kago("logs", "kmt-secret").stdout.count("hunter2") == 2)
    kmt.kago("rm", "-f", "kmt-secret", check=True)


# --- host-wide: ports and ip_forward shared by every kago root ------------------------------

@pytest.fixture
def second(workdir, rootfs_cache):
    """Another manager root on the same host (its own table, bridge and netns names)."""
    from kago.manager.testing import KagoEnv
    env = KagoEnv(workdir, rootfs_cache=rootfs_cache)
    yield env
    left = env.destroy()
    assert not left, f"test left things behind: {left}"


def _outbound(env):
    import json
    env.settings["network"]["outbound"] = True
    with open(os.path.join(env.root, "kago.json"), "w") as f:
        json.dump(env.settings, f)


def test_a_port_published_by_another_root_is_refused(kmt, second):
    import random
    port = random.randrange(20000, 29000)
    kmt.kago("run", "-d", "--name", "kmt-first", "-p", f"127.0.0.1:{port}:8080", "busybox",
             "httpd", "-f", "-p", "8080", "-h", "/etc", check=True)
    assert wait_http(port, "/hostname")
    proc = second.kago("run", "-d", "--name", "kmt-second", "-p", f"{port}:8080", "busybox",
                       "httpd", "-f", "-p", "8080", "-h", "/etc")
    assert proc.returncode == 125, proc.stderr
    assert f"host port {port}/tcp: already published by container" in proc.stderr
    assert kmt.root in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert second.kago("ps", "-aq", check=True).stdout == ""
    assert wait_http(port, "/hostname")  # still the first root's container
    # the port is free again once its container has ended (an ended container holds none)
    kmt.kago("stop", "-t", "0", "kmt-first", check=True)
    second.kago("run", "-d", "--name", "kmt-second", "-p", f"127.0.0.1:{port}:8080",
                "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc", check=True)
    assert wait_http(port, "/hostname")
    assert kmt.kago("start", "kmt-first").returncode != 0  # now the other way round
    second.kago("rm", "-f", "kmt-second", check=True)
    kmt.kago("rm", "-f", "kmt-first", check=True)


def test_a_port_a_host_process_has_bound_is_refused_udp_with_reuseaddr_too(kmt):
    import random
    import socket
    port = random.randrange(20000, 29000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a bind test would pass
        s.bind(("127.0.0.1", port))
        proc = kmt.kago("run", "-d", "--name", "kmt-udp", "-p", f"127.0.0.1:{port}:53/udp",
                        "busybox", "sleep", "30")
    assert proc.returncode == 125, proc
    assert f"host port {port}/udp: a process on the host already uses it" in proc.stderr
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def _ip_forward():
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip()


def test_ip_forward_goes_back_when_the_last_network_of_any_root_goes(kmt, second):
    import random
    before = _ip_forward()
    _outbound(kmt)
    _outbound(second)
    a, b = f"kmt{kmt.tag}o", f"kmt{second.tag}o"
    net = random.randrange(1, 250)
    kmt.kago("network", "create", "--subnet", f"10.251.{net}.0/24", a, check=True)
    assert _ip_forward() == "1"
    second.kago("network", "create", "--subnet", f"10.252.{net}.0/24", b, check=True)
    assert _ip_forward() == "1"
    kmt.kago("network", "rm", a, check=True)
    assert _ip_forward() == "1"  # the other root's network still needs it
    second.kago("network", "rm", b, check=True)
    assert _ip_forward() == before


# --- bad input on a root that does not exist yet -------------------------------------------

@pytest.mark.parametrize("argv", [
    ["inspect", "nosuch"], ["rmi", "nosuch"], ["tag", "nosuch", "other"],
    ["save", "-o", "/nonexistent/x.tar", "nosuch"], ["push", "nosuch"],
    ["network", "rm", "nosuch"], ["network", "inspect", "nosuch"], ["logs", "nosuch"],
    ["exec", "-d", "nosuch", "true"], ["run", "-p", "99999:80", "busybox", "true"]])
def test_bad_input_on_a_new_root_makes_no_root(tmp_path, argv):
    root = tmp_path / "root"
    proc = subprocess.run([KAGO, "--root", str(root)] + argv, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 125, proc
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("kago: "), proc.stderr
    assert not root.exists(), sorted(os.listdir(root))


@pytest.mark.parametrize("argv", [["images"], ["network", "ls"], ["ps", "-a"]])
def test_listing_a_new_root_makes_no_root(tmp_path, argv):
    root = tmp_path / "root"
    proc = subprocess.run([KAGO, "--root", str(root)] + argv, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0 and proc.stderr == "", proc
    assert not root.exists()
