"""The container lifecycle through ``kago-oci``, as containerd and podman drive it.

create -> start -> kill -> delete, ``run`` in the foreground and detached, pause/resume, exec,
ps and list, each checked for its exit status, runc's wording on stderr and, for failures, that
nothing is left behind (the ``oci`` fixture's leak check covers state dirs, cgroups and mounts;
the tests check the processes themselves).

A container started by ``create`` or ``run -d`` inherits kago-oci's stdio, so those commands
run with their output in files (``detached``): a pipe would stay open for the container's life.
"""

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import KAGO_OCI, note_ids, pid_alive, wait_for

SLEEPER = ["sleep", "100"]
# exits on SIGTERM (a pid namespace's init ignores signals it has no handler for); the trap
# is set once /tmp/ready exists (the root must be writable: root__readonly=False)
TERMABLE = ["sh", "-c", "trap 'exit 4' TERM; touch /tmp/ready; while :; do sleep 0.05; done"]


# --- helpers ---------------------------------------------------------------------------------

def detached(oci, *args, timeout=30, root=True):
    """Run kago-oci with stdout/stderr in files (what a container inherits stays open)."""
    argv = [KAGO_OCI] + (["--root", oci.root] if root else []) + [str(a) for a in args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                              timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read().decode(),
                                           err.read().decode())


def ok(proc):
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {proc.stderr}"
    return proc


def failed(proc, fragment, code=1):
    """The command failed with ``code`` and ``fragment`` in its error message."""
    assert proc.returncode == code, f"exit {proc.returncode}: {proc.stderr}"
    assert fragment in error_message(proc.stderr), proc.stderr
    return proc


def error_message(stderr):
    """The last error on stderr: a logfmt line's msg (as runc writes it) or the plain line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    line = lines[-1]
    if "level=error msg=" not in line:
        return line
    quoted = line.split("level=error msg=", 1)[1]
    return quoted[1:quoted.rindex('"')].replace('\\"', '"').replace("\\\\", "\\")


def status(oci, cid):
    return oci.state(cid)["status"]


def wait_status(oci, cid, want, timeout=5.0):
    assert wait_for(lambda: status(oci, cid) == want, timeout), status(oci, cid)


def created(oci, make_bundle, args=SLEEPER, **overrides):
    """A created (not started) container: (id, bundle, init pid)."""
    b = make_bundle(args, **overrides)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    return cid, b, oci.state(cid)["pid"]


def running(oci, make_bundle, args=SLEEPER, **overrides):
    cid, b, pid = created(oci, make_bundle, args, **overrides)
    ok(oci("start", cid))
    return cid, b, pid


def gone(pid, timeout=5.0):
    return wait_for(lambda: not pid_alive(pid), timeout)


def procs_naming(text):
    """PIDs (not ours) whose command line mentions ``text``: kago processes of a container."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid_alive(int(name)):
            found.append(int(name))
    return found


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().split(b"\0")


def ps_json(oci, cid):
    return json.loads(ok(oci("ps", "--format", "json", cid)).stdout)


def assert_not_exists(oci, cid):
    failed(oci("state", cid), "container does not exist")


# --- create / start / kill / delete ----------------------------------------------------------

def test_create_waits_for_start(oci, make_bundle):
    cid, b, pid = created(oci, make_bundle, ["sh", "-c", "echo started > /tmp/marker; sleep 100"],
                          root__readonly=False)
    state = oci.state(cid)
    assert state["status"] == "created" and state["id"] == cid and state["bundle"] == b.path
    assert pid > 0 and pid_alive(pid)
    assert cid.encode() in cmdline(pid)  # still kago-oci create's process, not the program
    time.sleep(0.1)
    assert not os.path.exists(os.path.join(b.rootfs, "tmp/marker"))


