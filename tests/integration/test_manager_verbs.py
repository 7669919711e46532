"""kago's docker-like verbs against the real kernel: run/ps/logs/stop/rm, exit codes, exec,
restart policies, published ports, ID-mapped containers, OOM, and the supervisor's death.

Every test gets its own manager root (kago.manager.testing.KagoEnv) and must leave nothing
behind: the fixture removes everything and asserts no mount, netns, link, nft table, cgroup
or supervisor process is left.
"""

import json
import os
import signal
import subprocess
import time

import pytest

import hostprobe
from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture, wait_http  # noqa: F401 (fixture)


def wait_until(predicate, timeout=10.0, interval=0.05):
    return wait_for(predicate, timeout, interval)  # conftest's, with the manager's pace


def test_run_foreground_streams_output_and_exits_with_the_containers_status(kmt):
    proc = kmt.kago("run", "--name", "kmt-fg", "--network", "none", "busybox",
                    "sh", "-c", "echo out; echo err >&2; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == "out\n"
    assert "err\n" in proc.stderr
    ps = kmt.kago("ps", "-a", "--format", "{{.Names}} {{.Status}}", check=True).stdout
    assert ps.startswith("kmt-fg Exited (3)")
    logs = kmt.kago("logs", "kmt-fg", check=True)
    assert logs.stdout == "out\n" and logs.stderr == "err\n"


def test_run_rm_leaves_no_container(kmt):
    proc = kmt.kago("run", "--rm", "--name", "kmt-rm", "--network", "none", "busybox",
                    "echo", "bye")
    assert (proc.returncode, proc.stdout) == (0, "bye\n")
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def test_detached_lifecycle_ps_logs_stop_rm(kmt):
    cid = kmt.kago("run", "-d", "--name", "kmt-d", "--network", "none", "busybox", "sh", "-c",
                   "trap 'echo term; exit 0' TERM; echo up; while :; do sleep 0.1; done",
                   check=True).stdout.strip()
    assert len(cid) == 64
    assert wait_until(lambda: "up" in kmt.kago("logs", "kmt-d").stdout)
    row = kmt.kago("ps", "--format", "{{.ID}}|{{.Names}}|{{.Status}}", check=True).stdout
    assert row.startswith(f"{cid[:12]}|kmt-d|Up ")
    doc = kmt.inspect("kmt-d")
    assert doc["State"]["Running"] and doc["State"]["Pid"] > 0
    assert doc["Name"] == "/kmt-d" and doc["Id"] == cid
    assert kmt.kago("stop", "-t", "5", "kmt-d", check=True).stdout == "kmt-d\n"
    doc = kmt.inspect("kmt-d")
    assert (doc["State"]["Status"], doc["State"]["ExitCode"]) == ("exited", 0)
    assert "term" in kmt.kago("logs", "kmt-d").stdout
    assert kmt.kago("ps", "-q", check=True).stdout == ""
    kmt.kago("rm", "kmt-d", check=True)
    assert kmt.kago("inspect", "kmt-d").returncode == 125


def test_stop_kills_after_the_timeout(kmt):
    kmt.kago("run", "-d", "--name", "kmt-stubborn", "--network", "none", "busybox", "sh", "-c",
             "trap '' TERM; while :; do sleep 0.1; done", check=True)
    start = time.monotonic()
    kmt.kago("stop", "-t", "1", "kmt-stubborn", check=True)
    assert 0.9 < time.monotonic() - start < 5
    assert kmt.inspect("kmt-stubborn")["State"]["ExitCode"] == 137


def test_stop_without_a_timeout_takes_the_containers_stop_timeout(kmt):
    # docker's --stop-timeout: what stop waits when -t is not given (10 s otherwise)
    kmt.kago("run", "-d", "--name", "kmt-quick", "--network", "none", "--stop-timeout", "1",
             "busybox", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done", check=True)
    assert kmt.inspect("kmt-quick")["Config"]["StopTimeout"] == 1
    start = time.monotonic()
    kmt.kago("stop", "kmt-quick", check=True)
    assert 0.9 < time.monotonic() - start < 5
    assert kmt.inspect("kmt-quick")["State"]["ExitCode"] == 137


def test_a_record_of_the_previous_format_is_read_started_and_rewritten(kmt):
    # records written before the Definition held the flags' dict under "config"
    cid = kmt.kago("create", "--name", "kmt-old", "--network", "none", "busybox", "true",
                   check=True).stdout.strip()
    path = os.path.join(kmt.root, "containers", cid, "container.json")
    with open(path) as f:
        record = json.load(f)
    del record["definition"]
    record["config"] = {"name": "kmt-old", "image": "busybox", "command": ["true"],
                        "entrypoint": None, "env": [], "mounts": [], "ports": [],
                        "network": "none", "restart": "on-failure:2", "memory": 32 << 20,
                        "cap_add": [], "cap_drop": [], "cgroup": {}, "rlimits": {},
                        "labels": {"era": "old"}, "sysctls": {}, "namespaces": {},
                        "independent": ["proc", "sys", "dev", "devpts", "shm", "mqueue"],
                        "network_etc": "own", "log": {"max_size": 4096, "max_files": 2},
                        "seccomp": "default", "auto_remove": False}
    with open(path, "w") as f:
        json.dump(record, f)
    doc = kmt.inspect("kmt-old")
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert doc["HostConfig"]["Memory"] == 32 << 20 and doc["Config"]["Labels"] == {"era": "old"}
    kmt.kago("start", "kmt-old", check=True)
    assert kmt.kago("wait", "kmt-old", check=True).stdout.strip() == "0"
    with open(path) as f:
        record = json.load(f)
    assert "config" not in record and record["definition"]["labels"] == [["era", "old"]]
    kmt.kago("rm", "kmt-old", check=True)


def test_exit_codes_for_kagos_own_errors_and_unusable_commands(kmt):
    assert kmt.kago("run", "--network", "none", "no-such-image").returncode == 125
    assert kmt.kago("run", "--memory", "lots", "busybox", "true").returncode == 125
    assert kmt.kago("run", "--bogus-flag", "busybox").returncode == 125
    proc = kmt.kago("run", "--name", "kmt-127", "--network", "none", "busybox", "no-such-cmd")
    assert proc.returncode == 127, proc.stderr
    assert "not found" in proc.stderr
    proc = kmt.kago("run", "--name", "kmt-126", "--network", "none", "busybox", "/etc/passwd")
    assert proc.returncode == 126, proc.stderr
    assert kmt.kago("ps", "-a", "--format", "{{.Names}}:{{.Status}}").stdout.count(
        "Created") == 2


def test_name_in_use_is_refused_and_leaves_nothing(kmt):
    kmt.kago("create", "--name", "kmt-dup", "--network", "none", "busybox", "true", check=True)
    before = sorted(os.listdir(os.path.join(kmt.root, "containers")))
    proc = kmt.kago("create", "--name", "kmt-dup", "--network", "none", "busybox", "true")
    assert proc.returncode == 125 and "already in use" in proc.stderr
    assert sorted(os.listdir(os.path.join(kmt.root, "containers"))) == before
    storage = os.path.join(kmt.root, "storage", "containers")
    assert len(os.listdir(storage)) == 1


def test_exec_user_workdir_env_and_missing_command(kmt):
    kmt.kago("run", "-d", "--name", "kmt-x", "--network", "none", "busybox", "sleep", "60",
             check=True)
    out = kmt.kago("exec", "-u", "user", "-w", "/tmp", "-e", "GREETING=hi", "kmt-x", "sh",
                   "-c", "id -un; pwd; echo $GREETING", check=True).stdout
    assert out.split() == ["user", "/tmp", "hi"]
    assert kmt.kago("exec", "kmt-x", "sh", "-c", "exit 7").returncode == 7
    assert kmt.kago("exec", "kmt-x", "no-such-cmd").returncode == 127
    top = kmt.kago("top", "kmt-x", check=True).stdout
    assert "sleep 60" in top and top.startswith("UID")
    kmt.kago("rm", "-f", "kmt-x", check=True)


def test_restart_on_failure_stops_after_the_count(kmt):
    kmt.kago("run", "-d", "--name", "kmt-flaky", "--network", "none", "--restart",
             "on-failure:2", "busybox", "sh", "-c", "echo try; exit 1", check=True)
    assert wait_until(lambda: kmt.inspect("kmt-flaky")["RestartCount"] == 2
                      and kmt.inspect("kmt-flaky")["State"]["Status"] == "exited", timeout=10)
    assert kmt.kago("logs", "kmt-flaky").stdout.count("try") == 3


def test_restart_always_until_stopped(kmt):
    kmt.kago("run", "-d", "--name", "kmt-always", "--network", "none", "--restart", "always",
             "busybox", "sh", "-c", "sleep 0.2; exit 0", check=True)
    assert wait_until(lambda: kmt.inspect("kmt-always")["RestartCount"] >= 2, timeout=10)
    kmt.kago("stop", "-t", "1", "kmt-always", check=True)
    count = kmt.inspect("kmt-always")["RestartCount"]
    time.sleep(0.8)
    doc = kmt.inspect("kmt-always")
    assert doc["State"]["Status"] == "exited" and doc["RestartCount"] == count


def test_a_stop_during_a_restarts_start_leaves_it_stopped(kmt):
    """The policy's restart is on its way (its start worker held 1.5 s after preparing) when
    the user stops the container: stop waits for that start and the container ends stopped,
    not running on. Its second run would sleep, so a start that wins shows as running."""
    kmt.stop_supervisor()  # the next one is started by the run below, with its environment
    script = "if [ -e /restarted ]; then exec sleep 600; fi; touch /restarted; exit 1"
    proc = subprocess.run([KAGO, "run", "-d", "--name", "kmt-racy", "--network", "none",
                           "--restart", "always", "busybox", "sh", "-c", script],
                          env=dict(kmt.env, KAGO_FAULT_STEP="worker.prepared:sleep=1.5"),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    kmt._note_supervisor()
    assert proc.returncode == 0, proc.stderr
    assert wait_until(lambda: kmt.inspect("kmt-racy")["RestartCount"] >= 1, timeout=10)
    doc = kmt.inspect("kmt-racy")
    assert doc["State"]["Status"] == "restarting", doc["State"]  # its start is held
    stop = kmt.kago("stop", "-t", "1", "kmt-racy", check=True)
    assert stop.stdout.strip() == "kmt-racy"
    assert kmt.inspect("kmt-racy")["State"]["Status"] == "exited"
    time.sleep(2)
    doc = kmt.inspect("kmt-racy")
    assert doc["State"]["Status"] == "exited" and doc["RestartCount"] == 1, doc["State"]
    assert "kmt-racy" not in kmt.kago("ps", "--format", "{{.Names}}").stdout.split()


def test_logs_rotate_by_size(kmt):
    kmt.kago("run", "--name", "kmt-chatty", "--network", "none", "--log-opt", "max-size=4k",
             "--log-opt", "max-file=2", "busybox", "sh", "-c",
             "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done", check=True)
    logdir = os.path.dirname(kmt.inspect("kmt-chatty")["LogPath"])
    files = sorted(os.listdir(logdir))
    assert files == ["ctr.log", "ctr.log.1"]
    assert all(os.path.getsize(os.path.join(logdir, f)) <= 4096 for f in files)
    lines = kmt.kago("logs", "kmt-chatty", check=True).stdout.split()
    assert lines[-1] == "line-299" and len(lines) < 300   # the oldest were rotated away
    assert lines == [f"line-{i}" for i in range(300 - len(lines), 300)]
    assert kmt.kago("logs", "--tail", "2", "kmt-chatty").stdout.split() == ["line-298",
                                                                           "line-299"]


def test_a_killed_supervisor_leaves_containers_running_and_ps_truthful(kmt):
    kmt.kago("run", "-d", "--name", "kmt-orphan", "--network", "none", "busybox", "sh", "-c",
             "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.05; done", check=True)
    pid = kmt.supervisor_pid()
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: kmt.supervisor_pid() is None)
    time.sleep(0.3)
    status = kmt.kago("ps", "--format", "{{.Status}}", check=True).stdout
    assert status.startswith("Up")
    # a new supervisor (started by the next command that needs one) reopens the output FIFO
    kmt.kago("run", "-d", "--name", "kmt-other", "--network", "none", "busybox", "true",
             check=True)
    seen = len(kmt.kago("logs", "kmt-orphan").stdout.split())
    assert wait_until(lambda: len(kmt.kago("logs", "kmt-orphan").stdout.split()) > seen + 5)
    kmt.kago("stop", "-t", "1", "kmt-orphan", check=True)
    doc = kmt.inspect("kmt-orphan")
    assert doc["State"]["Status"] == "exited" and not doc["State"]["Running"]


def _forks_of(pid):
    """Children of ``pid`` with its command line: its forks (the start forker, a worker, a
    releaser), not the containers it reaps as their subreaper."""
    def cmdline(p):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                return f.read()
        except OSError:
            return None
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return []
    return [kid for kid in kids if cmdline(kid) == cmdline(pid)]


def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_the_start_forker_is_let_go_when_idle_and_forked_again(kmt):
    from kago.manager.supervisor.forker import FORKER_IDLE
    kmt.kago("run", "-d", "--name", "kmt-f1", "--network", "none", "busybox", "sleep", "60",
             check=True)
    sup = kmt.supervisor_pid()
    # the forker (the fork holding the warmed runtime) goes once no start came for a while
    assert wait_until(lambda: not _forks_of(sup), timeout=FORKER_IDLE + 10)
    kmt.kago("run", "-d", "--name", "kmt-f2", "--network", "none", "busybox", "sleep", "60",
             check=True)
    # a forker that dies is forked again by the next start
    forker = _forks_of(sup)
    assert len(forker) == 1
    os.kill(int(forker[0]), signal.SIGKILL)
    assert wait_until(lambda: not _forks_of(sup))
    kmt.kago("run", "-d", "--name", "kmt-f3", "--network", "none", "busybox", "sleep", "60",
             check=True)
    assert kmt.supervisor_pid() == sup
    for name in ("kmt-f1", "kmt-f2", "kmt-f3"):
        state = kmt.inspect(name)["State"]
        assert state["Running"]
        # its worker was the forker's child; its init came to the supervisor, the subreaper
        assert _ppid(state["Pid"]) == sup
    assert wait_until(lambda: not _forks_of(sup), timeout=FORKER_IDLE + 10)
    kmt.kago("stop", "-t", "0", "kmt-f2", check=True)
    doc = kmt.inspect("kmt-f2")
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 137
    kmt.kago("rm", "-f", "kmt-f1", "kmt-f2", "kmt-f3", check=True)


def test_published_port_answers_on_localhost(kmt):
    kmt.kago("run", "-d", "--name", "kmt-web", "-p", "127.0.0.1:18931:80", "busybox",
             "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    assert wait_http(18931, "/hostname") == kmt.inspect("kmt-web")["Config"]["Hostname"] + "\n"
    ports = kmt.kago("ps", "--format", "{{.Ports}}", check=True).stdout.strip()
    assert ports == "127.0.0.1:18931->80/tcp"
    doc = kmt.inspect("kmt-web")
    assert doc["NetworkSettings"]["IPAddress"].startswith("10.250.")


def test_port_in_use_is_refused_and_leaves_nothing(kmt):
    kmt.kago("run", "-d", "--name", "kmt-p1", "-p", "127.0.0.1:18932:80", "busybox",
             "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    before = sorted(os.listdir(os.path.join(kmt.root, "containers")))
    proc = kmt.kago("run", "-d", "--name", "kmt-p2", "-p", "127.0.0.1:18932:80", "busybox",
                    "httpd", "-f", "-p", "80", "-h", "/etc")
    assert proc.returncode == 125, proc.stderr
    assert "18932" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(os.listdir(os.path.join(kmt.root, "containers"))) == before
    assert kmt.kago("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split() == ["kmt-p1"]
    assert wait_http(18932, "/hostname")  # the first one still answers


def test_userns_auto_maps_root_and_image_files(kmt):
    # the default bridge network: kago-oci's exec joins the host-made network namespace
    # before the container's user namespace
    kmt.kago("run", "-d", "--name", "kmt-userns", "--userns", "auto", "busybox", "sleep", "60",
             check=True)
    doc = kmt.inspect("kmt-userns")
    (inside, host, size), = doc["Kago"]["UidMap"]
    assert inside == 0 and size == 65536 and host >= 1 << 30
    pid = doc["State"]["Pid"]
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert int(uids[0]) == host
    # the image's files belong to the container's root, not to nobody
    out = kmt.kago("exec", "kmt-userns", "stat", "-c", "%u:%g", "/bin/busybox",
                   check=True).stdout
    assert out.strip() == "0:0"
    kmt.kago("exec", "kmt-userns", "touch", "/etc/written", check=True)
    address = doc["NetworkSettings"]["IPAddress"]
    assert address.startswith("10.250.")
    assert address in kmt.kago("exec", "kmt-userns", "ip", "-4", "addr", "show", "eth0",
                                check=True).stdout
    # stopped (rootfs unmounted, network detached) and started again: the ID-mapped layer
    # is mounted again with its changes, the network attached again
    kmt.kago("stop", "-t", "0", "kmt-userns", check=True)
    assert kmt.held(doc["Id"]) == []
    kmt.kago("start", "kmt-userns", check=True)
    out = kmt.kago("exec", "kmt-userns", "stat", "-c", "%u:%g", "/etc/written",
                   check=True).stdout
    assert out.strip() == "0:0"
    assert kmt.kago("exec", "kmt-userns", "cat", "/sys/class/net/eth0/operstate",
                    check=True).stdout.strip() == "up"


def test_oom_kill_is_recorded(kmt):
    # no swap for it where the host accounts swap (memory.memsw.*); docker drops the flag too
    swap = ["--memory-swap", "16m"] if hostprobe.has_cgroup_file(
        "memory", "memory.memsw.limit_in_bytes") else []
    proc = kmt.kago("run", "--name", "kmt-oom", "--network", "none", "--memory", "16m",
                    *swap, "busybox", "sh", "-c",
                    "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert proc.returncode == 137, proc.stderr
    doc = kmt.inspect("kmt-oom")
    assert doc["State"]["OOMKilled"] is True


def test_wait_and_stats(kmt, tmp_path):
    # it runs until told to end, not for a set time: stats must find it running however slow
    # the host (an emulated one takes seconds to start each kago)
    kmt.kago("run", "-d", "--name", "kmt-w", "--network", "none", "--pids-limit", "20",
             "-v", f"{tmp_path}:/shared", "busybox", "sh", "-c",
             "while [ ! -e /shared/end ]; do sleep 0.05; done; exit 4", check=True)
    stats = kmt.kago("stats", "--no-stream", "--format", "{{json .}}", "kmt-w",
                     check=True).stdout
    row = json.loads(stats)
    assert row["Name"] == "kmt-w" and int(row["PIDs"]) >= 1 and "/" in row["MemUsage"]
    (tmp_path / "end").touch()
    assert kmt.kago("wait", "kmt-w", check=True).stdout == "4\n"


def test_runc_runs_what_the_manager_makes(kmt, workdir, rootfs_cache):
    """The bundle is the seam: the same container under runc (on this hybrid host)."""
    import shutil

    from kago.manager.testing import KagoEnv
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    env = KagoEnv(workdir, runtime=runc, rootfs_cache=rootfs_cache)
    try:
        proc = env.kago("run", "--name", "kmt-runc", "--network", "none", "busybox", "sh",
                        "-c", "echo from runc; exit 5")
        assert (proc.returncode, proc.stdout) == (5, "from runc\n"), proc.stderr
        env.kago("run", "-d", "--name", "kmt-runc-d", "--network", "none", "busybox",
                 "sleep", "60", check=True)
        assert env.kago("ps", "--format", "{{.Status}}").stdout.startswith("Up")
        assert env.kago("exec", "kmt-runc-d", "echo", "hi", check=True).stdout == "hi\n"
        env.kago("rm", "-f", "kmt-runc-d", check=True)
        assert os.listdir(os.path.join(env.root, "run", "oci", "runc")) == []
    finally:
        left = env.destroy()
    assert not left, left


def test_userns_under_a_root_closed_to_others_is_a_clear_error(kmt):
    # a container with its own user namespace reaches its files as an unprivileged host ID:
    # a 0700 --root would fail later with a bare EACCES; say why first, and make nothing
    os.chmod(kmt.root, 0o700)
    try:
        out = kmt.kago("run", "--rm", "--userns", "auto", "busybox", "true")
    finally:
        os.chmod(kmt.root, 0o755)
    assert out.returncode == 125
    assert f"{kmt.root} is not searchable by others" in out.stderr, out.stderr
    assert "chmod o+x" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert kmt.kago("ps", "-aq", check=True).stdout.strip() == ""
