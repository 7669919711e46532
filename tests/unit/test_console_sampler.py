"""kago console's sampler (kago.console.metrics.Sampler) on a fake manager: one reader per
container run, closed when it stops or goes; a ring per container, dropped with it; the
containers listed again only when the event log changes."""

import os

from kago.console.metrics import Sampler


class Reader:
    def __init__(self, log, cid):
        self.log, self.cid, self.cpu = log, cid, 0
        log.append(("open", cid))

    def __call__(self):
        self.cpu += 500_000_000
        return {"cpu": {"usage": {"total": self.cpu}},
                "memory": {"usage": {"usage": 4096, "limit": 0}, "raw": {}},
                "pids": {"current": 1}, "blkio": {}}

    def close(self):
        self.log.append(("close", self.cid))


class Runtime:
    def __init__(self, log):
        self.log = log

    def stats_reader(self, cid):
        return Reader(self.log, cid)


class Paths:
    def __init__(self, root):
        self.root = root


class Manager:
    def __init__(self, root):
        self.paths, self.listed, self.lists, self.log = Paths(root), [], 0, []

    def list(self, all=False):
        self.lists += 1
        return [(dict(r), live) for r, live in self.listed]

    def runtime(self, _record):
        return Runtime(self.log)


class Client:
    def __init__(self, root):
        self.manager = Manager(root)


def record(cid, pid):
    return {"id": cid, "name": cid, "image": "busybox", "created": 1.0,
            "state": {"pid": pid, "started_at": 1.0}}


def touch_events(root):
    with open(os.path.join(root, "events.jsonl"), "a") as f:
        f.write("{}\n")


def test_rings_readers_and_relisting(tmp_path):
    client = Client(str(tmp_path))
    mgr = client.manager
    mgr.listed = [(record("a", 10), "running"), (record("b", 20), "exited")]
    s = Sampler(client, keep=5)
    for _ in range(7):
        s.tick()
    assert mgr.lists == 1  # no event since: the list is reused
    assert set(s.rings) == {"a"} and len(s.rings["a"]) == 5
    h = s.history("a")
    assert h["cpu_pct"][0] > 0 and s.latest("a")["mem_bytes"] == 4096  # ticks 0 s apart
    assert h["t"] == sorted(h["t"])
    assert mgr.log == [("open", "a")]
    rows = {r["name"]: r for r in s.snapshot[1]}
    assert rows["a"]["cpu_pct"] > 0 and rows["b"]["cpu_pct"] is None

    mgr.listed = [(record("a", 11), "running"), (record("b", 20), "exited")]  # a restarted
    touch_events(str(tmp_path))
    s.tick()
    assert mgr.lists == 2 and mgr.log[-2:] == [("close", "a"), ("open", "a")]
    assert s.latest("a")["cpu_pct"] is None  # no reading of this run before

    mgr.listed = [(record("b", 20), "exited")]  # a removed: its ring and reader go
    touch_events(str(tmp_path))
    s.tick()
    assert "a" not in s.rings and mgr.log[-1] == ("close", "a")
    assert s.history("a") == {"t": [], "cpu_pct": [], "mem_bytes": [], "io_read_bytes": [],
                              "io_write_bytes": [], "pids": [], "psi_cpu_some10": [],
                              "psi_mem_some10": [], "psi_io_some10": [], "mem_limit": None}
    s.close()
