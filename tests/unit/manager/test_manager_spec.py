"""The manager's configuration -> OCI config.json (spec.build is pure)."""

import pytest

from kago.manager import config as C
from kago.manager.errors import BadValue
from kago.manager.spec import ImageConfig, User, build, command, resources

CID = "ab" * 32


def spec_of(**cfg):
    return build(C.new_config(image="x", **cfg), cid=CID, rootfs="/r",
                 image=ImageConfig({"Cmd": ["sh"], "Env": ["A=image"], "WorkingDir": "/w"}))


def test_defaults_are_dockers():
    spec = spec_of()
    proc = spec["process"]
    assert proc["args"] == ["sh"]
    assert sorted(proc["capabilities"]["bounding"]) == sorted(C.DEFAULT_CAPS)
    assert proc["capabilities"]["effective"] == proc["capabilities"]["bounding"]
    assert proc["cwd"] == "/w" and "A=image" in proc["env"]
    assert spec["hostname"] == CID[:12]
    assert spec["linux"]["cgroupsPath"] == f"/kago-{CID}"
    assert "seccomp" in spec["linux"]
    assert spec["root"] == {"path": "/r", "readonly": False}
    kinds = [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert kinds == ["pid", "network", "ipc", "uts", "mount"]


def test_command_follows_dockers_entrypoint_rule():
    image = ImageConfig({"Entrypoint": ["/init"], "Cmd": ["--serve"]})
    assert command(C.new_config(image="x"), image) == ["/init", "--serve"]
    assert command(C.new_config(image="x", command=["--debug"]), image) == ["/init", "--debug"]
    assert command(C.new_config(image="x", entrypoint=["/bin/sh"]), image) == ["/bin/sh"]
    with pytest.raises(BadValue, match="no command"):
        command(C.new_config(image="x"), ImageConfig({}))


def test_a_non_root_user_starts_without_live_capabilities():
    spec = build(C.new_config(image="x", command=["id"]), cid=CID, rootfs="/r",
                 user=User(33, 33, [4])) 
    caps = spec["process"]["capabilities"]
    assert caps["effective"] == [] and caps["permitted"] == [] and caps["bounding"]
    assert spec["process"]["user"] == {"uid": 33, "gid": 33, "additionalGids": [4]}


def test_host_network_and_user_namespace_get_the_hosts_sys_read_only():
    spec = build(C.new_config(image="x", command=["true"]), cid=CID, rootfs="/r", netns="host",
                 uid_map=[[0, 1000000, 100]])
    kinds = [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert "network" not in kinds and "user" in kinds
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert sys_mount["type"] == "none" and "ro" in sys_mount["options"]
    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 1000000, "size": 100}]
    assert spec["linux"]["gidMappings"] == spec["linux"]["uidMappings"]


def test_a_network_namespace_path_is_joined():
    spec = build(C.new_config(image="x", command=["true"]), cid=CID, rootfs="/r",
                 netns="/run/netns/kmt-1")
    assert {"type": "network", "path": "/run/netns/kmt-1"} in spec["linux"]["namespaces"]


def test_independent_mounts_can_be_left_out():
    spec = spec_of(independent=["proc", "dev"])
    dests = [m["destination"] for m in spec["mounts"]]
    assert "/proc" in dests and "/dev" in dests
    assert "/sys" not in dests and "/dev/pts" not in dests and "/dev/shm" not in dests


def test_user_mounts_and_etc_files():
    spec = build(C.new_config(image="x", command=["true"], mounts=[
        {"type": "tmpfs", "destination": "/tmp", "options": ["size=1m"]},
        {"type": "bind", "source": "/src", "destination": "/dst", "readonly": True},
        {"type": "volume", "source": "data", "destination": "/data"}]),
        cid=CID, rootfs="/r", etc={"/etc/hosts": "/state/hosts"}, volumes={"data": "/v/data"})
    by_dest = {m["destination"]: m for m in spec["mounts"]}
    assert by_dest["/tmp"]["type"] == "tmpfs"
    assert by_dest["/dst"]["source"] == "/src" and "ro" in by_dest["/dst"]["options"]
    assert by_dest["/data"]["source"] == "/v/data"
    assert by_dest["/etc/hosts"]["source"] == "/state/hosts"


def test_cgroup_keys_in_either_vocabulary():
    res = resources(C.new_config(image="x", cgroup={"cpu.cfs_quota_us": 30000,
                                                     "cpu.cfs_period_us": 100000,
                                                     "memory.limit_in_bytes": "64m",
                                                     "pids.max": "max",
                                                     "memory.high": "50M"}))
    assert res["cpu"] == {"quota": 30000, "period": 100000}
    assert res["memory"] == {"limit": 64 << 20}
    assert res["pids"] == {"limit": -1}
    assert res["unified"] == {"memory.high": "50M"}
    assert resources(C.new_config(image="x", cpus=0.3, memory=1 << 20, pids_limit=10)) == {
        "cpu": {"quota": 30000, "period": 100000}, "memory": {"limit": 1 << 20},
        "pids": {"limit": 10}}
    with pytest.raises(BadValue, match="control file names"):
        resources(C.new_config(image="x", cgroup={"quota": 1}))
    with pytest.raises(BadValue, match="invalid value"):
        resources(C.new_config(image="x", cgroup={"cpu.cfs_quota_us": "lots"}))


def test_rlimits_and_their_checks():
    spec = spec_of(rlimits={"nofile": [512, 1024], "nproc": 100})
    limits = {r["type"]: (r["soft"], r["hard"]) for r in spec["process"]["rlimits"]}
    assert limits == {"RLIMIT_NOFILE": (512, 1024), "RLIMIT_NPROC": (100, 100)}
    with pytest.raises(BadValue):
        spec_of(rlimits={"bogus": 1})
    with pytest.raises(BadValue, match="above"):
        spec_of(rlimits={"nofile": [2048, 1024]})


def test_sharing_the_host_uts_namespace_drops_the_hostname():
    spec = spec_of(namespaces={"uts": "host", "ipc": "/proc/1/ns/ipc"})
    kinds = {ns["type"]: ns.get("path") for ns in spec["linux"]["namespaces"]}
    assert "uts" not in kinds and kinds["ipc"] == "/proc/1/ns/ipc"
    assert "hostname" not in spec
    with pytest.raises(BadValue, match="mount"):
        spec_of(namespaces={"mount": "host"})
