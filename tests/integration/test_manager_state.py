"""The manager's state under races and deaths: racing names, a hundred concurrent runs, a
process SIGKILLed at each named step (KAGO_FAULT_STEP, manager/journal.py) and what recovers
from it, supervisors and foreground command lines that die, and system prune's prompt.

Every test has its own manager root (kago.manager.testing.KagoEnv); the fixture removes
everything and checks nothing is left on the host.
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import textwrap
import time

import pytest

from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)


def wait_until(predicate, timeout=10.0, interval=0.05):
    return wait_for(predicate, timeout, interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def many(kmt, argvs, env=None, timeout=180):
    """Run ``kago ARGV`` for every argv at once; [(returncode, stdout, stderr)]."""
    env = dict(kmt.env, **(env or {}))
    procs = [subprocess.Popen([KAGO] + list(a), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for a in argvs]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    kmt._note_supervisor()
    return out


def faulty(kmt, step, *args, timeout=60):
    env = dict(kmt.env, KAGO_FAULT_STEP=step)
    proc = subprocess.run([KAGO] + [str(a) for a in args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    kmt._note_supervisor()
    return proc


def ids_named(kmt, name):
    return [r["id"] for r in kmt.manager().records.all() if r["name"] == name]


def nft_listing(kmt):
    return subprocess.run(["nft", "list", "table", "inet", kmt.table], capture_output=True,
                          text=True, check=False).stdout


def gone(kmt, cid, port=None):
    """What of container ``cid`` is still anywhere: host objects and state."""
    left = kmt.held(cid)
    for h in os.listdir("/sys/fs/cgroup"):
        if os.path.isdir(f"/sys/fs/cgroup/{h}/kago-{cid}"):
            left.append(f"cgroup {h}")
    for what, path in (("record", os.path.join(kmt.root, "containers", cid)),
                       ("layer", os.path.join(kmt.root, "storage", "containers", cid)),
                       ("fifos", os.path.join(kmt.root, "run", "fifos", cid))):
        if os.path.lexists(path):
            left.append(what)
    names = os.path.join(kmt.root, "names")
    for name in os.listdir(names) if os.path.isdir(names) else ():
        with open(os.path.join(names, name), "rb") as f:
            if f.read().decode(errors="replace") == cid:
                left.append(f"name {name}")
    if port is not None and re.search(rf"\b{port}\b", nft_listing(kmt)):
        left.append(f"nft element for port {port}")
    return left


# --- 1: racing one name ------------------------------------------------------------------

def test_ten_runs_racing_one_name_one_wins_and_the_rest_leave_nothing(kmt):
    port = free_port()
    results = many(kmt, [("run", "-d", "--name", "kmt-same", "-p", f"{port + i}:80",
                          "busybox", "sleep", "60") for i in range(10)])
    won = [r for r in results if r[0] == 0]
    lost = [r for r in results if r[0] != 0]
    assert len(won) == 1, results
    assert all(code == 125 for code, _o, _e in lost), results
    for _code, _out, err in lost:
        assert len(err.strip().splitlines()) == 1, err
        assert "kmt-same" in err and "already in use" in err, err
    records = kmt.manager().records.all()
    assert [r["id"] for r in records] == [won[0][1].strip()]
    assert kmt.inspect("kmt-same")["Id"] == won[0][1].strip()
    assert len(os.listdir(os.path.join(kmt.root, "storage", "containers"))) == 1
    attachments = os.listdir(os.path.join(kmt.root, "network", "attachments"))
    assert attachments == [won[0][1].strip() + ".json"]


# --- 2: a hundred concurrent runs ------------------------------------------------------------

def test_hundred_concurrent_runs_are_all_up_with_distinct_addresses(kmt):
    count = 100
    started = time.monotonic()
    results = many(kmt, [("run", "-d", "--name", f"kmt-c{i}", "-p", f"{30000 + i}:80",
                          "busybox", "sleep", "3600") for i in range(count)], timeout=600)
    wall = time.monotonic() - started
    failed = [r for r in results if r[0] != 0]
    assert not failed, failed[:3]
    docs = json.loads(kmt.kago("inspect", *[f"kmt-c{i}" for i in range(count)],
                               check=True).stdout)
    assert all(d["State"]["Running"] for d in docs)
    ips = {d["NetworkSettings"]["IPAddress"] for d in docs}
    macs = {d["NetworkSettings"]["MacAddress"] for d in docs}
    assert len(ips) == count and len(macs) == count and "" not in ips
    print(f"\n{count} concurrent kago run -d: {wall:.1f} s wall")
    kmt.kago("rm", "-f", *[f"kmt-c{i}" for i in range(count)], check=True, timeout=300)


# --- 3: a SIGKILL at each named step, and recovery ---------------------------------------------

CREATE_STEPS = ("create.record", "create.name", "create.ids", "create.layer", "create.mount",
                "create.network", "create.bundle", "create.done")
ATTACH_STEPS = ("attach.record", "attach.leases", "attach.ports", "attach.netns",
                "attach.veth", "attach.nft", "attach.dns", "attach.etc")
START_STEPS = ("start.prepared", "start.requested")
SUPERVISOR_STEPS = ("supervisor.forked", "worker.prepared", "worker.started")
STOP_STEPS = ("stop.signalled", "stop.stopped")
RM_STEPS = ("rm.runtime", "rm.mount", "rm.rootfs", "rm.network", "rm.ids", "rm.fifos",
            "rm.record")
CONNECT_STEPS = ("connect.recorded", "attach.record", "attach.leases", "attach.veth",
                 "attach.dns", "attach.hosts", "connect.attached")
DISCONNECT_STEPS = ("disconnect.recorded", "disconnect.detached")


@pytest.fixture
def bystander(kmt):
    """A running container with a published port, that no recovery may touch."""
    port = free_port()
    cid = kmt.kago("run", "-d", "--name", "kmt-by", "-p", f"{port}:80", "busybox", "sleep",
                   "120", check=True).stdout.strip()
    return cid, port


def check_bystander(kmt, bystander):
    cid, port = bystander
    assert kmt.inspect("kmt-by")["State"]["Running"]
    held = kmt.held(cid)
    assert "attachment record" in held and "published ports" in held, held
    assert re.search(rf"\b{port}\b", nft_listing(kmt))


def run_victim(kmt, port, step=None):
    args = ("run", "-d", "--name", "kmt-f", "-p", f"{port}:80", "busybox", "sleep", "120")
    return faulty(kmt, step, *args) if step else kmt.kago(*args)


@pytest.mark.parametrize("step", CREATE_STEPS + ATTACH_STEPS + START_STEPS + SUPERVISOR_STEPS)
def test_a_run_killed_at_each_step_is_shown_and_recovered(kmt, bystander, step):
    port = free_port()
    if step in SUPERVISOR_STEPS:
        kmt.stop_supervisor()  # the faulty run starts one that has KAGO_FAULT_STEP
    proc = run_victim(kmt, port, step)
    if step in SUPERVISOR_STEPS:
        kmt.stop_supervisor()  # one more (a successor) would still have it
    cids = ids_named(kmt, "kmt-f")
    assert len(cids) == 1, (step, proc.stderr)
    cid = cids[0]
    ps = kmt.kago("ps", "-a", "--format", "{{.Names}}|{{.Status}}", check=True).stdout
    row = [line for line in ps.splitlines() if line.startswith("kmt-f|")]
    assert row, ps
    if step in CREATE_STEPS + ATTACH_STEPS + START_STEPS:
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    if step in CREATE_STEPS[:-1] + ATTACH_STEPS:
        assert row[0] == "kmt-f|Created (incomplete)", row
    elif step in ("supervisor.forked", "worker.started"):
        # the start went on: the next supervisor adopted it and says so truthfully
        assert proc.returncode == 0, proc.stderr
        doc = kmt.inspect("kmt-f")
        assert doc["State"]["Running"] and doc["State"]["Pid"] > 0, doc["State"]
        assert row[0].startswith("kmt-f|Up ") and "years" not in row[0], row
    elif step == "worker.prepared":
        assert proc.returncode == 125 and "without a report" in proc.stderr, proc.stderr
    if step in CREATE_STEPS + ATTACH_STEPS:
        out = kmt.kago("system", "prune", "-f", check=True).stdout
        assert cid in out, out
    else:
        kmt.kago("rm", "-f", "kmt-f", check=True)
    assert gone(kmt, cid, port) == []
    check_bystander(kmt, bystander)
    # nothing of it is in the way: the same name and port work again
    assert run_victim(kmt, port).returncode == 0
    kmt.kago("rm", "-f", "kmt-f", check=True)


@pytest.mark.parametrize("step", STOP_STEPS + RM_STEPS)
def test_a_stop_or_rm_killed_at_each_step_is_recovered_by_rm(kmt, bystander, step):
    port = free_port()
    cid = run_victim(kmt, port).stdout.strip()
    assert len(cid) == 64
    verb = ("stop", "-t", "1") if step.startswith("stop.") else ("rm", "-f")
    proc = faulty(kmt, step, *verb, "kmt-f")
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    if step != "rm.record":
        ps = kmt.kago("ps", "-a", "--format", "{{.Names}}", check=True).stdout
        assert "kmt-f" in ps.split(), ps
        kmt.kago("rm", "-f", "kmt-f", check=True)
    assert gone(kmt, cid, port) == []
    check_bystander(kmt, bystander)
    assert run_victim(kmt, port).returncode == 0
    kmt.kago("rm", "-f", "kmt-f", check=True)


def test_a_start_killed_after_preparing_is_started_again_and_removed(kmt, bystander):
    port = free_port()
    cid = run_victim(kmt, port).stdout.strip()
    kmt.kago("stop", "-t", "1", "kmt-f", check=True)
    assert kmt.held(cid) == []  # released
    proc = faulty(kmt, "start.prepared", "start", "kmt-f")
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    assert "attachment record" in kmt.held(cid)  # prepared again, not started
    kmt.kago("start", "kmt-f", check=True)
    assert kmt.inspect("kmt-f")["State"]["Running"]
    kmt.kago("rm", "-f", "kmt-f", check=True)
    assert gone(kmt, cid, port) == []
    check_bystander(kmt, bystander)


@pytest.mark.parametrize("recovery", ("prune", "rm"))
@pytest.mark.parametrize("step", CONNECT_STEPS + DISCONNECT_STEPS)
def test_a_connect_or_disconnect_killed_at_each_step_leaves_nothing(kmt, bystander, step,
                                                                     recovery):
    net = f"kmt{kmt.tag}c"
    kmt.kago("network", "create", "--subnet", f"10.253.{random.randrange(1, 250)}.0/24",
             "--bridge", f"km{kmt.tag}c", net, check=True)
    cid = kmt.kago("run", "-d", "--name", "kmt-f", "busybox", "sleep", "120",
                   check=True).stdout.strip()
    if step.startswith("disconnect."):
        kmt.kago("network", "connect", net, "kmt-f", check=True)
    verb = "disconnect" if step.startswith("disconnect.") else "connect"
    proc = faulty(kmt, step, "network", verb, net, "kmt-f")
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    if recovery == "prune":
        kmt.kago("system", "prune", "-f", check=True)
        assert kmt.inspect("kmt-f")["State"]["Running"]       # running: kept, eth0 kept
        assert kmt.manager().nets.extras(cid) == []
        assert net not in kmt.inspect("kmt-f")["NetworkSettings"]["Networks"]
        assert "attachment record" in kmt.held(cid)
        # nothing of the killed verb is in the way: connect works again
        kmt.kago("network", "connect", net, "kmt-f", check=True)
        kmt.kago("network", "disconnect", net, "kmt-f", check=True)
    kmt.kago("rm", "-f", "kmt-f", check=True)
    assert gone(kmt, cid) == []
    kmt.kago("network", "rm", net, check=True)                 # nobody left on it
    check_bystander(kmt, bystander)


DEFINITION = """
from kago.manager.define import Container

