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


class FakePaths:
    def log(self, cid):
        return f"/logs/{cid}"

    def bundle(self, cid):
        return f"/bundles/{cid}"


def test_inspect_reads_the_typed_definition():
    from kago.manager.definition import from_options, to_json
    d = from_options(
        "busybox", ["sh"], name="x", memory="64m", cpus="1.5", pids_limit=10,
        restart="on-failure:3", cap_add=["net_admin"], userns="auto:size=1000",
        volumes=["/s:/d:ro"], network="back", stop_timeout=4, labels={"k": "v"},
        seccomp="unconfined", rlimits={"nofile": (10, 20)})
    mgr = FakeManager({})
    mgr.paths = FakePaths()
    doc = views.inspect(mgr, dict(RECORD, definition=to_json(d)), live="exited")
    host, config = doc["HostConfig"], doc["Config"]
    assert host["NetworkMode"] == "back" and host["UsernsMode"] == "auto:size=1000"
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 << 20, 1500000000, 10)
    assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["CapDrop"] is None
    assert host["SecurityOpt"] == ["seccomp=unconfined"]
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 10, "Hard": 20}]
    assert doc["Mounts"] == [{"Type": "bind", "Source": "/s", "Destination": "/d", "RW": False,
                              "Mode": "ro"}]
    assert (config["Cmd"], config["Entrypoint"], config["Labels"]) == (["sh"], None,
                                                                        {"k": "v"})
    assert config["StopTimeout"] == 4


def test_inspect_of_a_record_without_a_definition_yet():
    mgr = FakeManager({})
    mgr.paths = FakePaths()
    doc = views.inspect(mgr, dict(RECORD), live="created")
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert doc["Mounts"] == [] and doc["Config"]["Cmd"] is None
