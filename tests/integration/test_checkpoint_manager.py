"""``kago checkpoint`` / ``kago restore`` on the real kernel with CRIU (the checkout's own
build in .build/criu; skipped without it): a busybox shell counting in memory, with httpd on
a published port, checkpointed and restored on the same root (it counts on, answers on the
same address and port, its log goes on) and exported to another root; each refusal leaves the
container running and nothing behind."""

import json
import os
import tarfile
import time
import urllib.request

import pytest

from kago.manager.testing import KagoEnv, kmt_fixture  # noqa: F401 (fixture)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRIU_DIR = os.path.join(REPO, ".build", "criu", "sbin")

pytestmark = pytest.mark.skipif(not os.access(os.path.join(CRIU_DIR, "criu"), os.X_OK),
                                reason="CRIU is not built: ./dev setup builds it")

# the count is in the shell's memory: only a restore (not a new start) goes on from it
PROGRAM = "httpd -p 8080 -h /etc; i=0; while :; do i=$((i+1)); echo n=$i; sleep 0.1; done"


def with_criu(env):
    env.env["PATH"] = CRIU_DIR + ":" + env.env.get("PATH", "/usr/bin:/bin")
    return env


def counts(env, name):
    lines = env.kago("logs", name, check=True).stdout.split()
    return [int(x[2:]) for x in lines if x.startswith("n=")]


def wait_count(env, name, above, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = counts(env, name)
        if got and got[-1] > above:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{name} does not count past {above}: {counts(env, name)[-3:]}")


def http(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=3) as r:
        return r.status


def run_counter(env, name, port, *flags):
    env.kago("run", "-d", "--name", name, "-p", f"{port}:8080", *flags, "busybox", "sh", "-c",
             PROGRAM, check=True)
    wait_count(env, name, 3)


def checkpoints_left(env):
    d = os.path.join(env.root, "checkpoints")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_checkpoint_restore_keeps_count_address_port_and_log(kmt):
    with_criu(kmt)
    run_counter(kmt, "ck", 18101, "--restart", "on-failure")
    before = kmt.inspect("ck")
    ip = before["NetworkSettings"]["IPAddress"]
    kmt.kago("checkpoint", "ck", check=True)
    info = kmt.inspect("ck")
    assert info["State"]["Status"] == "checkpointed" and info["State"]["Checkpointed"]
    assert "Checkpointed" in kmt.kago("ps", "-a", check=True).stdout
    last = counts(kmt, "ck")[-1]
    time.sleep(0.3)
    assert counts(kmt, "ck")[-1] == last  # frozen while checkpointed
    kmt.kago("restore", "ck", check=True)
    got = wait_count(kmt, "ck", last)
    # the same log, going on from the count it had (a fresh start would begin at 1 again)
    assert got[got.index(last) + 1] == last + 1, got[-10:]
    after = kmt.inspect("ck")
    assert after["State"]["Restored"] and after["State"]["RestoredFrom"]
    assert after["NetworkSettings"]["IPAddress"] == ip
    assert http(18101) == 200
    # the supervisor watches the restored process: its end is recorded, its restart policy
    # applies, and stop ends it
    os.kill(after["State"]["Pid"], 9)  # not kago kill: a crash, not the user's stop
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = kmt.inspect("ck")
        if state["RestartCount"] == 1 and state["State"]["Running"] and \
                state["State"]["Pid"] not in (0, after["State"]["Pid"]):
            break  # restarted by its policy, and running again
        time.sleep(0.1)
    assert state["RestartCount"] == 1 and state["State"]["Running"], state["State"]
    kmt.kago("stop", "-t", "1", "ck", check=True)
    assert kmt.inspect("ck")["State"]["Status"] == "exited"
    # and a checkpoint with --leave-running keeps it running; start of a checkpointed one
    # restores it
    kmt.kago("start", "ck", check=True)
    run_n = counts(kmt, "ck")[-1]
    kmt.kago("checkpoint", "--leave-running", "ck", check=True)
    assert kmt.inspect("ck")["State"]["Running"]
    kmt.kago("checkpoint", "ck", check=True)
    kmt.kago("start", "ck", check=True)
    wait_count(kmt, "ck", run_n + 2)
    assert kmt.inspect("ck")["State"]["Running"]
    kmt.kago("rm", "-f", "ck", check=True)
    assert checkpoints_left(kmt) == []


def test_export_and_import_on_another_root(kmt, workdir, rootfs_cache, monkeypatch):
    with_criu(kmt)
    run_counter(kmt, "ex", 18102)
    kmt.kago("exec", "ex", "sh", "-c", "echo kept > /root/note; rm /etc/group", check=True)
    tar = os.path.join(kmt.root, "ex.tar")
    import kago  # kago.Client's spelling of kago checkpoint --export
    monkeypatch.setenv("PATH", kmt.env["PATH"])
    checkpointed = kago.Client(root=kmt.root).container("ex").checkpoint(export=tar)
    assert checkpointed.state == "checkpointed" and checkpointed.status.startswith("Checkpointed")
    last = counts(kmt, "ex")[-1]
    # a checkpointed container holds its address and ports until stopped (or restored)
    assert kmt.held(kmt.inspect("ex")["Id"])
    kmt.kago("stop", "ex", check=True)
    assert not kmt.held(kmt.inspect("ex")["Id"])
    other = with_criu(KagoEnv(workdir, rootfs_cache=rootfs_cache))
    try:
        other.kago("restore", "--import", tar, "--name", "ex2", check=True)
        got = wait_count(other, "ex2", last)
        assert got[0] > last - 1, got[:5]  # its first line is the count it had, not 1
        assert other.kago("exec", "ex2", "cat", "/root/note", check=True).stdout == "kept\n"
        assert other.kago("exec", "ex2", "ls", "/etc/group").returncode != 0
        assert http(18102) == 200
        assert other.inspect("ex2")["State"]["CheckpointImportedFrom"] == tar
        # the name is taken now: one line, nothing made
        proc = other.kago("restore", "--import", tar, "--name", "ex2")
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
        assert "already in use" in proc.stderr
        assert len(other.manager().records.all()) == 1
    finally:
        left = other.destroy()
    assert not left


def _refused(env, args, words, name="er"):
    proc = env.kago(*args)
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), proc.stderr
    assert env.inspect(name)["State"]["Running"]
    return lines[0]


