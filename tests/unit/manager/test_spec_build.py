"""spec.build: a Definition -> the OCI config, one table row per thing a definition can ask
for (runc's libcontainer/specconv tests, turned around: each row is a definition, the config
fragment it must produce, and nothing else is compared)."""

import pytest

from kago.manager.definition import (
    DEFAULT_CAPS,
    Capabilities,
    CgroupKey,
    Definition,
    IdMapping,
    IdRange,
    Limits,
    Mount,
    Namespace,
    OciHook,
    Rlimit,
)
from kago.manager.errors import BadValue
from kago.manager.spec import ImageConfig, User, build
from kago.oci.names import CAPABILITIES

CID = "ab" * 32
PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE = {"Cmd": ["sh"], "Env": ["A=image", "B=image"], "WorkingDir": "/w"}
ABSENT = object()


class Has:
    """A list fragment: these items are in the list (others may be too)."""

    def __init__(self, *items):
        self.items = items


class Lacks:
    """A list fragment: no item of the list matches any of these fragments."""

    def __init__(self, *items):
        self.items = items


class Dests:
    """A mounts fragment: exactly these destinations, in this order."""

    def __init__(self, *dests):
        self.dests = list(dests)


def matches(expected, actual):
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            (key not in actual) if want is ABSENT else
            (key in actual and matches(want, actual[key])) for key, want in expected.items())
    if isinstance(expected, Has):
        return all(any(matches(item, got) for got in actual) for item in expected.items)
    if isinstance(expected, Lacks):
        return not any(matches(item, got) for item in expected.items for got in actual)
    if isinstance(expected, Dests):
        return [m["destination"] for m in actual] == expected.dests
    return expected == actual


def d(**fields):
    return Definition(image="x", **fields)


