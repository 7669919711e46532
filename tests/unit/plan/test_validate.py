"""kago.plan.validate: meaning-level checks, each naming the field at fault."""

import copy

import pytest
from hypothesis import given, settings, strategies as st

from kago.errors import SpecError
from kago.oci.defaults import default_spec
from kago.plan.validate import (
    FULL_RANGE, check_mappings, check_process, merge_ranges, range_within, ranges_overlap,
    validate,
)


def base(*namespaces):
    return {
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/"},
        "linux": {"namespaces": [{"type": t} for t in namespaces]},
    }


def error_of(cfg, **kwargs):
    with pytest.raises(SpecError) as info:
        validate(cfg, **kwargs)
    return info.value


def assert_error(cfg, field, fragment, **kwargs):
    err = error_of(cfg, **kwargs)
    assert err.field == field, str(err)
    assert fragment in err.message, str(err)


def mapping(container, host, size):
    return {"containerID": container, "hostID": host, "size": size}


def userns(uid_maps, gid_maps=None):
    cfg = base("user", "mount")
    cfg["linux"]["uidMappings"] = uid_maps
    cfg["linux"]["gidMappings"] = gid_maps if gid_maps is not None else copy.deepcopy(uid_maps)
    return cfg


def parse_subid(text, user):
    """/etc/subuid lines "name:start:count" -> (start, size) ranges for ``user``."""
    ranges = []
    for line in text.splitlines():
        name, start, count = line.split(":")
        if name == user:
            ranges.append((int(start), int(count)))
    return ranges


# ---------------------------------------------------------------- whole documents

def test_default_spec_is_valid_without_warnings():
    assert validate(default_spec()) == []


def test_rootless_default_is_valid_with_subuid_ranges():
    import os
    subuid = "alice:100000:65536\nbob:165536:65536\n"
    own_uid, own_gid = os.geteuid(), os.getegid()
    uids = [(own_uid, 1)] + parse_subid(subuid, "alice")
    gids = [(own_gid, 1)] + parse_subid(subuid, "alice")
    cfg = default_spec(rootless=True)
    assert validate(cfg, host_uid_ranges=uids, host_gid_ranges=gids) == []
    # and the subordinate range itself can be used for the rest of the container's IDs
    cfg["linux"]["uidMappings"].append(mapping(1, 100000, 65536))
    cfg["linux"]["gidMappings"].append(mapping(1, 100000, 65536))
    assert validate(cfg, host_uid_ranges=uids, host_gid_ranges=gids) == []
    cfg["linux"]["uidMappings"][1]["hostID"] = 165536  # bob's range
    assert_error(cfg, "linux.uidMappings[1].hostID", "is not within the IDs that may be mapped",
                 host_uid_ranges=uids, host_gid_ranges=gids)


def test_structure_is_checked_first():
    assert_error({"ociVersion": "1.0.0"}, "root", "is required")


@pytest.mark.parametrize("path", ["system.slice:docker:abc", "machine.slice:libpod:x",
                                  ":kago:abc", "user.slice:podman:1"])
def test_systemd_cgroups_path_is_refused_saying_the_driver_is_not_there(path):
    """runc's and crun's systemd driver form: kago-oci has the cgroupfs driver only, and says
    so before anything is made (the path would otherwise be one odd directory)."""
    cfg = base()
    cfg["linux"]["cgroupsPath"] = path
    err = error_of(cfg)
    assert str(err) == (f'linux.cgroupsPath: "{path}" is the systemd cgroup driver\'s '
                        "slice:prefix:name form; kago-oci has only the cgroupfs driver: give a "
                        "path such as /machine.slice/NAME")


@pytest.mark.parametrize("path", ["/kago/abc", "kago/abc", "/a:b:c", "a:b", "abc", ""])
def test_cgroupfs_paths_are_accepted(path):
    cfg = base()
    cfg["linux"]["cgroupsPath"] = path
    assert validate(cfg) == []


@pytest.mark.parametrize("path, fragment", [("/a/../b", "must not contain '..'"),
                                            ("..", "must not contain '..'"),
                                            ("/", "names no cgroup"), ("/./", "names no cgroup")])