def test_refusals_leave_the_container_running_and_nothing_behind(kmt, workdir):
    with_criu(kmt)
    run_counter(kmt, "er", 18103)
    _refused(kmt, ["restore", "er"], ["cannot restore", "running"])
    kmt.kago("run", "-dt", "--name", "tty", "busybox", "sleep", "60", check=True)
    _refused(kmt, ["checkpoint", "tty"], ["terminal"], name="tty")
    kmt.kago("create", "--name", "idle", "busybox", "true", check=True)
    _refused(kmt, ["checkpoint", "idle"], ["not running"])
    saved = kmt.env["PATH"]
    kmt.env["PATH"] = "/nonexistent"
    try:
        _refused(kmt, ["checkpoint", "er"], ["criu not found"])
    finally:
        kmt.env["PATH"] = saved
    junk = os.path.join(kmt.root, "junk.tar")
    with tarfile.open(junk, "w") as t:
        t.add(os.path.join(kmt.root, "kago.json"), "kago.json")
    _refused(kmt, ["restore", "--import", junk], ["not a kago checkpoint"])
    _refused(kmt, ["restore", "er", "--import", junk], ["not both"])
    for bad in (os.path.join(kmt.root, "no", "such.tar"), kmt.root):  # checked before the dump
        _refused(kmt, ["checkpoint", "--export", bad, "er"], ["cannot export", bad])
    assert checkpoints_left(kmt) == []
    # a checkpoint from another kernel, and one whose image this root lacks
    tar = os.path.join(kmt.root, "er.tar")
    kmt.kago("checkpoint", "--leave-running", "--export", tar, "er", check=True)
    moved = os.path.join(kmt.root, "moved.tar")
    with tarfile.open(tar) as src, tarfile.open(moved, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m) if m.isfile() else None
            if m.name == "checkpoint.json":
                doc = json.load(data)
                doc["kernel"] = "1.0.0-other"
                raw = json.dumps(doc).encode()
                m.size = len(raw)
                import io
                data = io.BytesIO(raw)
            dst.addfile(m, data)
    _refused(kmt, ["restore", "--import", moved, "--name", "er3"], ["kernel 1.0.0-other"])
    bare = with_criu(KagoEnv(workdir, image=False))
    try:
        proc = bare.kago("restore", "--import", tar)
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1
        assert "busybox" in proc.stderr and "not on this root" in proc.stderr, proc.stderr
        assert bare.manager().records.all() == [] and checkpoints_left(bare) == []
    finally:
        left = bare.destroy()
    assert not left
    assert sorted(r["name"] for r in kmt.manager().records.all()) == ["er", "idle", "tty"]
    assert checkpoints_left(kmt) == [kmt.inspect("er")["Id"]]  # the --leave-running one


WARM = '''
from kago.manager.define import Container
for i, port in enumerate((18121, 18122)):
    Container(f"w{i}", image="busybox", ports=[f"{port}:8080"], warm=True, env={"V": "%s"},
              command=["sh", "-c", "echo booting; httpd -p 8080 -h /etc; i=0; "
                       "while :; do i=$((i+1)); echo n=$i; sleep 0.1; done"])
'''


def test_warm_start_restores_a_ready_container_and_a_changed_one_boots(kmt):
    with_criu(kmt)
    path = os.path.join(kmt.root, "warm.py")
    with open(path, "w") as f:
        f.write(WARM % "1")
    first = kmt.kago("up", path, check=True).stdout
    assert " warm" not in first
    assert len(os.listdir(os.path.join(kmt.root, "warm"))) == 2
    kmt.kago("down", "-t", "0", path, check=True)
    second = kmt.kago("up", path, check=True).stdout
    assert second.count(" warm") == 2, second
    # restored, not booted: its log starts past the boot, with the count it was saved with
    logs = kmt.kago("logs", "w1", check=True).stdout
    assert "booting" not in logs and logs.startswith("n="), logs[:80]
    assert http(18122) == 200
    kmt.kago("down", "-t", "0", path, check=True)
    with open(path, "w") as f:
        f.write(WARM % "2")  # another definition: another key
    third = kmt.kago("up", path, check=True).stdout
    assert " warm" not in third
    assert "booting" in kmt.kago("logs", "w0", check=True).stdout
    assert len(os.listdir(os.path.join(kmt.root, "warm"))) == 4
    kmt.kago("down", "-t", "0", path, check=True)
