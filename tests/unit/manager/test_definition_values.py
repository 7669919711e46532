"""What users write -> typed parts (definition.values / resources): pure, no root, no kernel;
every error names the field it was given."""

import pytest

from kago.manager.definition import (
    DEFAULT_CAPS,
    Capabilities,
    CgroupKey,
    Definition,
    IdMapping,
    IdRange,
    Mount,
    Namespace,
    Network,
    Port,
    RestartPolicy,
    Rlimit,
)
from kago.manager.definition import values as V
from kago.manager.definition.resources import cgroup, rlimits
from kago.manager.errors import BadValue


@pytest.mark.parametrize("text,expected", [
    ("512", 512), ("512b", 512), ("64k", 64 << 10), ("64K", 64 << 10), ("512m", 512 << 20),
    ("1.5g", int(1.5 * (1 << 30))), ("2gb", 2 << 30), (4096, 4096),
])
def test_sizes(text, expected):
    assert V.size(text, "--memory") == expected


@pytest.mark.parametrize("text", ["", "lots", "12x", "-5m", "m", "1.2.3m", -1])
def test_bad_sizes_name_the_field(text):
    with pytest.raises(BadValue, match="^--memory: "):
        V.size(text, "--memory")


def test_cpus():
    assert V.cpus("0.3", "--cpus") == 0.3 and V.cpus(2, "cpus") == 2.0
    for bad in ("0", "-1", "x", "2000", True):
        with pytest.raises(BadValue, match="^--cpus: "):
            V.cpus(bad, "--cpus")


def test_env_takes_bare_names_from_the_caller_and_later_values_win():
    assert V.env(["A=1", "B", "C"], "-e", environ={"B": "2"}) == ("A=1", "B=2")
    assert V.merge_env(["PATH=/bin", "A=1"], ["A=2", "Z=9"]) == ["PATH=/bin", "A=2", "Z=9"]
    with pytest.raises(BadValue, match="^-e: "):
        V.env(["=x"], "-e")


def test_volumes():
    assert V.volume("/src:/dst:ro", "-v") == Mount("bind", "/dst", "/src", True)
    assert V.volume("data:/var/lib/data:rslave", "-v") == Mount(
        "volume", "/var/lib/data", "data", False, ("rslave",))
    for bad in ("/src", "/src:rel", "./x:/y", "/a:/b:rw:extra", "/a:/b:bogus", "b@d:/x"):
        with pytest.raises(BadValue, match="^-v: "):
            V.volume(bad, "-v")


def test_tmpfs():
    assert V.tmpfs("/tmp", "--tmpfs") == Mount("tmpfs", "/tmp", "tmpfs", False,
                                               ("nosuid", "nodev", "mode=1777"))
    assert V.tmpfs("/t:ro,size=1m", "--tmpfs") == Mount("tmpfs", "/t", "tmpfs", True,
                                                        ("size=1m",))
    with pytest.raises(BadValue, match="^--tmpfs: "):
        V.tmpfs("tmp", "--tmpfs")


def test_restart_policies():
    assert V.restart("no", "r") == RestartPolicy()
    assert V.restart("on-failure:3", "r") == RestartPolicy("on-failure", 3)
    assert V.restart("always", "r") == RestartPolicy("always")
    assert RestartPolicy("on-failure", 3).text == "on-failure:3"
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(BadValue, match="^--restart: "):
            V.restart(bad, "--restart")


def test_ports_are_checked_by_kago_network_parser():
    assert V.port("8080:80", "-p") == Port(8080, 80)
    assert V.port("127.0.0.1:8080:80/udp", "-p") == Port(8080, 80, "udp", "127.0.0.1")
    assert Port(8080, 80, "udp", "127.0.0.1").text == "127.0.0.1:8080:80/udp"
    with pytest.raises(BadValue, match="^-p: "):
        V.port("eighty", "-p")


def test_networks():
    assert V.network("host", "--network") == Network("host")
    assert V.network("container:web", "--network").text == "container:web"
    named = V.network("backend", "--network", "10.0.0.5", ["db"])
    assert named == Network("bridge", "backend", "", "10.0.0.5", ("db",))
    assert named.text == "backend"
    with pytest.raises(BadValue, match="^--network: "):
        V.network("container:", "--network")