def test_cgroups_path_naming_no_cgroup_or_climbing_is_refused(path, fragment):
    cfg = base()
    cfg["linux"]["cgroupsPath"] = path
    assert_error(cfg, "linux.cgroupsPath", fragment)


def test_kernel_memory_is_accepted_with_runcs_warning():
    cfg = base()
    cfg["linux"]["resources"] = {"memory": {"limit": 1 << 26, "kernel": 1 << 25}}
    warning = ("linux.resources.memory: kernel memory settings are ignored and will be "
               "removed")
    assert validate(cfg) == [warning]
    cfg["linux"]["resources"]["memory"] = {"kernel": 0}  # present: runc warns at create
    assert validate(cfg) == [warning]
    cfg["linux"]["resources"]["memory"] = {"kernelTCP": 1 << 20}  # written on v1, as crun
    assert validate(cfg) == []
    cfg["linux"]["resources"]["memory"] = {"limit": 1 << 26}
    assert validate(cfg) == []


def test_without_a_mount_namespace_what_would_change_the_hosts_mounts_is_warned_about():
    cfg = base("pid")  # no mount namespace: runs, as with runc and crun
    assert validate(cfg) == []
    cfg["root"]["readonly"] = True
    cfg["linux"]["rootfsPropagation"] = "rshared"
    assert validate(cfg) == [
        "root.readonly: ignored without a private mount namespace (the rootfs is a mount "
        "of the host's)",
        "linux.rootfsPropagation: ignored without a private mount namespace (it would "
        "change the host's mounts)"]
    assert validate(base("mount") | {"root": {"path": "r", "readonly": True}}) == []
    cfg["linux"]["maskedPaths"] = ["/proc/kcore"]
    assert_error(cfg, "linux.maskedPaths", "without a private MNT namespace")


def test_config_without_process_is_valid():
    cfg = base()
    del cfg["process"]
    assert validate(cfg) == []


# ---------------------------------------------------------------- capabilities

def test_unknown_capability_is_a_warning_naming_it():
    """As runc: skipped with one warning for all the names, whatever the set (was: refused)."""
    cfg = base()
    cfg["process"]["capabilities"] = {"bounding": ["CAP_KILL", "CAP_CHOWN", "CAP_FOO"],
                                      "ambient": ["CAP_FOO", "cap_kill", "KILL", ""]}
    assert validate(cfg) == ['process.capabilities: ignoring unknown or unavailable '
                             'capabilities: [ CAP_FOO KILL cap_kill]']


def test_capability_beyond_cap_last_cap_is_a_warning():
    cfg = base()
    cfg["process"]["capabilities"] = {"effective": ["CAP_KILL", "CAP_BPF"],
                                      "permitted": ["CAP_CHECKPOINT_RESTORE"]}
    assert validate(cfg, cap_last_cap=38) == [
        "process.capabilities: ignoring unknown or unavailable capabilities: "
        "[CAP_BPF CAP_CHECKPOINT_RESTORE]"]
    assert validate(cfg, cap_last_cap=40) == []


def test_unknown_capabilities_are_left_out_of_the_plan():
    from kago.plan.build import process
    p = process({"args": ["sh"], "capabilities": {
        k: ["CAP_KILL", "CAP_UNKNOWN"] for k in
        ("bounding", "effective", "permitted", "inheritable", "ambient")}})
    assert p.bounding == p.effective == p.permitted == p.inheritable == p.ambient == 1 << 5


def test_unknown_capability_set_is_ignored():
    cfg = base()
    cfg["process"]["capabilities"] = {"future": ["whatever", 3]}
    assert validate(cfg) == []


# ---------------------------------------------------------------- rlimits

def rl(type_, soft=1, hard=1):
    return {"type": type_, "soft": soft, "hard": hard}


def test_unknown_rlimit():
    cfg = base()
    cfg["process"]["rlimits"] = [rl("RLIMIT_NOFILE"), rl("RLIMIT_FOO")]
    err = error_of(cfg)
    assert (err.field, err.message) == ("process.rlimits[1].type",
                                        'unknown rlimit type "RLIMIT_FOO"')


