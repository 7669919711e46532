"""Hierarchy detection and cgroups-path resolution, from fixture texts: no root, no real cgroups."""

import errno
import json

import pytest

from kago.errors import CgroupError
from kago.linux.cgroups import (HybridManager, Manager, V1Manager, V2Manager, detect, open_manager,
                                parse_mountinfo, parse_proc_cgroup, split_path)

# the fake trees' parents go to a ledger of the test's own (conftest.own_ledger)
pytestmark = pytest.mark.usefixtures("own_ledger")

# CentOS 7 style: co-mounted cpu,cpuacct and net_cls,net_prio; systemd's named tree with xattr.
PURE_V1 = """\
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
28 25 0:24 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpuacct,cpu
29 25 0:25 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
30 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_prio,net_cls
31 25 0:27 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset,clone_children
32 25 0:28 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,freezer
33 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
"""

PURE_V2 = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 22 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
"""

# This VM's own layout (Debian 12 booted with systemd's legacy hierarchy).
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

PROC_CGROUP = """\
9:name=systemd:/user.slice/session-1.scope
8:pids:/user.slice
4:memory:/process_api/140a
2:cpuacct,cpu:/
0::/user.slice/session-1.scope
"""


def _write(tmp_path, text):
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return str(path)


# --- detection --------------------------------------------------------------------------------

def test_pure_v1_is_v1(tmp_path):
    layout = detect(_write(tmp_path, PURE_V1))
    assert layout.mode == "v1"
    assert layout.unified is None
    names = [h.name for h in layout.hierarchies]
    assert names == ["name=systemd", "cpu,cpuacct", "memory", "net_cls,net_prio", "cpuset",
                     "freezer", "pids"]


def test_v1_flags_are_not_controllers():
    layout = parse_mountinfo(PURE_V1)
    assert layout.find("name=systemd").controllers == ()
    assert layout.find("cpuset").controllers == ("cpuset",)  # clone_children dropped


def test_find_by_one_controller_of_a_comount():
    layout = parse_mountinfo(PURE_V1)
    assert layout.find("cpuacct").mountpoint == "/sys/fs/cgroup/cpu,cpuacct"
    assert layout.find("rdma") is None


def test_pure_v2_is_v2():
    layout = parse_mountinfo(PURE_V2)
    assert layout.mode == "v2"
    assert layout.v1 == []
    assert layout.unified.mountpoint == "/sys/fs/cgroup"
    assert [h.name for h in layout.hierarchies] == ["unified"]


def test_hybrid_is_hybrid():
    layout = parse_mountinfo(HYBRID)
    assert layout.mode == "hybrid"
    assert layout.unified.mountpoint == "/sys/fs/cgroup/unified"
    assert len(layout.v1) == 9
    assert layout.find("name=systemd").mountpoint == "/sys/fs/cgroup/systemd"
    assert layout.hierarchies[-1] is layout.unified


def test_v2_with_only_a_named_v1_tree_is_v2():
    # A v2 host that mounted name=systemd for an old container is still v2.
    text = PURE_V2 + ("50 35 0:40 / /run/old-systemd rw - cgroup cgroup "
                      "rw,xattr,name=systemd\n")
    layout = parse_mountinfo(text)
    assert layout.mode == "v2"
    assert layout.v1 == []


def test_no_cgroup_mount_is_an_error():
    with pytest.raises(CgroupError, match="no cgroup hierarchy is mounted"):
        parse_mountinfo("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n")


def test_unreadable_mountinfo_names_the_file(tmp_path):
    with pytest.raises(CgroupError) as info:
        detect(str(tmp_path / "missing"))
    assert info.value.errno == errno.ENOENT
    assert "missing" in str(info.value)


def test_malformed_lines_are_skipped():
    layout = parse_mountinfo("garbage\n\n1 2 3\n" + HYBRID)
    assert layout.mode == "hybrid"


def test_escaped_mountpoint():
    text = r"32 31 0:29 / /mnt/my\040cgroups rw - cgroup cgroup rw,memory" + "\n"
    assert parse_mountinfo(text).find("memory").mountpoint == "/mnt/my cgroups"


def test_bind_mount_of_a_subtree_loses_to_the_whole_tree():
    text = ("90 80 0:32 /kago/c1 /var/lib/x/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
    h = parse_mountinfo(text).find("memory")
    assert (h.mountpoint, h.root) == ("/sys/fs/cgroup/memory", "/")


# --- /proc/PID/cgroup -------------------------------------------------------------------------

def test_parse_proc_cgroup():
    own = parse_proc_cgroup(PROC_CGROUP)
    assert own == {"name=systemd": "/user.slice/session-1.scope", "pids": "/user.slice",
                   "memory": "/process_api/140a", "cpu,cpuacct": "/",
                   "unified": "/user.slice/session-1.scope"}


def test_parse_proc_cgroup_deleted_suffix():
    assert parse_proc_cgroup("0::/gone (deleted)\n") == {"unified": "/gone"}


# --- path resolution --------------------------------------------------------------------------

def test_absolute_path_hangs_from_each_mount():
    dirs = parse_mountinfo(HYBRID).resolve("/kago/abc")
    assert dirs["memory"] == "/sys/fs/cgroup/memory/kago/abc"
    assert dirs["name=systemd"] == "/sys/fs/cgroup/systemd/kago/abc"
    assert dirs["unified"] == "/sys/fs/cgroup/unified/kago/abc"
    assert len(dirs) == 10


def test_relative_path_hangs_from_the_callers_cgroup():
    layout = parse_mountinfo(PURE_V1)
    extra = "7:net_prio,net_cls:/\n6:freezer:/\n5:cpuset:/\n"
    dirs = layout.resolve("kago/abc", parse_proc_cgroup(PROC_CGROUP + extra))
    assert dirs["memory"] == "/sys/fs/cgroup/memory/process_api/140a/kago/abc"
    assert dirs["cpu,cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct/kago/abc"
    assert dirs["name=systemd"] == "/sys/fs/cgroup/systemd/user.slice/session-1.scope/kago/abc"


def test_relative_path_on_v2_hangs_from_the_parent_of_the_callers_cgroup():
    """runc's fs2 defaultDirPath: the caller's own cgroup holds processes (no internal
    processes: its children could get no controller), so its parent is the base."""
    own = {"unified": "/system.slice/kago.service"}
    assert parse_mountinfo(PURE_V2).resolve("kago/abc", own) == {
        "unified": "/sys/fs/cgroup/system.slice/kago/abc"}
    assert parse_mountinfo(PURE_V2).resolve("abc", {"unified": "/"}) == {
        "unified": "/sys/fs/cgroup/abc"}  # the root has no parent: the mount's top
    text = "35 22 0:30 /outer /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"  # a cgroup namespace
    assert parse_mountinfo(text).resolve("c1", {"unified": "/outer"}) == {
        "unified": "/sys/fs/cgroup/c1"}  # never above the mount's top
    assert parse_mountinfo(text).resolve("c1", {"unified": "/outer/me/x"}) == {
        "unified": "/sys/fs/cgroup/me/c1"}


def test_relative_path_on_hybrid_hangs_from_the_callers_own_cgroups():
    own = parse_proc_cgroup("4:memory:/user.slice\n1:name=systemd:/user.slice/s.scope\n"
                            "0::/user.slice/s.scope\n")
    text = ("32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
            "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    assert parse_mountinfo(text).resolve("c1", own) == {
        "memory": "/sys/fs/cgroup/memory/user.slice/c1",
        "name=systemd": "/sys/fs/cgroup/systemd/user.slice/s.scope/c1",
        "unified": "/sys/fs/cgroup/unified/user.slice/s.scope/c1"}


def test_relative_path_through_a_mount_of_a_subtree():
    # In a cgroup namespace or a bind mount the mount shows /outer; the caller is /outer/me.
    text = "35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    dirs = parse_mountinfo(text).resolve("c1", {"memory": "/outer/me"})
    assert dirs == {"memory": "/sys/fs/cgroup/memory/me/c1"}


def test_relative_path_outside_the_mount_root_is_refused():
    text = "35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    with pytest.raises(CgroupError, match="outside the mount's root"):
        parse_mountinfo(text).resolve("c1", {"memory": "/elsewhere"})


def test_relative_path_without_a_cgroup_in_that_hierarchy():
    with pytest.raises(CgroupError, match="no cgroup in hierarchy unified"):
        parse_mountinfo(PURE_V2).resolve("c1", {"memory": "/"})


def test_redundant_slashes_and_dots_are_dropped():
    dirs = parse_mountinfo(PURE_V2).resolve("//kago/./abc/")
    assert dirs == {"unified": "/sys/fs/cgroup/kago/abc"}


@pytest.mark.parametrize("bad", ["..", "../x", "/kago/../etc", "a/../../b", "/kago/..", "x/.."])
def test_dotdot_is_refused(bad):
    with pytest.raises(CgroupError, match=r"must not contain '\.\.'") as info:
        split_path(bad)
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize("bad", ["/kago/../x", "../x"])
def test_open_manager_refuses_dotdot(bad):
    with pytest.raises(CgroupError, match=r"\.\."):
        open_manager(bad, parse_mountinfo(HYBRID))


@pytest.mark.parametrize("bad", ["", "/", "//", "/./", "."])
def test_paths_naming_no_cgroup_are_refused(bad):
    # "/" would make kill_all() signal every process on the machine.
    with pytest.raises(CgroupError, match="names no cgroup"):
        open_manager(bad, parse_mountinfo(HYBRID))


def test_dotted_names_are_fine():
    assert split_path("/kago/..hidden/a..b") == ["kago", "..hidden", "a..b"]


# --- managers and records ---------------------------------------------------------------------

@pytest.mark.parametrize("text, cls", [(PURE_V1, V1Manager), (PURE_V2, V2Manager),
                                       (HYBRID, HybridManager)])
def test_open_manager_class_follows_the_mode(text, cls):
    m = open_manager("/kago/abc", parse_mountinfo(text))
    assert type(m) is cls
    assert m.mode == parse_mountinfo(text).mode


def test_path_in_by_name_or_controller():
    m = open_manager("/kago/abc", parse_mountinfo(PURE_V1))
    assert m.path_in("cpuacct") == "/sys/fs/cgroup/cpu,cpuacct/kago/abc"
    assert m.path_in("cpu,cpuacct") == m.path_in("cpu")
    assert m.path_in("name=systemd") == "/sys/fs/cgroup/systemd/kago/abc"
    with pytest.raises(CgroupError, match="no unified hierarchy is mounted"):
        m.path_in("unified")


def test_record_round_trip_through_json():
    m = open_manager("/kago/abc", parse_mountinfo(HYBRID))
    m.created = ["/sys/fs/cgroup/memory/kago", "/sys/fs/cgroup/memory/kago/abc"]
    record = json.loads(json.dumps(m.to_record()))
    assert all(isinstance(v, (str, list)) for v in record.values())
    again = Manager.from_record(record)
    assert type(again) is HybridManager
    assert again.paths() == m.paths()
    assert again.created == m.created
    assert again.path == "/kago/abc"


@pytest.mark.parametrize("change", [
    {"mode": "v3"},
    {"dirs": ["relative/dir"]},
    {"created": ["/sys/fs/cgroup/memory/kago/../.."]},
    {"created": ["/etc"]},  # not on any cgroup path: destroy() must never rmdir it
    {"hierarchies": ["unified", "extra"]},
])
def test_bad_records_are_refused(change):
    m = open_manager("/kago/abc", parse_mountinfo(PURE_V2))
    record = m.to_record() | change
    with pytest.raises(CgroupError, match="bad cgroup record"):
        Manager.from_record(record)


def test_non_dict_record_is_refused():
    with pytest.raises(CgroupError, match="bad cgroup record"):
        Manager.from_record(["v2"])


def test_own_dirs_are_the_callers_cgroups_and_skip_what_it_has_none_in():
    """What a rootless container without a cgroup of its own sees under /sys/fs/cgroup."""
    own = parse_proc_cgroup("4:memory:/user.slice\n0::/user.slice/s.scope\n")
    text = ("32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
            "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
            "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    assert parse_mountinfo(text).own_dirs(own) == {
        "memory": "/sys/fs/cgroup/memory/user.slice",
        "unified": "/sys/fs/cgroup/unified/user.slice/s.scope"}
