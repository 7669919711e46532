"""kago.manager.events: the log's lines, rotation and concurrent appends; docker's line and
JSON shapes; the filters; --since/--until times."""

import json
import os
import threading
import time

import pytest

from kago.manager import events as E


class P:
    def __init__(self, root):
        self.root = str(root)


def test_emit_appends_one_docker_line_0600(tmp_path):
    paths = P(tmp_path)
    E.emit(paths, "container", "start", "ab" * 32, {"name": "web", "image": "busybox"},
           now_ns=1_796_626_800_123_456_789)
    with open(E.path(paths)) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc == {"Type": "container", "Action": "start",
                   "Actor": {"ID": "ab" * 32,
                             "Attributes": {"name": "web", "image": "busybox"}},
                   "scope": "local", "time": 1_796_626_800, "timeNano": 1_796_626_800_123_456_789}
    assert os.stat(E.path(paths)).st_mode & 0o777 == 0o600


def test_line_and_docker_doc():
    doc = {"Type": "container", "Action": "die",
           "Actor": {"ID": "3f2a", "Attributes": {"name": "web", "image": "busybox",
                                                  "exitCode": "0"}},
           "scope": "local", "time": 1796626800, "timeNano": 1796626800000000005}
    assert E.line(doc) == ("2026-12-07T07:00:00.000000005Z container die 3f2a "
                           "(exitCode=0, image=busybox, name=web)")
    d = E.docker_doc(doc)
    assert (d["status"], d["id"], d["from"], d["Type"]) == ("die", "3f2a", "busybox",
                                                            "container")
    net = dict(doc, Type="network")
    assert "status" not in E.docker_doc(net)
    assert E.line(dict(doc, Actor={"ID": "x", "Attributes": {}})).endswith("die x")


def test_container_attributes_from_the_record(tmp_path):
    paths = P(tmp_path)
    record = {"id": "c1" * 32, "name": "web", "image": "busybox",
              "definition": {"labels": {"tier": "front"}}}
    doc = E.container(paths, "kill", record, signal=15)
    assert doc["Actor"]["Attributes"] == {"tier": "front", "image": "busybox", "name": "web",
                                          "signal": "15"}


def test_read_since_until(tmp_path):
    paths = P(tmp_path)
    for i in range(5):
        E.emit(paths, "volume", "create", f"v{i}", now_ns=(100 + i) * 1_000_000_000)
    ids = [d["Actor"]["ID"] for d in E.read(paths, since=101, until=103)]
    assert ids == ["v1", "v2", "v3"]
    assert len(list(E.read(paths))) == 5
    assert list(E.read(P(tmp_path / "nothing"))) == []


def test_rotation_keeps_the_previous_log_readable(tmp_path):
    paths = P(tmp_path)
    for i in range(40):
        E.emit(paths, "volume", "create", f"v{i}", max_bytes=1000)
    assert os.path.exists(E.path(paths) + ".1")
    if os.path.exists(E.path(paths)):  # the last write may have rotated it
        assert os.path.getsize(E.path(paths)) <= 1000 + 300
    assert os.path.getsize(E.path(paths) + ".1") <= 1000 + 300
    ids = [int(d["Actor"]["ID"][1:]) for d in E.read(paths)]
    assert ids == sorted(ids) and ids[-1] == 39 and len(ids) >= 6  # the newest kept, in order


def test_concurrent_appends_never_interleave(tmp_path):
    paths = P(tmp_path)
    attrs = {"pad": "x" * 3000}  # lines longer than a pipe's atomic size

    def writer(n):
        for i in range(100):
            E.emit(paths, "container", "start", f"{n}-{i}", attrs)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pid = os.fork()
    if pid == 0:  # and another process
        try:
            writer(9)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    with open(E.path(paths)) as f:
        lines = f.read().splitlines()
    assert len(lines) == 500
    assert all(json.loads(x)["Actor"]["Attributes"]["pad"] == "x" * 3000 for x in lines)


def test_concurrent_rotation_loses_nothing_of_the_newest(tmp_path):
    paths = P(tmp_path)

    def writer(n):
        for i in range(200):
            E.emit(paths, "volume", "create", f"{n}-{i}", max_bytes=20000)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    raw = b""
    for name in (E.path(paths) + ".1", E.path(paths)):
        if os.path.exists(name):
            with open(name, "rb") as f:
                raw += f.read()
    lines = raw.splitlines()
    assert all(json.loads(x)["Type"] == "volume" for x in lines)  # every line whole
    assert len(lines) * 110 > 20000  # at least the last MAX_BYTES' worth kept
    docs = list(E.read(paths))
    assert len(docs) == len(lines)
    assert len({d["Actor"]["ID"] for d in docs}) == len(docs)  # none read twice


