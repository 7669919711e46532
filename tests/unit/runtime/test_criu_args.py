"""kago.runtime.criu: runc's checkpoint/restore flags as CRIU arguments, the external mounts of
a spec, the stdio to hand over, and the line a failed CRIU gives (table tests, no kernel)."""

import os

import pytest

from kago.errors import UsageError
from kago.oci.defaults import default_spec
from kago.plan import build
from kago.runtime import criu
from kago.runtime.criu import CriuOptions

IMG = "/var/tmp/img"


def _pairs(argv, flag):
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


@pytest.mark.parametrize("kw, present, absent", [
    ({}, ["--manage-cgroups"], ["--leave-running", "--tcp-established", "--shell-job",
                                "--ext-unix-sk", "--file-locks", "--auto-dedup", "-W"]),
    ({"leave_running": True}, ["--leave-running"], []),
    ({"tcp_established": True, "ext_unix_sk": True}, ["--tcp-established", "--ext-unix-sk"],
     ["--leave-running"]),
    ({"shell_job": True, "file_locks": True, "auto_dedup": True},
     ["--shell-job", "--file-locks", "--auto-dedup"], []),
    ({"manage_cgroups_mode": "full"}, ["--manage-cgroups=full"], ["--manage-cgroups"]),
    ({"manage_cgroups_mode": "ignore"}, ["--manage-cgroups=ignore"], []),
    ({"work_path": "/var/tmp/work"}, ["-W", "/var/tmp/work"], []),
])
def test_dump_flags(kw, present, absent):
    argv = criu.dump_argv("/c/criu", 42, CriuOptions(IMG, **kw), "/b/rootfs")
    assert argv[:4] == ["/c/criu", "dump", "-t", "42"]
    assert argv[argv.index("-D") + 1] == IMG
    assert argv[argv.index("--root") + 1] == "/b/rootfs"
    assert argv[argv.index("-o") + 1] == "dump.log" and "-v4" in argv
    for flag in present:
        assert flag in argv
    for flag in absent:
        assert flag not in argv


def test_pre_dump_leaves_running_and_freezes_the_cgroup():
    argv = criu.dump_argv("criu", 7, CriuOptions(IMG), "/r", freezer="/sys/fs/cgroup/freezer/c",
                          pre_dump=True)
    assert argv[1] == "pre-dump" and "--leave-running" in argv
    assert _pairs(argv, "--freeze-cgroup") == ["/sys/fs/cgroup/freezer/c"]


def test_empty_ns_network_is_crius_net():
    argv = criu.dump_argv("criu", 1, CriuOptions(IMG, empty_ns=["network"]), "/r")
    assert _pairs(argv, "--empty-ns") == ["net"]


@pytest.mark.parametrize("kw, message", [
    ({"manage_cgroups_mode": "hard"}, "invalid --manage-cgroups-mode 'hard'"),
    ({"empty_ns": ["ipc"]}, 'namespace "ipc" is not supported by --empty-ns'),
])
def test_bad_options_are_one_line(kw, message):
    with pytest.raises(UsageError, match=message):
        CriuOptions(IMG, **kw)


def test_dump_names_externals_by_destination_and_namespaces_by_inode():
    argv = criu.dump_argv("criu", 1, CriuOptions(IMG), "/r",
                          mounts=[("/data", "/srv/data"), ("/sys/fs/cgroup/cpu", "/sys/c/x")],
                          namespaces=[("network", 4026532174), ("pid", 4026531836)])
    assert _pairs(argv, "--external") == [
        "mnt[/data]:/data", "mnt[/sys/fs/cgroup/cpu]:/sys/fs/cgroup/cpu",
        "net[4026532174]:extRootNetNS", "pid[4026531836]:extRootPidNS"]


def test_restore_maps_externals_to_sources_and_inherits_fds():
    argv = criu.restore_argv("criu", CriuOptions(IMG, tcp_established=True), "/s/criu-root",
                             "/s/criu.pid", cgroup_root="/kago-c2",
                             mounts=[("/data", "/srv/data")],
                             inherit=[(5, "pipe:[123]"), (9, "extRootNetNS")])
    assert argv[:2] == ["criu", "restore"]
    assert argv[argv.index("-o") + 1] == "restore.log"
    for flag in ("--restore-detached", "--restore-sibling", "--tcp-established"):
        assert flag in argv
    assert _pairs(argv, "--root") == ["/s/criu-root"]
    assert _pairs(argv, "--pidfile") == ["/s/criu.pid"]
    assert _pairs(argv, "--cgroup-root") == ["/kago-c2"]
    assert _pairs(argv, "--external") == ["mnt[/data]:/srv/data"]
    assert _pairs(argv, "--inherit-fd") == ["fd[5]:pipe:[123]", "fd[9]:extRootNetNS"]


def _plan(mounts=(), userns=False, cgroup=True):
    spec = default_spec()
    spec["mounts"] = [m for m in spec["mounts"]
                      if cgroup or m["type"] != "cgroup"] + list(mounts)
    if userns:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return build.build(spec, "/b", "c1")


HYBRID = {"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/kago-c1",
          "name=systemd": "/sys/fs/cgroup/systemd/kago-c1",
          "unified": "/sys/fs/cgroup/unified/kago-c1"}
V2 = {"unified": "/sys/fs/cgroup/kago-c1"}
BIND = {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]}
RELATIVE = {"destination": "/etc/app/", "type": "none", "source": "conf", "options": ["bind"]}


