"""``kago events`` against the real kernel: what run/stop/rm/rename/pause logged (--since,
--until, filters, --format), and a following ``kago events`` seeing a start made after it
began. Each test has its own root (kago.manager.testing.KagoEnv); containers use no network.
"""

import json
import os
import select
import signal
import subprocess
import time

from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)


def _events(kmt, *args):
    return kmt.kago("events", *args, check=True, timeout=30).stdout.splitlines()


def _actions(lines, cid):
    return [line.split()[2] for line in lines if line.split()[3] == cid]


def test_run_stop_rm_logged_with_since_and_until(kmt):
    t0 = time.time()
    cid = kmt.kago("run", "-d", "--name", "kmt-ev", "--network", "none", "-l", "tier=front",
                   "busybox", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done",
                   check=True).stdout.strip()
    kmt.kago("pause", "kmt-ev", check=True)
    kmt.kago("unpause", "kmt-ev", check=True)
    kmt.kago("stop", "-t", "5", "kmt-ev", check=True)
    t1 = time.time()
    time.sleep(0.05)
    kmt.kago("rm", "kmt-ev", check=True)
    until_now = _events(kmt, "--since", str(t0), "--until", str(time.time()))
    assert _actions(until_now, cid) == ["create", "start", "pause", "unpause", "kill", "die",
                                        "stop", "destroy"]
    line = next(x for x in until_now if x.split()[2] == "die")
    assert line.endswith(f"container die {cid} (exitCode=0, image=busybox, name=kmt-ev, "
                         "tier=front)")
    assert "signal=15" in next(x for x in until_now if x.split()[2] == "kill")
    assert _actions(_events(kmt, "--since", str(t0), "--until", str(t1)), cid) == \
        ["create", "start", "pause", "unpause", "kill", "die", "stop"]
    assert _actions(_events(kmt, "--since", str(t1), "--until", "0s"), cid) == ["destroy"]
    # --until alone: from the start of the log (the fixture's image import is in it)
    assert any(" image import sha256:" in x for x in _events(kmt, "--until", "0s"))


def test_filters_and_json(kmt):
    t0 = time.time()
    cid = kmt.kago("run", "--name", "kmt-evj", "--network", "none", "busybox", "sh", "-c",
                   "exit 3").returncode and kmt.kago("inspect", "-f", "{{.Id}}", "kmt-evj",
                                                     check=True).stdout.strip()
    kmt.kago("rename", "kmt-evj", "kmt-evk", check=True)
    kmt.kago("volume", "create", "kmt-evv", check=True)
    kmt.kago("volume", "rm", "kmt-evv", check=True)
    since = ("--since", str(t0), "--until", "0s")
    docs = [json.loads(x) for x in _events(kmt, *since, "-f", "type=container", "-f",
                                           "event=die", "--format", "{{json .}}")]
    assert len(docs) == 1
    doc = docs[0]
    assert (doc["Type"], doc["Action"], doc["status"], doc["id"], doc["from"]) == \
        ("container", "die", "die", cid, "busybox")
    assert doc["Actor"] == {"ID": cid, "Attributes": {"exitCode": "3", "image": "busybox",
                                                      "name": "kmt-evj"}}
    assert doc["timeNano"] // 1_000_000_000 == doc["time"] >= int(t0)
    by_name = _events(kmt, *since, "-f", "container=kmt-evk", "--format", "{{.Action}}")
    assert by_name == ["rename"]  # the events before it name kmt-evj
    assert _events(kmt, *since, "-f", f"container={cid[:12]}", "--format",
                   "{{.Action}}") == ["create", "attach", "start", "die", "rename"]
    assert _events(kmt, *since, "-f", "type=volume", "--format", "json") and \
        [json.loads(x)["Action"] for x in _events(kmt, *since, "-f", "volume=kmt-evv",
                                                  "--format", "json")] == ["create", "destroy"]
    assert _events(kmt, *since, "-f", "image=alpine") == []
    bad = kmt.kago("events", "-f", "colour=red", "--until", "0s")
    assert (bad.returncode, bad.stderr) == (125, "kago: invalid filter 'colour'\n")