ROWS = [
    # --- resources
    ("memory", d(limits=Limits(memory=64 << 20)), {},
     {"linux": {"resources": {"memory": {"limit": 64 << 20, "swap": ABSENT}}}}),
    ("memory and swap", d(limits=Limits(memory=64 << 20, memory_swap=128 << 20)), {},
     {"linux": {"resources": {"memory": {"limit": 64 << 20, "swap": 128 << 20}}}}),
    ("unlimited swap", d(limits=Limits(memory=1 << 20, memory_swap=-1)), {},
     {"linux": {"resources": {"memory": {"swap": -1}}}}),
    ("cpus as a quota over 100ms", d(limits=Limits(cpus=1.5)), {},
     {"linux": {"resources": {"cpu": {"quota": 150000, "period": 100000}}}}),
    ("cpu shares", d(limits=Limits(cpu_shares=512)), {},
     {"linux": {"resources": {"cpu": {"shares": 512}}}}),
    ("pids", d(limits=Limits(pids=100)), {}, {"linux": {"resources": {"pids": {"limit": 100}}}}),
    ("unlimited pids", d(limits=Limits(pids=-1)), {},
     {"linux": {"resources": {"pids": {"limit": -1}}}}),
    ("cpuset", d(limits=Limits(cpuset_cpus="0-1")), {},
     {"linux": {"resources": {"cpu": {"cpus": "0-1"}}}}),
    ("a v1 cgroup key with a resources field",
     d(limits=Limits(cgroup=(CgroupKey("cpu.cfs_quota_us", 30000, "cpu", "quota"),
                             CgroupKey("memory.limit_in_bytes", 16 << 20, "memory", "limit")))),
     {}, {"linux": {"resources": {"cpu": {"quota": 30000}, "memory": {"limit": 16 << 20},
                                  "unified": ABSENT}}}),
    ("other cgroup keys go to unified",
     d(limits=Limits(cgroup=(CgroupKey("cpu.max", "30000 100000"),
                             CgroupKey("memory.high", "64M")))), {},
     {"linux": {"resources": {"unified": {"cpu.max": "30000 100000", "memory.high": "64M"}}}}),
    ("no limits leave runc's devices alone", d(), {},
     {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}],
                              "memory": ABSENT, "cpu": ABSENT, "pids": ABSENT}}}),
    # --- user namespaces
    ("user namespace with both maps", d(),
     {"uid_map": (IdRange(0, 100000, 65536),), "gid_map": (IdRange(0, 200000, 1000),)},
     {"linux": {"namespaces": Has({"type": "user"}),
                "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 1000}]},
      "mounts": Lacks({"destination": "/dev/pts", "options": Has("gid=5")})}),
    ("the gid map is the uid map's when not given", d(),
     {"uid_map": (IdRange(0, 1000, 10), IdRange(10, 5000, 1))},
     {"linux": {"gidMappings": [{"containerID": 0, "hostID": 1000, "size": 10},
                                {"containerID": 10, "hostID": 5000, "size": 1}]}}),
    ("no map, no user namespace", d(ids=IdMapping("auto")), {},
     {"linux": {"namespaces": Lacks({"type": "user"}), "uidMappings": ABSENT}}),
    ("a user namespace on the host's network gets the host's /sys read-only", d(),
     {"netns": "host", "uid_map": (IdRange(0, 1000000, 100),)},
     {"linux": {"namespaces": Lacks({"type": "network"})},
      "mounts": Has({"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})}),
    # --- root and mounts
    ("read-only root", d(read_only=True), {}, {"root": {"path": "/r", "readonly": True}}),
    ("writable root", d(), {}, {"root": {"path": "/r", "readonly": False}}),
    ("tmpfs", d(mounts=(Mount("tmpfs", "/tmp", "tmpfs", False, ("nosuid", "size=1048576")),)),
     {}, {"mounts": Has({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                         "options": ["nosuid", "size=1048576"]})}),
    ("read-only tmpfs", d(mounts=(Mount("tmpfs", "/t", "tmpfs", True, ("nodev",)),)), {},
     {"mounts": Has({"destination": "/t", "options": ["nodev", "ro"]})}),
    ("read-only bind with propagation",
     d(mounts=(Mount("bind", "/dst", "/src", True, ("rslave",)),)), {},
     {"mounts": Has({"destination": "/dst", "type": "bind", "source": "/src",
                     "options": ["rbind", "ro", "rslave"]})}),
    ("volume", d(mounts=(Mount("volume", "/data", "data"),)), {"volumes": {"data": "/v/_data"}},
     {"mounts": Has({"destination": "/data", "type": "bind", "source": "/v/_data",
                     "options": ["rbind", "rw"]})}),
    ("every independent mount by default", d(), {},
     {"mounts": Dests("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                      "/sys/fs/cgroup")}),
    ("independent proc and dev only", d(independent=("proc", "dev")), {},
     {"mounts": Dests("/proc", "/dev")}),
    ("no fresh /dev: nothing under it either", d(independent=("proc", "devpts", "sys")), {},
     {"mounts": Dests("/proc", "/sys", "/sys/fs/cgroup")}),
    ("network_etc own: kago's files, writable", d(), {"etc": {"/etc/hosts": "/s/hosts"}},
     {"mounts": Has({"destination": "/etc/hosts", "type": "bind", "source": "/s/hosts",
                     "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]})}),
    ("network_etc host: the host's files, read-only", d(network_etc="host"),
     {"etc": {"/etc/resolv.conf": "/etc/resolv.conf"}},
     {"mounts": Has({"destination": "/etc/resolv.conf", "source": "/etc/resolv.conf",
                     "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]})}),
    # --- capabilities
    ("docker's default capabilities", d(), {},
     {"process": {"capabilities": {"bounding": sorted(DEFAULT_CAPS),
                                   "effective": sorted(DEFAULT_CAPS), "ambient": []}}}),
    ("cap add and drop", d(capabilities=Capabilities(("CAP_NET_ADMIN",), ("CAP_CHOWN",))), {},
     {"process": {"capabilities": {"bounding": sorted(
         set(DEFAULT_CAPS) - {"CAP_CHOWN"} | {"CAP_NET_ADMIN"})}}}),
    ("drop ALL keeps only the added", d(capabilities=Capabilities(("CAP_NET_BIND_SERVICE",),
                                                                  ("ALL",))), {},
     {"process": {"capabilities": {"bounding": ["CAP_NET_BIND_SERVICE"]}}}),
    ("add ALL is every capability", d(capabilities=Capabilities(("ALL",), ("CAP_SYS_ADMIN",))),
     {}, {"process": {"capabilities": {"bounding": sorted(set(CAPABILITIES)
                                                           - {"CAP_SYS_ADMIN"})}}}),
    ("a non-root user keeps no live capabilities", d(), {"user": User(33, 33, [4])},
     {"process": {"user": {"uid": 33, "gid": 33, "additionalGids": [4]},
                  "capabilities": {"bounding": sorted(DEFAULT_CAPS), "effective": [],
                                   "permitted": []}}}),
    # --- process
    ("runc's nofile by default", d(), {},
     {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]}}),
    ("rlimits replace and add", d(rlimits=(Rlimit("nofile", 2048, 4096),
                                           Rlimit("nproc", 10, 20))), {},
     {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 4096},
                              {"type": "RLIMIT_NPROC", "soft": 10, "hard": 20}]}}),
    ("no new privileges", d(no_new_privileges=True), {}, {"process": {"noNewPrivileges": True}}),
    ("tty", d(tty=True), {},
     {"process": {"terminal": True, "consoleSize": {"height": 24, "width": 80},
                  "env": Has("TERM=xterm")}}),
    ("no tty", d(), {}, {"process": {"terminal": False, "consoleSize": ABSENT,
                                     "env": Lacks("TERM=xterm")}}),
    ("env merged over the image's, by key", d(env=("B=mine", "C=3")), {},
     {"process": {"env": [PATH, f"HOSTNAME={CID[:12]}", "HOME=/root", "A=image", "B=mine",
                          "C=3"]}}),
    ("the image's workdir", d(), {}, {"process": {"cwd": "/w"}}),
    ("a given workdir", d(workdir="/srv"), {}, {"process": {"cwd": "/srv"}}),
    ("a user's home", d(), {"user": User(1000, 1000, home="/home/u")},
     {"process": {"user": {"uid": 1000, "gid": 1000, "additionalGids": ABSENT},
                  "env": Has("HOME=/home/u")}}),
    ("the image's command", d(), {}, {"process": {"args": ["sh"]}}),
    ("a given command", d(command=("echo", "hi")), {}, {"process": {"args": ["echo", "hi"]}}),
    ("the image's entrypoint with its Cmd", d(),
     {"image": ImageConfig({"Entrypoint": ["/init"], "Cmd": ["--serve"]})},
     {"process": {"args": ["/init", "--serve"]}}),
    ("a command after the image's entrypoint", d(command=("--debug",)),
     {"image": ImageConfig({"Entrypoint": ["/init"], "Cmd": ["--serve"]})},
     {"process": {"args": ["/init", "--debug"]}}),
    ("a new entrypoint drops the image's Cmd", d(entrypoint=("/bin/sh",)),
     {"image": ImageConfig({"Entrypoint": ["/init"], "Cmd": ["--serve"]})},
     {"process": {"args": ["/bin/sh"]}}),
    ("an empty entrypoint runs the command alone", d(entrypoint=(), command=("ls",)),
     {"image": ImageConfig({"Entrypoint": ["/init"]})}, {"process": {"args": ["ls"]}}),
    # --- security and namespaces
    ("sysctls", d(sysctls=(("net.ipv4.ip_forward", "1"),)), {},
     {"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}),
    ("docker's seccomp profile by default", d(), {},
     {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}),
    ("seccomp unconfined", d(seccomp="unconfined"), {}, {"linux": {"seccomp": ABSENT}}),
    ("new namespaces by default", d(), {},
     {"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "mount"}]},
      "hostname": CID[:12]}),
    ("the host's pid and uts namespaces", d(namespaces=(Namespace("pid", "host"),
                                                        Namespace("uts", "host"))), {},
     {"linux": {"namespaces": [{"type": "network"}, {"type": "ipc"}, {"type": "mount"}]},
      "hostname": ABSENT}),
    ("a namespace path", d(namespaces=(Namespace("ipc", "/proc/1/ns/ipc"),)), {},
     {"linux": {"namespaces": Has({"type": "ipc", "path": "/proc/1/ns/ipc"})}}),
    ("a new cgroup namespace", d(namespaces=(Namespace("cgroup", "new"),)), {},
     {"linux": {"namespaces": Has({"type": "cgroup"})}}),
    ("the host's network", d(), {"netns": "host"},
     {"linux": {"namespaces": Lacks({"type": "network"})}}),
    ("a network namespace path", d(), {"netns": "/run/netns/k1"},
     {"linux": {"namespaces": Has({"type": "network", "path": "/run/netns/k1"})}}),
    # --- the rest
    ("hostname", d(hostname="web"), {}, {"hostname": "web", "process": {
        "env": Has("HOSTNAME=web")}}),
    ("cgroups path", d(), {"cgroups_path": "/kago.slice/x"},
     {"linux": {"cgroupsPath": "/kago.slice/x"}}),
    ("labels and names as annotations", d(name="web", labels=(("tier", "front"),)), {},
     {"annotations": {"io.kago.id": CID, "io.kago.name": "web", "tier": "front"}}),
    ("oci hooks", d(oci_hooks=(OciHook("createContainer", "/bin/sh", ("sh", "-c", "x"),
                                       timeout=60),)), {},
     {"hooks": {"createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "x"],
                                     "timeout": 60}]}}),
    ("no hooks", d(), {}, {"hooks": ABSENT}),
]


NULL = {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666, "uid": 0,
        "gid": 0}
ROWS += [
    # --- docker's run flags: --shm-size, --group-add, --device, --privileged
    ("shm size", d(shm_size=1 << 30), {},
     {"mounts": Has({"destination": "/dev/shm", "options": Has("size=1073741824")})}),
    ("default shm size", d(), {},
     {"mounts": Has({"destination": "/dev/shm", "options": Has("size=65536k")})}),
    ("numeric groups added", d(group_add=("10", "20")), {"user": User(0, 0, [20, 30])},
     {"process": {"user": {"additionalGids": [10, 20, 30]}}}),
    ("a device node and its cgroup rule",
     d(), {"devices": [{**NULL, "path": "/dev/mynull", "permissions": "rw"}]},
     {"linux": {"devices": [{**NULL, "path": "/dev/mynull"}], "resources": {"devices": [
         {"allow": False, "access": "rwm"},
         {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}}}),
    ("no devices", d(), {}, {"linux": {"devices": ABSENT}}),
    ("privileged", d(privileged=True), {"devices": [{**NULL, "permissions": "rwm"}]},
     {"process": {"capabilities": {"bounding": sorted(CAPABILITIES),
                                   "effective": sorted(CAPABILITIES)}},
      "linux": {"seccomp": ABSENT, "maskedPaths": [], "readonlyPaths": [],
                "devices": [NULL],
                "resources": {"devices": [{"allow": True, "access": "rwm"}]}},
      "mounts": Lacks({"destination": "/sys", "options": Has("ro")},
                      {"destination": "/sys/fs/cgroup", "options": Has("ro")})}),
    ("privileged: only the capabilities the host has", d(privileged=True),
     {"host_caps": ("CAP_CHOWN", "CAP_SYS_ADMIN")},
     {"process": {"capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN"]}}}),
    ("privileged as a user: nothing effective", d(privileged=True), {"user": User(1000, 1000)},
     {"process": {"capabilities": {"bounding": sorted(CAPABILITIES), "effective": []}}}),
    ("unprivileged: masked paths and a read-only /sys", d(), {},
     {"linux": {"maskedPaths": Has("/proc/kcore"), "readonlyPaths": Has("/proc/sys")},
      "mounts": Has({"destination": "/sys", "options": Has("ro")})}),
]


@pytest.mark.parametrize("definition,kwargs,expected",
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_build(definition, kwargs, expected):
    kwargs = {"image": ImageConfig(IMAGE), **kwargs}
    spec = build(definition, cid=CID, rootfs="/r", **kwargs)
    assert matches(expected, spec), spec


def test_no_command_anywhere_is_refused():
    with pytest.raises(BadValue, match="no command specified"):
        build(d(), cid=CID, rootfs="/r", image=ImageConfig({}))


def test_a_volume_without_a_directory_is_refused():
    with pytest.raises(BadValue, match=r"mounts\[0\]: volume data has no directory"):
        build(d(mounts=(Mount("volume", "/data", "data"),)), cid=CID, rootfs="/r",
              image=ImageConfig(IMAGE))


def test_build_is_pure():
    definition = d(mounts=(Mount("tmpfs", "/tmp", "tmpfs", False, ("nodev",)),))
    first = build(definition, cid=CID, rootfs="/r", image=ImageConfig(IMAGE))
    assert build(definition, cid=CID, rootfs="/r", image=ImageConfig(IMAGE)) == first