def test_duplicate_rlimit():
    cfg = base()
    cfg["process"]["rlimits"] = [rl("RLIMIT_NOFILE"), rl("RLIMIT_CORE"), rl("RLIMIT_NOFILE")]
    assert_error(cfg, "process.rlimits[2].type", 'duplicate rlimit "RLIMIT_NOFILE"')


def test_soft_above_hard():
    cfg = base()
    cfg["process"]["rlimits"] = [rl("RLIMIT_NOFILE", soft=2048, hard=1024)]
    assert_error(cfg, "process.rlimits[0]", "soft limit 2048 is above hard limit 1024")


def test_soft_equal_hard_and_infinity_are_fine():
    cfg = base()
    cfg["process"]["rlimits"] = [rl("RLIMIT_CORE", 0, 2**64 - 1), rl("RLIMIT_NOFILE", 5, 5)]
    assert validate(cfg) == []


def test_check_process_for_exec():
    p = {"args": ["sh"], "cwd": "/", "capabilities": {"bounding": ["CAP_BPF"]},
         "rlimits": [rl("RLIMIT_NPROC")]}
    assert check_process(p, cap_last_cap=40) == []
    assert len(check_process(p, cap_last_cap=30)) == 1
    p["rlimits"].append(rl("RLIMIT_NPROC"))
    with pytest.raises(SpecError) as info:
        check_process(p, "exec")
    assert info.value.field == "exec.rlimits[1].type"


# ---------------------------------------------------------------- namespaces

def test_unknown_namespace_type():
    cfg = base("pid")
    cfg["linux"]["namespaces"].append({"type": "bogus"})
    assert_error(cfg, "linux.namespaces[1].type", '"bogus"')


def test_hostname_without_uts_namespace():
    cfg = base("mount")
    cfg["hostname"] = "box"
    err = error_of(cfg)
    assert (err.field, err.message) == ("hostname",
                                        "unable to set hostname without a private UTS namespace")
    cfg["linux"]["namespaces"].append({"type": "uts"})
    assert validate(cfg) == []


def test_domainname_without_uts_namespace():
    cfg = base("mount")
    cfg["domainname"] = "example.org"
    assert_error(cfg, "domainname", "without a private UTS namespace")


def test_empty_hostname_needs_no_uts():
    cfg = base()
    cfg["hostname"] = ""
    assert validate(cfg) == []


def test_masked_paths_need_mount_namespace():
    cfg = base("pid")
    cfg["linux"]["maskedPaths"] = ["/proc/kcore"]
    assert_error(cfg, "linux.maskedPaths", "without a private MNT namespace")
    cfg = base("pid")
    cfg["linux"]["readonlyPaths"] = ["/proc/sys"]
    assert_error(cfg, "linux.readonlyPaths", "without a private MNT namespace")


def test_time_offsets_need_a_new_time_namespace():
    cfg = base("mount")
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 10}}
    assert_error(cfg, "linux.timeOffsets", "no time namespace")
    cfg["linux"]["namespaces"].append({"type": "time", "path": "/proc/1/ns/time"})
    assert_error(cfg, "linux.timeOffsets", "joined time namespace")
    del cfg["linux"]["namespaces"][-1]["path"]
    assert validate(cfg) == []


# ---------------------------------------------------------------- user namespace

def test_mappings_without_user_namespace():
    cfg = base("mount")
    cfg["linux"]["uidMappings"] = [mapping(0, 1000, 1)]
    err = error_of(cfg)
    assert (err.field, err.message) == ("linux.uidMappings",
                                        "user namespace mappings given but no user namespace")
    cfg = base("mount")
    cfg["linux"]["gidMappings"] = [mapping(0, 1000, 1)]
    assert_error(cfg, "linux.gidMappings", "but no user namespace")


def test_empty_mappings_without_user_namespace_are_fine():
    cfg = base("mount")
    cfg["linux"]["uidMappings"] = []
    assert validate(cfg) == []