def _read_until(proc, want, timeout=15.0):
    """Lines of a running ``kago events`` until one equals ``want`` (bounded)."""
    seen, buf = [], b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while want not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            seen += [x.decode() for x in lines]
    return seen


def test_a_following_events_sees_a_start_made_after_it_began(kmt):
    t0 = time.time()
    kmt.kago("create", "--name", "kmt-evf", "--network", "none", "busybox", "sleep", "30",
             check=True)
    proc = subprocess.Popen([KAGO, "events", "--since", str(t0), "-f", "container=kmt-evf",
                             "--format", "{{.Action}}"], stdout=subprocess.PIPE, env=kmt.env)
    try:
        assert _read_until(proc, "create") == ["create"]  # the past, then it follows
        assert proc.poll() is None
        kmt.kago("start", "kmt-evf", check=True)
        assert _read_until(proc, "start") == ["start"]
        kmt.kago("kill", "kmt-evf", check=True)
        assert _read_until(proc, "die") == ["kill", "die"]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(5)
        proc.stdout.close()
    assert code == 0


def test_a_foreground_run_i_is_logged_too(kmt):
    t0 = time.time()
    proc = kmt.kago("run", "-i", "--name", "kmt-evi", "--network", "none", "busybox", "sh",
                    "-c", "cat; exit 4", input="hi\n")
    assert (proc.returncode, proc.stdout) == (4, "hi\n")
    lines = _events(kmt, "--since", str(t0), "--until", "0s", "-f", "container=kmt-evi",
                    "--format", "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
    assert lines == ["create ", "attach ", "start ", "die 4"]


def test_update_is_logged_as_docker_logs_it(kmt):
    t0 = time.time()
    cid = kmt.kago("run", "-d", "--name", "kmt-evu", "--network", "none", "busybox", "sleep",
                   "30", check=True).stdout.strip()
    kmt.kago("update", "--memory", "32m", "kmt-evu", check=True)
    kmt.kago("update", "--memory", "32m", "kmt-evu", check=True)  # no change: no event
    lines = _events(kmt, "--since", str(t0), "--until", "0s", "-f", "event=update")
    assert [line.split(" ", 1)[1] for line in lines] == \
        [f"container update {cid} (image=busybox, name=kmt-evu)"]
    kmt.kago("rm", "-f", "kmt-evu", check=True)


def test_exec_events_and_the_system_events_form(kmt):
    t0 = time.time()
    kmt.kago("run", "-d", "--name", "kmt-evx", "--network", "none", "busybox", "sleep", "30",
             check=True)
    assert kmt.kago("exec", "kmt-evx", "sh", "-c", "exit 5").returncode == 5
    lines = kmt.kago("system", "events", "--since", str(t0), "--until", "0s", "-f",
                     "container=kmt-evx", "-f", "event=exec_create", "-f", "event=exec_die",
                     "--format", "json", check=True, timeout=30).stdout.splitlines()
    docs = [json.loads(x) for x in lines]
    assert [d["Action"] for d in docs] == ["exec_create: sh -c exit 5", "exec_die"]
    assert docs[1]["Actor"]["Attributes"]["exitCode"] == "5"
    assert docs[0]["Actor"]["Attributes"]["execID"] == docs[1]["Actor"]["Attributes"]["execID"]
    kmt.kago("rm", "-f", "kmt-evx", check=True)


def test_image_events(kmt, tmp_path):
    t0 = time.time()
    image_id = kmt.kago("image", "inspect", "-f", "{{.Id}}", "busybox", check=True).stdout.strip()
    kmt.kago("tag", "busybox", "kmt-evimg:1", check=True)
    kmt.kago("rmi", "kmt-evimg:1", check=True)
    kmt.kago("save", "-o", tmp_path / "b.tar", "busybox", check=True)
    kmt.kago("load", "-i", tmp_path / "b.tar", check=True)
    docs = [json.loads(x) for x in _events(kmt, "--since", str(t0), "--until", "0s", "-f",
                                           "type=image", "--format", "{{json .}}")]
    got = [(d["Action"], d["Actor"]["ID"], d["Actor"]["Attributes"].get("name")) for d in docs]
    sha = image_id if image_id.startswith("sha256:") else "sha256:" + image_id
    assert got[:3] == [("tag", sha, "kmt-evimg:1"), ("untag", sha, "kmt-evimg:1"),
                       ("save", sha, "busybox")]
    assert [g[0] for g in got[3:]] == ["load"] and got[3][1] == sha
    assert docs[0]["status"] == "tag" and docs[0]["id"] == sha


def test_network_events(kmt):
    import random
    t0 = time.time()
    first, extra = f"kmt{kmt.tag}", f"kmt{kmt.tag}e"  # the root's default network, another
    kmt.kago("network", "create", "--subnet", f"10.248.{random.randrange(1, 250)}.0/24",
             "--internal", "--bridge", f"km{kmt.tag}e", extra, check=True)
    cid = kmt.kago("run", "-d", "--name", "kmt-evn", "busybox", "sleep", "30",
                   check=True).stdout.strip()
    kmt.kago("network", "connect", extra, "kmt-evn", check=True)
    kmt.kago("network", "disconnect", extra, "kmt-evn", check=True)
    kmt.kago("stop", "-t", "0", "kmt-evn", check=True)
    kmt.kago("start", "kmt-evn", check=True)
    kmt.kago("rm", "-f", "kmt-evn", check=True)
    kmt.kago("network", "rm", extra, check=True)
    docs = [json.loads(x) for x in _events(kmt, "--since", str(t0), "--until", "0s", "-f",
                                           "type=network", "--format", "json")]
    got = [(d["Action"], d["Actor"]["Attributes"]["name"],
            d["Actor"]["Attributes"].get("container")) for d in docs]
    assert got == [("create", extra, None), ("connect", first, cid), ("connect", extra, cid),
                   ("disconnect", extra, cid), ("disconnect", first, cid),
                   ("connect", first, cid), ("disconnect", first, cid),
                   ("destroy", extra, None)]
    assert _events(kmt, "--since", str(t0), "--until", "0s", "-f", f"network={extra}",
                   "--format", "{{.Action}}") == ["create", "connect", "disconnect", "destroy"]


def test_a_follower_without_since_begins_now_and_sees_health_status(kmt):
    cid = kmt.kago("create", "--name", "kmt-evh", "--network", "none", "--health-cmd", "true",
                   "--health-interval", "1s", "busybox", "sleep", "30",
                   check=True).stdout.strip()
    proc = subprocess.Popen([KAGO, "events", "--format", "{{.Type}} {{.Action}} {{.Actor.ID}}"],
                            stdout=subprocess.PIPE, env=kmt.env)
    try:
        seen = []
        for i in range(20):  # it begins at its own start: a volume made after it shows it is
            kmt.kago("volume", "create", f"kmt-evm{i}", check=True)
            seen = _read_until(proc, f"volume create kmt-evm{i}", timeout=1)
            if seen:
                break
        assert seen and seen[-1].startswith("volume create kmt-evm")
        kmt.kago("start", "kmt-evh", check=True)
        seen = _read_until(proc, f"container health_status: healthy {cid}")
        assert [x for x in seen if x.endswith(cid)] == [
            f"container start {cid}", f"container health_status: healthy {cid}"]  # no create
    finally:
        proc.terminate()  # stopped by PID
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


def test_an_oom_kill_logs_oom_then_die(kmt):
    import hostprobe
    t0 = time.time()
    swap = ["--memory-swap", "16m"] if hostprobe.has_cgroup_file(
        "memory", "memory.memsw.limit_in_bytes") else []
    proc = kmt.kago("run", "--name", "kmt-evo", "--network", "none", "--memory", "16m",
                    *swap, "busybox", "sh", "-c",
                    "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
    assert proc.returncode == 137, proc.stderr
    lines = _events(kmt, "--since", str(t0), "--until", "0s", "-f", "container=kmt-evo",
                    "-f", "event=oom", "-f", "event=die", "--format",
                    "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
    assert lines == ["oom ", "die 137"]