def test_start_runs_the_program(oci, make_bundle):
    cid, b, pid = created(oci, make_bundle, ["sh", "-c", "echo started > /tmp/marker; sleep 100"],
                          root__readonly=False)
    ok(oci("start", cid))
    marker = os.path.join(b.rootfs, "tmp/marker")
    assert wait_for(lambda: os.path.exists(marker) and open(marker).read() == "started\n")
    assert oci.state(cid)["status"] == "running"
    assert oci.state(cid)["pid"] == pid


def trap_set(b):
    return wait_for(lambda: os.path.exists(os.path.join(b.rootfs, "tmp/ready")))


def test_kill_default_is_sigterm(oci, make_bundle):
    cid, b, pid = running(oci, make_bundle, TERMABLE, root__readonly=False)
    assert trap_set(b)
    ok(oci("kill", cid))
    assert gone(pid)
    wait_status(oci, cid, "stopped")
    assert oci.state(cid)["pid"] == 0


@pytest.mark.parametrize("sig", ["KILL", "9", "SIGKILL"])
def test_kill_signal_spellings(oci, make_bundle, sig):
    cid, _b, pid = running(oci, make_bundle)
    ok(oci("kill", cid, sig))
    assert gone(pid)
    wait_status(oci, cid, "stopped")


def test_delete_stopped_then_state_says_gone(oci, make_bundle):
    cid, _b, pid = running(oci, make_bundle)
    ok(oci("kill", cid, "KILL"))
    wait_status(oci, cid, "stopped")
    ok(oci("delete", cid))
    assert_not_exists(oci, cid)


def test_pid_file_exists_when_create_returns(oci, make_bundle, tmp_path):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    pid_file = tmp_path / "init.pid"
    ok(detached(oci, "create", "--bundle", b.path, "--pid-file", pid_file, cid))
    pid = int(pid_file.read_text())
    assert pid == oci.state(cid)["pid"] and pid_alive(pid)


def test_delete_running_needs_force(oci, make_bundle):
    cid, _b, pid = running(oci, make_bundle)
    failed(oci("delete", cid), f"cannot delete container {cid} that is not stopped: running")
    assert status(oci, cid) == "running" and pid_alive(pid)


def test_delete_force_kills_and_removes(oci, make_bundle):
    cid, _b, pid = running(oci, make_bundle)
    ok(oci("delete", "--force", cid))
    assert gone(pid)
    assert_not_exists(oci, cid)


def test_delete_created_never_started(oci, make_bundle):
    cid, _b, pid = created(oci, make_bundle)
    ok(oci("delete", cid))
    assert gone(pid)
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)


