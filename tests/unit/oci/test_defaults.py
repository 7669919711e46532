"""kago.oci.defaults: `kago-oci spec` is runc's document with kago's name; `features` is honest."""

import errno
import json
import os

import kago
from kago.oci.defaults import default_spec
from kago.plan import features as F
from kago.plan.features import features
from kago.oci.schema import validate_config
from kago.plan.tables import CAPABILITIES, parse_mount_options
from kago.plan.validate import validate

# What `runc spec` (runc 1.1.5) prints, ociVersion and hostname aside.
RUNC_MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
               "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
               "/proc/scsi"]
RUNC_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def test_spec_header_and_process():
    spec = default_spec()
    assert spec["ociVersion"] == "1.2.0" == kago.OCI_VERSION
    assert spec["hostname"] == "kago"
    assert spec["root"] == {"path": "rootfs", "readonly": True}
    p = spec["process"]
    assert p["terminal"] is True
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["args"] == ["sh"]
    assert p["cwd"] == "/"
    assert p["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "TERM=xterm"]
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert p["capabilities"] == {"bounding": caps, "effective": caps, "permitted": caps,
                                 "ambient": caps}
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert p["noNewPrivileges"] is True


def test_spec_mounts_match_runc():
    mounts = {m["destination"]: m for m in default_spec()["mounts"]}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                            "/sys/fs/cgroup"]
    assert mounts["/proc"] == {"destination": "/proc", "type": "proc", "source": "proc"}
    assert mounts["/dev/pts"]["options"] == ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                             "mode=0620", "gid=5"]
    assert mounts["/sys"] == {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                              "options": ["nosuid", "noexec", "nodev", "ro"]}
    assert mounts["/dev/shm"]["options"] == ["nosuid", "noexec", "nodev", "mode=1777",
                                             "size=65536k"]


def test_spec_linux_matches_runc():
    linux = default_spec()["linux"]
    assert linux["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert linux["maskedPaths"] == RUNC_MASKED
    assert linux["readonlyPaths"] == RUNC_READONLY
    assert "uidMappings" not in linux


def test_rootless_spec_matches_runc_rootless():
    spec = default_spec(rootless=True)
    linux = spec["linux"]
    assert "resources" not in linux
    assert [n["type"] for n in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "user"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/sys"] == {"destination": "/sys", "type": "none", "source": "/sys",
                              "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert "gid=5" not in mounts["/dev/pts"]["options"]


def test_args_and_terminal():
    spec = default_spec(args=("/bin/echo", "hi"), terminal=False)
    assert spec["process"]["args"] == ["/bin/echo", "hi"]
    assert spec["process"]["terminal"] is False


def test_each_call_returns_a_fresh_document():
    a, b = default_spec(), default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    a["mounts"][2]["options"].append("x")
    a["linux"]["maskedPaths"].clear()
    assert b == default_spec()
    assert "CAP_SYS_ADMIN" not in b["process"]["capabilities"]["effective"]


def test_spec_is_json_serialisable_and_round_trips():
    spec = default_spec(rootless=True)
    assert json.loads(json.dumps(spec)) == spec


def test_defaults_pass_both_validators():
    for rootless in (False, True):
        spec = default_spec(rootless=rootless)
        validate_config(spec)
        assert validate(spec) == []


def test_every_default_mount_option_is_understood():
    for m in default_spec()["mounts"]:
        parse_mount_options(m.get("options"))
    dev = parse_mount_options(default_spec()["mounts"][1]["options"])
    assert dev.data == "mode=755,size=65536k"


# ---------------------------------------------------------------- features

def test_features_versions_and_hooks():
    f = features()
    assert f["ociVersionMin"] == "1.0.0"
    assert f["ociVersionMax"] == "1.2.0"
    assert f["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                          "poststart", "poststop"]


def test_features_linux():
    linux = features()["linux"]
    assert linux["namespaces"] == ["cgroup", "ipc", "mount", "network", "pid", "time", "user",
                                   "uts"]
    assert linux["capabilities"] == list(CAPABILITIES)
    assert len(linux["capabilities"]) == 41
    assert linux["capabilities"][0] == "CAP_CHOWN"
    assert linux["capabilities"][-1] == "CAP_CHECKPOINT_RESTORE"
    # what kago-oci implements, not what this host mounts (the spec's words; runc and crun
    # fill it the same way): the host's layout is an annotation
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                               "rdma": True}
    assert linux["seccomp"]["enabled"] is True  # details: tests/unit/seccomp/test_features.py
    assert linux["apparmor"] == {"enabled": False}
    assert linux["selinux"] == {"enabled": False}
    assert linux["intelRdt"] == {"enabled": False}
    # idmapped mounts come with the storage issue; until then the document must not claim them
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}


def test_features_mount_options_are_the_parsers_words():
    options = features()["mountOptions"]
    assert options == sorted(options)
    for word in ("ro", "rw", "bind", "rbind", "rprivate", "rro", "rnosymfollow",
                 "nosymfollow", "strictatime"):
        assert word in options
    for word in ("idmap", "ridmap", "tmpcopyup"):  # implemented, so advertised
        assert word in options
    for word in options:
        assert parse_mount_options([word]).data == "", word


def test_features_annotations_and_json():
    f = features()
    assert f["annotations"] == {
        "io.github.kago.version": kago.__version__,
        "io.github.kago.cgroup.v2.devices": "ebpf" if F.device_filter_loads() else "none",
        "io.github.kago.mount.idmap": "true" if F.idmap_mounts() else "false"}
    assert features("hybrid")["annotations"]["io.github.kago.cgroup.host"] == "hybrid"
    assert json.loads(json.dumps(f)) == f
    f["hooks"].clear()
    assert len(features()["hooks"]) == 6


def test_features_host_probes_say_no_where_the_kernel_says_no(monkeypatch):
    """Each annotation follows its probe: no bpf(2) program loads (no CONFIG_CGROUP_BPF, no
    privilege), no mount_setattr(2) (before 5.12)."""
    from kago.errors import KernelError
    from kago.kernel import bpf, libc

    def refuse(err):
        def call(*a, **k):
            raise KernelError("call", err)
        return call
    monkeypatch.setattr(bpf, "prog_load", refuse(errno.EPERM))
    monkeypatch.setattr(libc, "mount_setattr", refuse(errno.ENOSYS))
    a = features()["annotations"]
    assert (a["io.github.kago.cgroup.v2.devices"], a["io.github.kago.mount.idmap"]) == (
        "none", "false")
    monkeypatch.setattr(libc, "mount_setattr", refuse(errno.EINVAL))  # there, args refused
    assert F.idmap_mounts() is True


def test_features_probe_of_a_device_program_loads_and_closes_it(monkeypatch):
    from kago.kernel import bpf
    loaded, closed = [], []
    monkeypatch.setattr(bpf, "prog_load", lambda insns, lic, name=b"": loaded.append(
        (insns, lic)) or 99)
    monkeypatch.setattr(bpf, "_close", closed.append)
    assert F.device_filter_loads() is True
    assert loaded == [(bytes((0xB4, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)),
                       "Apache")] and closed == [99]


def test_cgroup_namespace_as_runc_spec_adds_on_a_pure_v2_host():
    assert [n["type"] for n in default_spec(cgroup_ns=True)["linux"]["namespaces"]] == \
        ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert [n["type"] for n in default_spec(rootless=True, cgroup_ns=True)["linux"][
        "namespaces"]] == ["pid", "ipc", "uts", "mount", "cgroup", "user"]