Container("kmt-d1", image="busybox", command=["sleep", "120"])
Container("kmt-d2", image="busybox", command=["sleep", "120"])
"""


@pytest.mark.parametrize("step", ("up.created", "down.removed"))
def test_up_or_down_killed_is_recovered_by_down(kmt, bystander, tmp_path, step):
    path = tmp_path / "def.py"
    path.write_text(textwrap.dedent(DEFINITION))
    if step == "down.removed":
        kmt.kago("up", str(path), check=True, timeout=120)
    proc = faulty(kmt, step, "up" if step == "up.created" else "down", str(path), timeout=120)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr)
    cids = ids_named(kmt, "kmt-d1") + ids_named(kmt, "kmt-d2")
    assert cids
    kmt.kago("down", "-t", "0", str(path), check=True, timeout=120)
    for cid in cids:
        assert gone(kmt, cid) == []
    assert sorted(r["name"] for r in kmt.manager().records.all()) == ["kmt-by"]
    check_bystander(kmt, bystander)


# --- 3b: orphans no record names ------------------------------------------------------------

def test_system_prune_removes_an_orphaned_attachment_so_network_rm_works(kmt):
    subnet = f"10.251.{random.randrange(1, 250)}.0/24"
    kmt.kago("network", "create", "--subnet", subnet, "--bridge", f"km{kmt.tag}o", "kmt-orph",
             check=True)
    kmt.kago("run", "-d", "--name", "kmt-o", "--network", "kmt-orph", "busybox", "sleep",
             "60", check=True)
    cid = ids_named(kmt, "kmt-o")[0]
    # its record gone behind kago's back (an older kago died between its steps)
    mgr = kmt.manager()
    mgr.runtime(mgr.records.load(cid)).delete(cid, force=True)
    mgr.records.remove(cid)
    assert kmt.kago("network", "rm", "kmt-orph").returncode != 0  # the orphan holds it
    out = kmt.kago("system", "prune", "-f", check=True).stdout
    assert f"network attachment {cid[:12]}" in out, out
    assert gone(kmt, cid) == []
    kmt.kago("network", "rm", "kmt-orph", check=True)


# --- 5, 6: dead supervisors and dead foreground command lines ----------------------------------

def test_a_foreground_container_stays_supervised_when_its_client_dies(kmt):
    proc = subprocess.Popen([KAGO, "run", "-i", "--name", "kmt-it", "busybox", "sleep", "120"],
                            env=kmt.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: kmt.kago("inspect", "kmt-it").returncode == 0
                          and kmt.inspect("kmt-it")["State"]["Running"], timeout=20)
        cid = ids_named(kmt, "kmt-it")[0]
        proc.kill()
        proc.wait(timeout=10)
        kmt._note_supervisor()
        assert wait_until(lambda: kmt.inspect("kmt-it")["State"]["Pid"] > 0, timeout=10)
        assert kmt.inspect("kmt-it")["State"]["Running"]
        assert kmt.supervisor_pid()
        kmt.kago("stop", "-t", "1", "kmt-it", check=True)
        doc = kmt.inspect("kmt-it")
        assert doc["State"]["Status"] == "exited", doc["State"]
        ps = kmt.kago("ps", "-a", "--format", "{{.Names}}|{{.Status}}", check=True).stdout
        # its end was seen (not its status: the container is not the supervisor's child)
        row = [line for line in ps.splitlines() if line.startswith("kmt-it|")]
        assert row and row[0].startswith("kmt-it|Exited (") and row[0].endswith(" ago"), ps
        assert kmt.held(cid) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_foreground_run_that_ends_records_its_own_status(kmt):
    proc = kmt.kago("run", "-i", "--name", "kmt-in", "busybox", "sh", "-c",
                    "read a; echo got $a; exit 3", input="hi\n")
    assert (proc.returncode, proc.stdout) == (3, "got hi\n"), proc.stderr
    # the supervisor saw the connection end after the end was recorded: nothing adopted
    doc = kmt.inspect("kmt-in")
    assert (doc["State"]["Status"], doc["State"]["ExitCode"]) == ("exited", 3)
    assert kmt.held(ids_named(kmt, "kmt-in")[0]) == []


# --- 7: system prune's prompt ---------------------------------------------------------------

def test_system_prune_asks_and_n_keeps_everything(kmt):
    kmt.kago("create", "--name", "kmt-p", "--network", "none", "busybox", "true", check=True)
    proc = kmt.kago("system", "prune", input="n\n")
    assert proc.returncode == 0
    assert "Are you sure you want to continue? [y/N]" in proc.stdout
    assert "kmt-p" in kmt.kago("ps", "-a", "--format", "{{.Names}}", check=True).stdout
    proc = kmt.kago("system", "prune", input="y\n", check=True)
    assert "Deleted Containers:" in proc.stdout
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def test_system_prune_all_removes_unused_images_and_keeps_used_ones(kmt):
    kmt.kago("run", "--name", "kmt-snap", "--network", "none", "busybox", "touch", "/made",
             check=True)
    kmt.kago("commit", "kmt-snap", "kmt-snapshot", check=True)
    kmt.kago("run", "-d", "--name", "kmt-user", "--network", "none", "busybox", "sleep", "60",
             check=True)
    out = kmt.kago("system", "prune", "-f", check=True).stdout
    assert "Deleted Containers:" in out, out
    images = kmt.kago("images", "--format", "{{.Repository}}", check=True).stdout.split()
    assert sorted(images) == ["busybox", "kmt-snapshot"], images  # named: kept without -a
    out = kmt.kago("system", "prune", "-a", "-f", check=True).stdout
    images = kmt.kago("images", "--format", "{{.Repository}}", check=True).stdout.split()
    assert images == ["busybox"], (out, images)  # kmt-user uses it
    kmt.kago("rm", "-f", "kmt-user", check=True)