def test_follow_sees_later_events_and_a_rotation(tmp_path):
    paths = P(tmp_path)
    E.emit(paths, "volume", "create", "before")
    seen = []
    done = threading.Event()

    def reader():
        for doc in E.follow(paths, since=0, poll=0.02, stop=done.is_set):
            seen.append(doc["Actor"]["ID"])
    t = threading.Thread(target=reader)
    t.start()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    # each event waited for before the next: a follower lagging a whole file behind loses
    # what rotated past it (as docker's does), which a loaded machine could otherwise cause
    for i in range(30):
        E.emit(paths, "volume", "create", f"v{i}", max_bytes=1000)
        deadline = time.monotonic() + 5
        while f"v{i}" not in seen and time.monotonic() < deadline:
            time.sleep(0.005)
    done.set()
    t.join(5)
    assert not t.is_alive()
    assert os.path.exists(E.path(paths) + ".1")
    assert seen == ["before"] + [f"v{i}" for i in range(30)]


def test_follow_ends_after_until(tmp_path):
    paths = P(tmp_path)
    start = time.monotonic()
    assert list(E.follow(paths, until=time.time() + 0.3, poll=0.02)) == []
    assert 0.25 < time.monotonic() - start < 3


def _doc(kind, action, aid, **attrs):
    return {"Type": kind, "Action": action, "Actor": {"ID": aid, "Attributes": attrs}}


def test_filters():
    start = _doc("container", "start", "3f2a" + "0" * 60, name="web", image="busybox",
                 tier="front")
    health = _doc("container", "health_status: healthy", "3f2a", name="web", image="busybox")
    pull = _doc("image", "pull", "busybox:latest", name="busybox:latest")
    net = _doc("network", "connect", "0123456789ab", name="front", container="3f2a")
    vol = _doc("volume", "create", "data", driver="local")
    f = E.parse_filters
    assert E.matches(start, f(["type=container"])) and not E.matches(pull, f(["type=container"]))
    assert E.matches(start, f(["type=image", "type=container"]))
    assert E.matches(start, f(["event=start"])) and not E.matches(start, f(["event=stop"]))
    assert E.matches(health, f(["event=health_status"]))
    assert E.matches(start, f(["container=web"])) and E.matches(start, f(["container=3f2a"]))
    assert not E.matches(net, f(["container=3f2a"]))  # container= is container events only
    assert not E.matches(start, f(["container=db"]))
    assert E.matches(start, f(["image=busybox"])) and E.matches(pull, f(["image=busybox"]))
    assert E.matches(start, f(["image=busybox:latest"]))
    assert not E.matches(start, f(["image=alpine"]))
    assert E.matches(start, f(["label=tier"])) and E.matches(start, f(["label=tier=front"]))
    assert not E.matches(start, f(["label=tier=back"]))
    assert E.matches(net, f(["network=front"])) and E.matches(vol, f(["volume=data"]))
    assert not E.matches(start, f(["type=container", "event=die"]))  # keys: all of them
    assert E.matches(start, f({"type": "container", "event": ["die", "start"]}))
    with pytest.raises(E.FilterError, match="invalid filter 'colour'"):
        f(["colour=red"])
    with pytest.raises(E.FilterError, match="type=pod"):
        f(["type=pod"])
    with pytest.raises(E.FilterError, match="name=value"):
        f(["type"])


def test_when():
    assert E.when(12.5) == 12.5
    assert E.when("1796626800") == 1796626800
    assert E.when("2026-12-07T07:00:00Z") == 1796626800
    assert E.when("2026-12-07T07:00:00.5Z") == 1796626800.5
    assert E.when("10m", now=1000) == 400
    assert E.when("1h30m", now=10000) == 10000 - 5400
    with pytest.raises(E.FilterError, match="yesterday"):
        E.when("yesterday")


def test_network_and_image_events_name_what_the_verbs_show(tmp_path):
    from kago.manager.networks import net_id
    paths = P(tmp_path)
    doc = E.network(paths, "connect", "front", container="c1")
    assert doc["Actor"] == {"ID": net_id("front"), "Attributes": {
        "container": "c1", "name": "front", "type": "bridge"}}
    assert E.image(paths, "tag", "sha256:ab", "web:1")["Actor"] == {
        "ID": "sha256:ab", "Attributes": {"name": "web:1"}}
    assert E.docker_doc(E.image(paths, "pull", "busybox:latest"))["status"] == "pull"


def test_died_logs_oom_first_and_the_exit_code(tmp_path):
    paths = P(tmp_path)
    E.died(paths, {"id": "c1", "name": "web", "image": "busybox"}, 137, oom=True)
    E.started(paths, {"id": "c1", "name": "web", "image": "busybox"}, attached=True)
    got = [(d["Action"], d["Actor"]["Attributes"].get("exitCode")) for d in E.read(paths)]
    assert got == [("oom", None), ("die", "137"), ("attach", None), ("start", None)]