def test_capabilities_follow_dockers_add_then_drop_rule():
    def caps(add=(), drop=()):
        return Definition(image="x", capabilities=Capabilities(
            tuple(V.cap_name(c, "--cap-add") for c in add),
            tuple(V.cap_name(c, "--cap-drop") for c in drop))).capability_set()
    assert caps() == tuple(sorted(DEFAULT_CAPS))
    assert "CAP_NET_ADMIN" in caps(["net_admin"])
    assert "CAP_CHOWN" not in caps(drop=["CHOWN"])
    assert caps(["NET_BIND_SERVICE"], ["ALL"]) == ("CAP_NET_BIND_SERVICE",)
    assert len(caps(["ALL"])) > len(DEFAULT_CAPS)
    with pytest.raises(BadValue, match='^--cap-add: unknown capability "CAP_FLY"'):
        caps(["CAP_FLY"])


def test_user_namespaces_and_id_maps():
    assert V.userns("auto", "--userns") == IdMapping("auto")
    assert V.userns("auto:size=1000", "--userns") == IdMapping("auto", 1000)
    assert IdMapping("auto", 1000).text == "auto:size=1000" and IdMapping().text == ""
    with pytest.raises(BadValue, match="^--userns: "):
        V.userns("sometimes", "--userns")
    assert V.id_map("0:100000:65536", "--uidmap") == (IdRange(0, 100000, 65536),)
    assert V.id_map((0, 5, 10), "ids") == (IdRange(0, 5, 10),)
    assert V.id_map([(0, 5, 10), (10, 100, 1)], "ids") == (IdRange(0, 5, 10),
                                                           IdRange(10, 100, 1))
    for bad in ("0:1", (0, 1, 0), (0, -1, 5), (0, 1 << 32, 1)):
        with pytest.raises(BadValue, match="^ids: "):
            V.id_map(bad, "ids")


def test_namespaces():
    assert V.namespaces({"pid": "host", "ipc": "/proc/1/ns/ipc"}, "namespaces") == (
        Namespace("pid", "host"), Namespace("ipc", "/proc/1/ns/ipc"))
    for bad, field in (({"bogus": "new"}, "namespaces"), ({"pid": "old"}, "namespaces.pid"),
                       ({"mount": "host"}, "namespaces.mount")):
        with pytest.raises(BadValue, match=f"^{field}: "):
            V.namespaces(bad, "namespaces")


def test_cgroup_keys_in_either_vocabulary():
    keys = cgroup({"cpu.cfs_quota_us": 30000, "memory.limit_in_bytes": "64m",
                   "pids.max": "max", "memory.high": "50M"}, "cgroup")
    assert keys == (CgroupKey("cpu.cfs_quota_us", 30000, "cpu", "quota"),
                    CgroupKey("memory.limit_in_bytes", 64 << 20, "memory", "limit"),
                    CgroupKey("pids.max", -1, "pids", "limit"),
                    CgroupKey("memory.high", "50M"))
    with pytest.raises(BadValue, match="control file names"):
        cgroup({"quota": 1}, "cgroup")
    with pytest.raises(BadValue, match=r"^cgroup\['cpu.cfs_quota_us'\]: invalid value"):
        cgroup({"cpu.cfs_quota_us": "lots"}, "cgroup")


def test_rlimits_and_their_checks():
    assert rlimits({"nofile": [512, 1024], "RLIMIT_NPROC": 100}, "rlimits") == (
        Rlimit("nofile", 512, 1024), Rlimit("nproc", 100, 100))
    with pytest.raises(BadValue, match="^rlimits.bogus: unknown resource limit"):
        rlimits({"bogus": 1}, "rlimits")
    with pytest.raises(BadValue, match="above"):
        rlimits({"nofile": [2048, 1024]}, "rlimits")


def test_stop_signals_and_log_options():
    assert V.stop_signal("usr1", "--stop-signal") == "SIGUSR1"
    assert V.stop_signal("9", "--stop-signal") == "9"
    with pytest.raises(BadValue, match='^--stop-signal: unknown signal'):
        V.stop_signal("SIGFLY", "--stop-signal")
    assert V.log({"max_size": "4k"}, "log").max_size == 4096
    with pytest.raises(BadValue, match="^log: unknown log option"):
        V.log({"max_age": 1}, "log")