def test_user_namespace_without_mappings_or_path():
    err = error_of(base("user"))
    assert err.field == "linux.uidMappings"
    assert "needs uid mappings" in err.message
    cfg = base("user")
    cfg["linux"]["uidMappings"] = [mapping(0, 1000, 1)]
    assert_error(cfg, "linux.gidMappings", "needs gid mappings")


def test_user_namespace_joined_by_path_needs_no_mappings():
    cfg = base()
    cfg["linux"]["namespaces"] = [{"type": "user", "path": "/proc/1/ns/user"}]
    assert validate(cfg) == []


def test_container_ranges_overlap():
    cfg = userns([mapping(0, 100000, 1000), mapping(500, 200000, 10)])
    err = error_of(cfg)
    assert err.field == "linux.uidMappings[1]"
    assert err.message == "container range 500-509 overlaps linux.uidMappings[0]"


def test_host_ranges_overlap():
    cfg = userns([mapping(0, 100000, 1000), mapping(1000, 100999, 10)])
    assert_error(cfg, "linux.uidMappings[1]", "host range 100999-101008 overlaps "
                                              "linux.uidMappings[0]")


def test_overlap_reported_on_the_later_entry_whatever_the_sort_order():
    cfg = userns([mapping(500, 200000, 10), mapping(0, 100000, 1000)])
    assert_error(cfg, "linux.uidMappings[1]", "overlaps linux.uidMappings[0]")


def test_gid_mappings_checked_too():
    cfg = userns([mapping(0, 100000, 10)], [mapping(0, 100000, 10), mapping(5, 300000, 1)])
    assert_error(cfg, "linux.gidMappings[1]", "container range 5-5 overlaps")


def test_adjacent_ranges_do_not_overlap():
    cfg = userns([mapping(0, 1000, 1), mapping(1, 100000, 65536)])
    assert validate(cfg) == []


def test_host_range_outside_available():
    cfg = userns([mapping(0, 1000, 1), mapping(1, 100000, 65537)])
    avail = [(1000, 1), (100000, 65536)]
    err = error_of(cfg, host_uid_ranges=avail, host_gid_ranges=avail)
    assert err.field == "linux.uidMappings[1].hostID"
    assert err.message == ("host range 100000-165536 is not within the IDs that may be mapped "
                           "(1000-1000, 100000-165535)")


def test_gid_available_ranges_are_separate():
    cfg = userns([mapping(0, 1000, 1)])
    assert_error(cfg, "linux.gidMappings[0].hostID", "is not within",
                 host_uid_ranges=[(1000, 1)], host_gid_ranges=[(2000, 1)])


def test_id_4294967295_is_never_mappable():
    cfg = userns([mapping(0, 4294967295 - 10, 11)])
    err = error_of(cfg)
    assert err.field == "linux.uidMappings[0].size"
    assert "hostID 4294967285 + size 11 reaches 4294967295" in err.message
    cfg = userns([mapping(4294967290, 0, 6)])
    assert_error(cfg, "linux.uidMappings[0].size", "containerID 4294967290 + size 6 reaches")
    assert validate(userns([mapping(4294967290, 0, 5)])) == []  # ends at 4294967294
    assert validate(userns([mapping(0, 0, 4294967295)])) == []


def test_too_many_extents():
    maps = [mapping(i, 100000 + i, 1) for i in range(341)]
    assert_error(userns(maps), "linux.uidMappings", "at most 340 mappings are allowed, got 341")
    assert validate(userns(maps[:340])) == []


# ---------------------------------------------------------------- mapping arithmetic

def test_ranges_overlap():
    assert ranges_overlap((0, 10), (9, 1))
    assert ranges_overlap((5, 1), (0, 10))
    assert not ranges_overlap((0, 10), (10, 5))
    assert not ranges_overlap((10, 5), (0, 10))
    assert not ranges_overlap((0, 0), (0, 10))  # an empty range holds no ID