def test_delete_stopped_kills_leftovers_without_pid_namespace(oci, make_bundle):
    """The init exited; without a pid namespace its child lives on in the cgroup (runc kills it)."""
    def no_pidns(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    cid, b, pid = running(oci, make_bundle, ["sh", "-c", "sleep 100 & echo $! > /tmp/pid"],
                          mutate=no_pidns, root__readonly=False)
    wait_status(oci, cid, "stopped")
    leftover = int(open(os.path.join(b.rootfs, "tmp/pid")).read())
    assert pid_alive(leftover)
    ok(oci("delete", cid))
    assert gone(leftover)
    assert_not_exists(oci, cid)


def test_start_twice(oci, make_bundle):
    cid, _b, _pid = running(oci, make_bundle)
    failed(oci("start", cid), "cannot start an already running container")


def test_start_after_stop(oci, make_bundle):
    cid, _b, pid = running(oci, make_bundle)
    ok(oci("kill", cid, "9"))
    wait_status(oci, cid, "stopped")
    failed(oci("start", cid), "cannot start a container that has stopped")


def test_kill_stopped(oci, make_bundle):
    cid, _b, _pid = running(oci, make_bundle, ["true"])
    wait_status(oci, cid, "stopped")
    failed(oci("kill", cid, "9"), "container not running")


def test_kill_all(oci, make_bundle):
    cid, _b, pid = running(oci, make_bundle, ["sh", "-c", "sleep 100 & sleep 100 & wait"])
    assert wait_for(lambda: len(ps_json(oci, cid)) == 3), ps_json(oci, cid)
    pids = ps_json(oci, cid)
    assert pid in pids
    ok(oci("kill", "--all", cid, "9"))
    assert all(gone(p) for p in pids)
    wait_status(oci, cid, "stopped")


# --- run -------------------------------------------------------------------------------------

def test_run_returns_exit_status_and_removes(oci, make_bundle):
    b = make_bundle(["sh", "-c", "echo out; exit 3"])
    cid = oci.new_id()
    proc = oci("run", "--bundle", b.path, cid)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "out\n"
    assert_not_exists(oci, cid)


def test_run_killed_by_signal_is_128_plus_n(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    argv = [KAGO_OCI, "--root", oci.root, "run", "--bundle", b.path, cid]
    runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: oci("state", cid).returncode == 0 and status(oci, cid) ==
                        "running"), "run did not start the container"
        ok(oci("kill", cid, "KILL"))
        assert runner.wait(timeout=10) == 128 + signal.SIGKILL
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        runner.stderr.close()
    assert_not_exists(oci, cid)


def _term_while_running(oci, make_bundle, env=None):
    """``run`` in the foreground, SIGTERM to it once the container's trap is set: the
    container gets it (its trap exits 4) and nothing is left."""
    b = make_bundle(TERMABLE, root__readonly=False)
    cid = oci.new_id()
    argv = [KAGO_OCI, "--root", oci.root, "run", "--bundle", b.path, cid]
    runner = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)
    try:
        assert trap_set(b), "run did not start the container"
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=15) == 4
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert_not_exists(oci, cid)


def test_run_forwards_signals(oci, make_bundle):
    _term_while_running(oci, make_bundle)


def test_run_forwards_signals_before_its_wait(oci, make_bundle):
    """A signal that comes once the container runs but before ``run`` waits for it (held
    open here by a slow step) goes to the container too: it does not end the runtime and
    leave the container behind."""
    _term_while_running(oci, make_bundle,
                        env=dict(os.environ, KAGO_FAULT_STEP="run.waiting:sleep=3"))


def test_run_detached_leaves_it_running(oci, make_bundle, tmp_path):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", b.path, "--pid-file", tmp_path / "pid", cid))
    state = oci.state(cid)
    assert state["status"] == "running" and pid_alive(state["pid"])
    assert int((tmp_path / "pid").read_text()) == state["pid"]
    assert cmdline(state["pid"])[0] == b"sleep"


# --- missing or unusable programs (podman/conmon match these words) ---------------------------

def _create_fails(oci, make_bundle, args, fragment):
    b = make_bundle(args)
    cid = oci.new_id()
    failed(detached(oci, "create", "--bundle", b.path, cid), fragment)
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)


def test_missing_program_relative(oci, make_bundle):
    _create_fails(oci, make_bundle, ["nosuchprog"],
                  'exec: "nosuchprog": executable file not found in $PATH')


def test_missing_program_absolute(oci, make_bundle):
    _create_fails(oci, make_bundle, ["/bin/nosuchprog"], "no such file or directory")


def test_program_not_executable(oci, make_bundle):
    _create_fails(oci, make_bundle, ["/etc/passwd"], "permission denied")


def test_run_missing_program_leaves_nothing(oci, make_bundle):
    b = make_bundle(["nosuchprog"])
    cid = oci.new_id()
    failed(oci("run", "--bundle", b.path, cid), "executable file not found in $PATH")
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)


# --- the containerd shim's calling convention -------------------------------------------------

def _shim(oci, b, *args):
    log = os.path.join(b.path, "log.json")
    return detached(oci, "--log", log, "--log-format", "json", *args)


