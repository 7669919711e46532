"""``kago stats``' readings from the runtime's statistics (views.sample), on v1 and v2 data."""

from kago.manager import views


class FakeRuntime:
    def __init__(self, data):
        self.data = data

    def stats(self, cid):
        return self.data


class FakeManager:
    def __init__(self, data):
        self.rt = FakeRuntime(data)

    def runtime(self, record):
        return self.rt


def stats(raw, usage=100 << 20, limit=256 << 20):
    psi = {"some": {"avg10": 1.5, "avg60": 0.0, "avg300": 0.0, "total": 9}}
    return {"cpu": {"usage": {"total": 123}, "psi": psi},
            "memory": {"usage": {"usage": usage, "limit": limit}, "raw": raw, "psi": psi},
            "pids": {"current": 3}, "blkio": {"ioServiceBytesRecursive": [
                {"op": "read", "value": 7}, {"op": "Write", "value": 5}]}}


RECORD = {"id": "c" * 64, "name": "x", "network": {"mode": "host"}, "state": {}}


def test_v1_usage_leaves_out_the_trees_inactive_page_cache():
    raw = {"total_inactive_file": 30 << 20, "inactive_file": 1 << 20}
    got = views.sample(FakeManager(stats(raw)), RECORD)
    assert got["mem"] == 70 << 20 and got["limit"] == 256 << 20


def test_v2_usage_leaves_out_inactive_file():
    # memory.stat on v2 has no total_* keys: inactive_file is the cgroup's tree already
    raw = {"inactive_file": 40 << 20, "active_file": 5 << 20, "anon": 50 << 20}
    got = views.sample(FakeManager(stats(raw)), RECORD)
    assert got["mem"] == 60 << 20


def test_pids_io_and_pressure():
    got = views.sample(FakeManager(stats({})), RECORD)
    assert (got["cpu"], got["pids"], got["read"], got["write"]) == (123, 3, 7, 5)
    assert got["psi"] == {"cpu": 1.5, "memory": 1.5, "blkio": None}
    assert got["net"] is None