@pytest.mark.parametrize("mounts, cgroups, userns, want", [
    # the default spec: only the cgroup hierarchies are bound in from outside
    ((), HYBRID, False, [("/sys/fs/cgroup/cpu,cpuacct", HYBRID["cpu,cpuacct"]),
                         ("/sys/fs/cgroup/systemd", HYBRID["name=systemd"]),
                         ("/sys/fs/cgroup/unified", HYBRID["unified"])]),
    ((), V2, False, [("/sys/fs/cgroup", V2["unified"])]),
    ((), {}, False, []),
    # bind mounts by destination (a relative source is the bundle's), trailing / dropped
    ((BIND, RELATIVE), V2, False, [("/data", "/srv/data"), ("/etc/app", "/b/conf"),
                                   ("/sys/fs/cgroup", V2["unified"])]),
])
def test_external_mounts_of_a_spec(mounts, cgroups, userns, want):
    assert criu.plan_externals(_plan(mounts, userns), cgroups) == sorted(want)


def test_devices_are_external_only_when_bound_from_the_host():
    """A user namespace cannot mknod: kago binds the host's nodes, which CRIU must know."""
    plain = criu.plan_externals(_plan(cgroup=False), {})
    assert plain == []
    bound = dict(criu.plan_externals(_plan(userns=True, cgroup=False), {}))
    for dev in ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random",
                "/dev/urandom"):
        assert bound[dev] == dev


def test_a_later_mount_over_the_same_destination_wins():
    ops = _plan([BIND, dict(BIND, source="/srv/other")], cgroup=False).mounts
    assert criu.external_mounts(ops) == [("/data", "/srv/other")]


@pytest.mark.parametrize("descriptors, want", [
    (["pipe:[1]", "pipe:[2]", "pipe:[2]"], [(0, "pipe:[1]"), (1, "pipe:[2]"), (2, "pipe:[2]")]),
    (["/dev/null", "pipe:[7]", "socket:[9]"], [(1, "pipe:[7]")]),
    (["/dev/pts/0"] * 3, []),
    ([], []),
])
def test_stdio_pipes_are_handed_over(descriptors, want):
    assert criu.stdio_inherit(descriptors) == want


@pytest.mark.parametrize("log, want", [
    ("(00.01) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: x\n"
     "(00.14) Error (criu/files-reg.c:1790): Can't lookup mount=24 for fd=0 path=/dev/null\n"
     "(00.14) Error (criu/cr-dump.c:1698): Dump files (pid: 4289) failed with -1\n"
     "(00.15) Error (criu/cr-dump.c:2128): Dumping FAILED.\n",
     "Can't lookup mount=24 for fd=0 path=/dev/null"),
    ("(00.2) Error (criu/cr-restore.c:1): Restoring FAILED.\n", "Restoring FAILED."),
    ("(00.05) Error (criu/mount.c:3141): mnt: No mapping for 54:(null) mountpoint\n"
     "(00.06) Error (criu/cgroup.c:1998): cg: cgroupd: recv req error: No such file\n",
     "mnt: No mapping for 54:(null) mountpoint"),
    ("(00.1) Info: all good\n", None),
])
def test_last_error_skips_the_closing_summaries(tmp_path, log, want):
    path = tmp_path / "dump.log"
    path.write_text(log)
    assert criu.last_error(str(path)) == want


def test_failure_is_one_line_with_the_log(tmp_path):
    path = tmp_path / "restore.log"
    path.write_text("(0.1) Error (criu/sk-inet.c:1): inet: Can't bind inet socket (id 7): "
                    "Address already in use\n")
    line = criu.failure("restore", str(path))
    assert line == ("criu restore failed: inet: Can't bind inet socket (id 7): Address already "
                    f"in use (log: {path})")
    assert "\n" not in line
    missing = criu.failure("dump", str(tmp_path / "none.log"), "criu: unknown option\n")
    assert missing == f"criu dump failed: criu: unknown option (log: {tmp_path}/none.log)"


def test_find(tmp_path):
    exe = tmp_path / "criu"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert criu.find(str(exe)) == str(exe)
    assert criu.find(path=str(tmp_path)) == str(exe)
    with pytest.raises(UsageError, match="criu not found on PATH"):
        criu.find(path=str(tmp_path / "nothing"))
    with pytest.raises(UsageError, match="criu not found: /no/criu"):
        criu.find("/no/criu")
    assert criu.find("criu", path=str(tmp_path)) == str(exe)


def test_log_dir_is_the_work_path_when_given():
    assert CriuOptions("img").log_dir() == os.path.abspath("img")
    assert CriuOptions("img", work_path="/w").log_dir() == "/w"


def test_restore_maps_runcs_masked_path_key_to_dev_null():
    """runc dumps masked files as the external "/dev/null": a restore passes it when the spec
    masks paths (kago's own images do not use it; CRIU ignores it then)."""
    masked = criu.restore_externals(_plan(), V2)
    assert ("/dev/null", "/dev/null") in masked
    assert criu.plan_externals(_plan(), V2) == [("/sys/fs/cgroup", V2["unified"])]
    plan = _plan()
    plan.masked_paths = []
    assert criu.restore_externals(plan, V2) == [("/sys/fs/cgroup", V2["unified"])]


FILE_BIND = {"destination": "/run/.containerenv", "type": "bind", "source": "/srv/env",
             "options": ["bind"]}


def test_restore_mountpoints_skip_what_a_tmpfs_holds():
    ops = criu.expanded_mounts(_plan([BIND, FILE_BIND]), HYBRID)
    points = criu.mountpoints(ops, source_is_dir=lambda source: source != "/srv/env")
    assert ("/data", True) in points and ("/run/.containerenv", False) in points
    assert ("/proc", True) in points and ("/sys", True) in points
    assert ("/dev", True) in points and ("/sys/fs/cgroup", True) in points
    # under the /dev and /sys/fs/cgroup tmpfs: CRIU restores those whole
    assert not [d for d, _ in points if d.startswith(("/dev/", "/sys/fs/cgroup/"))]
    assert len(points) == len(set(points))