def test_containerd_shim_sequence(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(_shim(oci, b, "create", "--bundle", b.path, "--pid-file",
             os.path.join(b.path, "init.pid"), cid))
    pid = int(open(os.path.join(b.path, "init.pid")).read())
    ok(_shim(oci, b, "start", cid))
    assert status(oci, cid) == "running"
    ok(_shim(oci, b, "kill", cid, "9"))
    assert gone(pid)
    wait_status(oci, cid, "stopped")
    ok(_shim(oci, b, "delete", cid))
    assert_not_exists(oci, cid)


def test_containerd_shim_reads_error_from_log(oci, make_bundle):
    b = make_bundle(["nosuchprog"])
    cid = oci.new_id()
    proc = _shim(oci, b, "create", "--bundle", b.path, "--pid-file",
                 os.path.join(b.path, "init.pid"), cid)
    assert proc.returncode == 1
    with open(os.path.join(b.path, "log.json")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    errors = [r for r in records if r["level"] == "error"]
    assert errors and records[-1] is errors[-1], records
    assert "executable file not found in $PATH" in errors[-1]["msg"]
    assert not os.path.exists(os.path.join(b.path, "init.pid"))
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)


# --- pause / resume --------------------------------------------------------------------------

COUNTER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done"]


def _count(b):
    try:
        with open(os.path.join(b.rootfs, "tmp/count")) as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0


def test_pause_freezes_and_resume_thaws(oci, make_bundle):
    cid, b, _pid = running(oci, make_bundle, COUNTER, root__readonly=False)
    assert wait_for(lambda: _count(b) > 2)
    ok(oci("pause", cid))
    assert status(oci, cid) == "paused"
    frozen = _count(b)
    time.sleep(0.3)
    assert _count(b) == frozen
    ok(oci("resume", cid))
    assert status(oci, cid) == "running"
    assert wait_for(lambda: _count(b) > frozen)


def test_kill_of_a_paused_container_lands_on_resume(oci, make_bundle):
    # as runc: kill is not refused while paused (a v1 freezer holds the signal until the thaw;
    # the v2 one lets a SIGKILL through at once)
    cid, _b, pid = running(oci, make_bundle)
    ok(oci("pause", cid))
    ok(oci("kill", cid, "KILL"))
    oci("resume", cid)  # on v2 the init may be gone already: "container not paused"
    assert gone(pid)
    wait_status(oci, cid, "stopped")
    failed(oci("kill", cid, "KILL"), "container not running")


def test_resume_not_paused(oci, make_bundle):
    cid, _b, _pid = running(oci, make_bundle)
    failed(oci("resume", cid), "container not paused")


def test_delete_force_paused(oci, make_bundle):
    cid, _b, pid = running(oci, make_bundle)
    ok(oci("pause", cid))
    ok(oci("delete", "--force", cid))
    assert gone(pid)
    assert_not_exists(oci, cid)


# --- exec ------------------------------------------------------------------------------------

@pytest.fixture
def box(oci, make_bundle):
    """A running sleeper container: (id, init pid)."""
    cid, _b, pid = running(oci, make_bundle)
    return cid, pid


def test_exec_prints(oci, box):
    proc = ok(oci("exec", box[0], "echo", "hi"))
    assert proc.stdout == "hi\n"


def test_exec_exit_status(oci, box):
    assert oci("exec", box[0], "sh", "-c", "exit 7").returncode == 7


def test_exec_process_file(oci, box, tmp_path):
    spec = {"args": ["sh", "-c", "echo $WHO in $(pwd)"], "cwd": "/tmp", "env": ["WHO=json"],
            "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(spec))
    proc = ok(oci("exec", "--process", tmp_path / "process.json", box[0]))
    assert proc.stdout == "json in /tmp\n"


def test_exec_detached_pid_file_and_cgroup(oci, box, tmp_path):
    pid_file = tmp_path / "exec.pid"
    ok(detached(oci, "exec", "-d", "--pid-file", pid_file, box[0], "sleep", "100"))
    pid = int(pid_file.read_text())
    assert pid_alive(pid) and cmdline(pid)[0] == b"sleep"
    assert pid in ps_json(oci, box[0]) and box[1] in ps_json(oci, box[0])
    ok(oci("delete", "--force", box[0]))
    assert gone(pid)


def test_exec_env_cwd_user(oci, box):
    proc = ok(oci("exec", "--env", "A=B", "--cwd", "/tmp", "--user", "1000:1000", box[0],
                  "sh", "-c", 'echo "$A $(pwd) $(id -u) $(id -g)"'))
    assert proc.stdout == "B /tmp 1000 1000\n"


def test_exec_in_pid_namespace(oci, box):
    proc = ok(oci("exec", box[0], "sh", "-c", "echo $$; ps -o pid,args"))
    lines = proc.stdout.splitlines()
    assert lines[0] != "1"
    assert any(line.split()[:3] == ["1", "sleep", "100"] for line in lines[1:]), proc.stdout


def test_exec_into_stopped_fails(oci, make_bundle):
    cid, _b, _pid = running(oci, make_bundle, ["true"])
    wait_status(oci, cid, "stopped")
    failed(oci("exec", cid, "true"), "exec failed: cannot exec in a stopped container", 255)


def test_exec_missing_program(oci, box):
    failed(oci("exec", box[0], "nosuchprog"), "executable file not found in $PATH", 255)
    assert status(oci, box[0]) == "running"


# --- ps / list -------------------------------------------------------------------------------

def test_ps_table_and_json(oci, box):
    assert ps_json(oci, box[0]) == [box[1]]
    lines = ok(oci("ps", box[0])).stdout.splitlines()
    assert lines[0].split()[:2] == ["UID", "PID"]
    assert [line.split()[1] for line in lines[1:]] == [str(box[1])]


def test_ps_of_stopped(oci, make_bundle):
    cid, _b, _pid = running(oci, make_bundle, ["true"])
    wait_status(oci, cid, "stopped")
    failed(oci("ps", cid), "container not running")


def test_list_formats(oci, box):
    cid, pid = box
    table = ok(oci("list")).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert any(row.split()[:3] == [cid, str(pid), "running"] for row in table[1:])
    assert cid in ok(oci("list", "-q")).stdout.splitlines()
    states = json.loads(ok(oci("list", "--format", "json")).stdout)
    mine = [s for s in states if s["id"] == cid]
    assert len(mine) == 1 and mine[0]["pid"] == pid and mine[0]["status"] == "running"


# --- concurrency ------------------------------------------------------------------------------

def test_create_while_the_shared_parent_cgroup_is_removed(oci, make_bundle):
    """Another container's delete removes the parent it made (``/kago``) when it is empty.

    A thread stands in for those deletes (it rmdirs a private parent in a loop); every
    create must still succeed. Up to 40 tries: the window is microseconds wide.
    """
    import threading
    import uuid
    parent = f"kago-race-{uuid.uuid4().hex[:8]}"
    note_ids(parent)
    stop = threading.Event()

    def remove_parent():
        while not stop.is_set():
            for hierarchy in os.listdir("/sys/fs/cgroup"):
                try:
                    os.rmdir(f"/sys/fs/cgroup/{hierarchy}/{parent}")
                except OSError:
                    pass

    remover = threading.Thread(target=remove_parent)
    remover.start()
    try:
        for _ in range(40):
            cid = oci.new_id()
            b = make_bundle(SLEEPER, mutate=lambda c: c["linux"].update(
                cgroupsPath=f"/{parent}/{cid}"))
            ok(detached(oci, "create", "--bundle", b.path, cid))
            ok(oci("delete", "--force", cid))
    finally:
        stop.set()
        remover.join()
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{hierarchy}/{parent}")
            except OSError:
                pass