def test_merge_ranges_joins_touching_and_overlapping():
    assert merge_ranges([(100, 10), (0, 5), (5, 5), (105, 20), (200, 0)]) == [(0, 10), (100, 25)]


def test_range_within_union_of_abutting_ranges():
    avail = [(100000, 65536), (165536, 65536)]
    assert range_within((150000, 30000), avail)
    assert not range_within((99999, 2), avail)
    assert not range_within((0, 1), [])
    assert range_within((0, 4294967295), FULL_RANGE)
    assert not range_within((4294967295, 1), FULL_RANGE)


def test_check_mappings_standalone():
    check_mappings([mapping(0, 1000, 1)], "x", [(1000, 1)])
    with pytest.raises(SpecError) as info:
        check_mappings([mapping(0, 1000, 2)], "x", [(1000, 1)])
    assert info.value.field == "x[0].hostID"
    check_mappings([], "x", [])


# ---------------------------------------------------------------- sysctl

def sysctl_cfg(name, *namespaces):
    cfg = base(*namespaces)
    cfg["linux"]["sysctl"] = {name: "1"}
    return cfg


def test_sysctl_not_namespaced():
    err = error_of(sysctl_cfg("vm.swappiness", "mount", "network", "ipc", "uts"))
    assert err.field == 'linux.sysctl["vm.swappiness"]'
    assert err.message == "sysctl is not namespaced and cannot be set in a container"


def test_net_sysctl_needs_network_namespace():
    assert_error(sysctl_cfg("net.ipv4.ip_forward", "mount"), 'linux.sysctl["net.ipv4.ip_forward"]',
                 "needs a private network namespace")
    assert validate(sysctl_cfg("net.ipv4.ip_forward", "network")) == []
    assert validate(sysctl_cfg("net/ipv4/ip_forward", "network")) == []


@pytest.mark.parametrize("name", ["kernel.shmmax", "kernel.msgmax", "kernel.sem",
                                  "fs.mqueue.msg_max", "kernel.shm_rmid_forced"])
def test_ipc_sysctls_need_ipc_namespace(name):
    assert_error(sysctl_cfg(name, "network"), f'linux.sysctl["{name}"]',
                 "needs a private ipc namespace")
    assert validate(sysctl_cfg(name, "ipc")) == []


def test_kernel_hostname_sysctl_points_at_hostname_field():
    err = error_of(sysctl_cfg("kernel.hostname", "uts"))
    assert err.field == 'linux.sysctl["kernel.hostname"]'
    assert '"hostname" field' in err.message


def test_kernel_domainname_needs_uts():
    assert_error(sysctl_cfg("kernel.domainname", "ipc"), 'linux.sysctl["kernel.domainname"]',
                 "needs a private uts namespace")
    assert validate(sysctl_cfg("kernel.domainname", "uts")) == []


# ---------------------------------------------------------------- per-mount ID maps

def test_mount_mappings_arithmetic():
    cfg = base("mount")
    cfg["mounts"] = [{"destination": "/d", "options": ["bind", "idmap"],
                      "uidMappings": [mapping(0, 1000, 10), mapping(5, 5000, 1)],
                      "gidMappings": [mapping(0, 1000, 10)]}]
    assert_error(cfg, "mounts[0].uidMappings[1]", "container range 5-5 overlaps")


def test_idmap_needs_something_to_map_with():
    cfg = base("mount")
    cfg["mounts"] = [{"destination": "/d", "source": "/srv", "options": ["rbind", "ridmap"]}]
    assert_error(cfg, "mounts[0].options", "idmap needs uidMappings and gidMappings")
    cfg["mounts"][0]["uidMappings"] = [mapping(0, 1000, 1)]
    cfg["mounts"][0]["gidMappings"] = [mapping(0, 1000, 1)]
    assert validate(cfg) == []
    user = userns([mapping(0, 1000, 1)])
    user["mounts"] = [{"destination": "/d", "source": "/srv", "options": ["bind", "idmap"]}]
    assert validate(user) == []


def test_idmap_only_on_bind_mounts_and_with_both_maps():
    cfg = userns([mapping(0, 1000, 1)])
    cfg["mounts"] = [{"destination": "/d", "type": "tmpfs", "source": "tmpfs",
                      "options": ["idmap"]}]
    assert_error(cfg, "mounts[0].options", "only supported for bind mounts")
    # maps on the mount make it idmapped even without the option (runc 1.2)
    cfg["mounts"] = [{"destination": "/d", "type": "tmpfs", "source": "tmpfs",
                      "uidMappings": [mapping(0, 1000, 1)], "gidMappings": [mapping(0, 1000, 1)]}]
    assert_error(cfg, "mounts[0].options", "only supported for bind mounts")
    cfg["mounts"] = [{"destination": "/d", "source": "/srv", "options": ["bind"],
                      "uidMappings": [mapping(0, 1000, 1)]}]
    assert_error(cfg, "mounts[0].gidMappings", "needs both uid and gid mappings")


# ---------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=15,
)
small_ids = st.integers(min_value=0, max_value=2**32 - 1) | st.integers(0, 20)
mappings = st.lists(st.fixed_dictionaries({"containerID": small_ids, "hostID": small_ids,
                                           "size": st.integers(1, 2**32 - 1) | st.integers(1, 8)}),
                    max_size=6)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_validate_raises_only_spec_error(value):
    try:
        validate(value)
    except SpecError:
        pass


@settings(max_examples=300, deadline=None)
@given(mappings, st.lists(st.tuples(small_ids, small_ids), max_size=3))
def test_fuzz_mappings_arithmetic_agrees_with_brute_force(maps, available):
    """check_mappings accepts exactly the maps a pairwise check would accept."""
    ok = len(maps) <= 340
    ok = ok and all(m[k] + m["size"] <= 2**32 - 1 for m in maps for k in ("containerID", "hostID"))
    for key in ("containerID", "hostID"):
        rs = [(m[key], m["size"]) for m in maps]
        ok = ok and not any(ranges_overlap(rs[i], rs[j])
                            for i in range(len(rs)) for j in range(i + 1, len(rs)))
    ok = ok and all(range_within((m["hostID"], m["size"]), available) for m in maps)
    try:
        check_mappings(maps, "m", available)
        assert ok
    except SpecError:
        assert not ok


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["pid", "network", "mount", "ipc", "uts", "user",
                                        "cgroup", "time"]), st.booleans()),
       st.dictionaries(st.text(max_size=20) | st.sampled_from(["net.x", "kernel.shmmax"]),
                       st.text(max_size=3), max_size=3),
       mappings, st.text(max_size=4))
def test_fuzz_namespace_combinations_raise_only_spec_error(nss, sysctl, maps, hostname):
    cfg = base()
    cfg["linux"]["namespaces"] = [dict({"type": t}, **({"path": "/x"} if p else {}))
                                  for t, p in nss.items()]
    cfg["linux"]["sysctl"] = sysctl
    cfg["linux"]["uidMappings"] = maps
    cfg["hostname"] = hostname
    try:
        assert isinstance(validate(cfg), list)
    except SpecError as err:
        assert err.field


# ---------------------------------------------------------------- not yet supported

def test_seccomp_section_is_validated_and_accepted():
    """linux.seccomp is applied: a good section passes, a bad one names its
    field (the full matrix is in tests/unit/seccomp/test_validate_seccomp.py)."""
    from kago.oci.defaults import default_spec
    cfg = default_spec()
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW"}
    assert validate(cfg) == []
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]}
    with pytest.raises(SpecError) as e:
        validate(cfg)
    assert e.value.field == "linux.seccomp.syscalls[0].action"
    assert str(e.value) == 'linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_FOO"'


def test_lsm_label_warns_without_the_lsm_and_is_accepted_with_it():
    from kago.oci.defaults import default_spec
    cfg = default_spec()
    cfg["process"]["apparmorProfile"] = "docker-default"
    warnings = validate(cfg, lsms=())
    assert any("process.apparmorProfile: apparmor is not enabled" in w for w in warnings)
    assert not any("apparmor" in w for w in validate(cfg, lsms=("apparmor",)))
