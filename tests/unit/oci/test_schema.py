"""kago.oci.schema: every structural check names the exact field and says what is wrong."""

import copy

import pytest
from hypothesis import given, settings, strategies as st

from kago.errors import SpecError
from kago.oci.defaults import default_spec
from kago.oci.schema import quote, validate_config, validate_process


def minimal():
    return {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/"},
    }


def with_(path, value, base=None):
    """A copy of ``base`` (minimal()) with the dotted ``path`` set to ``value``."""
    cfg = copy.deepcopy(base if base is not None else minimal())
    node = cfg
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return cfg


def error_of(cfg, check=validate_config):
    with pytest.raises(SpecError) as info:
        check(cfg)
    return info.value


def assert_error(cfg, field, fragment):
    err = error_of(cfg)
    assert err.field == field, str(err)
    assert fragment in err.message, str(err)


# ---------------------------------------------------------------- happy paths

def test_minimal_config_is_valid():
    validate_config(minimal())


def test_default_specs_are_valid():
    validate_config(default_spec())
    validate_config(default_spec(rootless=True))


def test_unknown_keys_are_allowed_everywhere():
    cfg = minimal()
    cfg["vendorThing"] = {"x": [1]}
    cfg["process"]["futureField"] = 3
    cfg["linux"] = {"somethingNew": True, "namespaces": [{"type": "pid", "extra": 1}]}
    validate_config(cfg)


def test_process_is_optional_in_config():
    cfg = minimal()
    del cfg["process"]
    validate_config(cfg)


def test_full_featured_config_is_valid():
    cfg = default_spec()
    cfg["process"].update({
        "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 0o22, "additionalGids": [5, 10]},
        "oomScoreAdj": -1000, "apparmorProfile": "p", "selinuxLabel": "l",
        "scheduler": {"policy": "SCHED_OTHER"}, "ioPriority": {"class": "IOPRIO_CLASS_BE"},
    })
    cfg["domainname"] = "example.org"
    cfg["hooks"] = {kind: [{"path": "/bin/true", "args": ["true"], "env": ["A=b"], "timeout": 5}]
                    for kind in ("prestart", "createRuntime", "createContainer",
                                 "startContainer", "poststart", "poststop")}
    cfg["annotations"] = {"org.example/key": "value"}
    cfg["linux"].update({
        "devices": [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                     "fileMode": 0o666, "uid": 0, "gid": 0},
                    {"type": "p", "path": "/dev/fifo"}],
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "rootfsPropagation": "rslave", "cgroupsPath": "/kago/x", "seccomp": {},
        "timeOffsets": {"monotonic": {"secs": -5, "nanosecs": 0}, "boottime": {"secs": 1}},
        "mountLabel": "system_u:object_r:container_file_t:s0",
    })
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv",
                          "options": ["rbind", "idmap"],
                          "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    validate_config(cfg)


# ---------------------------------------------------------------- top level

@pytest.mark.parametrize("cfg", [[], "x", None, 3])
def test_top_level_must_be_an_object(cfg):
    err = error_of(cfg)
    assert err.field == ""
    assert "must be a JSON object" in err.message


def test_oci_version_required():
    cfg = minimal()
    del cfg["ociVersion"]
    assert_error(cfg, "ociVersion", "is required")


def test_oci_version_must_be_string():
    assert_error(with_("ociVersion", 1), "ociVersion", "must be a string")


@pytest.mark.parametrize("version", ["2.0.0", "0.9", "", "v1.0.0"])
def test_oci_version_major_must_be_1(version):
    err = error_of(with_("ociVersion", version))
    assert err.field == "ociVersion"
    assert err.message == f"unsupported ociVersion {quote(version)}: kago supports 1.x"


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.2.0", "1.3.0-rc.1"])
def test_oci_versions_1x_accepted(version):
    validate_config(with_("ociVersion", version))


def test_root_required():
    cfg = minimal()
    del cfg["root"]
    assert_error(cfg, "root", "is required")


def test_root_path_required():
    assert_error(with_("root", {"readonly": True}), "root.path", "is required")


def test_root_path_must_be_string():
    assert_error(with_("root.path", ["rootfs"]), "root.path", "must be a string")


def test_root_readonly_must_be_boolean():
    assert_error(with_("root.readonly", "yes"), "root.readonly", "must be a boolean")


def test_hostname_and_domainname_strings():
    assert_error(with_("hostname", 5), "hostname", "must be a string")
    assert_error(with_("domainname", None), "domainname", "must be a string")


# ---------------------------------------------------------------- process

def test_process_must_be_object():
    assert_error(with_("process", ["sh"]), "process", "must be an object")


@pytest.mark.parametrize("args", [None, [], "sh", {"0": "sh"}])
def test_args_must_be_non_empty_array(args):
    assert_error(with_("process.args", args), "process.args",
                 "must be a non-empty array of strings")


def test_args_missing():
    cfg = minimal()
    del cfg["process"]["args"]
    assert_error(cfg, "process.args", "is required")


def test_args_element_must_be_string():
    assert_error(with_("process.args", ["sh", 1]), "process.args[1]", "must be a string")


def test_cwd_required_and_absolute():
    cfg = minimal()
    del cfg["process"]["cwd"]
    assert_error(cfg, "process.cwd", "is required")
    assert_error(with_("process.cwd", "tmp"), "process.cwd",
                 'must be an absolute path, got "tmp"')
    assert_error(with_("process.cwd", 0), "process.cwd", "must be a string")


def test_env_must_be_key_value():
    assert_error(with_("process.env", "A=b"), "process.env", "must be an array")
    assert_error(with_("process.env", ["A=b", 7]), "process.env[1]", "must be a string")
    assert_error(with_("process.env", ["A=b", "NOVALUE"]), "process.env[1]",
                 'must be "KEY=VALUE", got "NOVALUE"')
    assert_error(with_("process.env", ["=x"]), "process.env[0]", "name cannot be empty")
    assert_error(with_("process.env", ["A=x\x00y"]), "process.env[0]", "must not contain a NUL")


def test_env_allows_empty_value_and_equals_in_value():
    validate_config(with_("process.env", ["A=", "B=c=d"]))


@pytest.mark.parametrize("key", ["uid", "gid", "umask"])
def test_user_ids_are_uint32(key):
    field = f"process.user.{key}"
    assert_error(with_(field, -1), field, "must be between 0 and 4294967295, got -1")
    assert_error(with_(field, 2**32), field, "got 4294967296")
    assert_error(with_(field, "0"), field, "must be an integer")
    assert_error(with_(field, 1.0), field, "must be an integer")
    validate_config(with_(field, 2**32 - 1))


def test_bool_is_not_an_integer():
    assert_error(with_("process.user.uid", True), "process.user.uid", "must be an integer")


def test_user_must_be_object():
    assert_error(with_("process.user", 0), "process.user", "must be an object")


def test_additional_gids():
    assert_error(with_("process.user.additionalGids", 5), "process.user.additionalGids",
                 "must be an array")
    assert_error(with_("process.user.additionalGids", [5, -2]),
                 "process.user.additionalGids[1]", "got -2")


def test_capabilities_sets_are_string_arrays():
    assert_error(with_("process.capabilities", []), "process.capabilities", "must be an object")
    for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        field = f"process.capabilities.{name}"
        assert_error(with_(field, "CAP_KILL"), field, "must be an array")
        assert_error(with_(field, ["CAP_KILL", 3]), f"{field}[1]", "must be a string")


def test_rlimits():
    ok = {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}
    assert_error(with_("process.rlimits", ok), "process.rlimits", "must be an array")
    assert_error(with_("process.rlimits", [ok, 1]), "process.rlimits[1]", "must be an object")
    for key in ("type", "soft", "hard"):
        broken = {k: v for k, v in ok.items() if k != key}
        assert_error(with_("process.rlimits", [broken]), f"process.rlimits[0].{key}",
                     "is required")
    assert_error(with_("process.rlimits", [dict(ok, type=7)]), "process.rlimits[0].type",
                 "must be a string")
    assert_error(with_("process.rlimits", [dict(ok, soft="1")]), "process.rlimits[0].soft",
                 "must be an integer")
    assert_error(with_("process.rlimits", [dict(ok, hard=-1)]), "process.rlimits[0].hard",
                 "got -1")
    validate_config(with_("process.rlimits", [dict(ok, hard=2**64 - 1)]))


def test_terminal_and_no_new_privileges_are_booleans():
    assert_error(with_("process.terminal", 1), "process.terminal", "must be a boolean")
    assert_error(with_("process.noNewPrivileges", "true"), "process.noNewPrivileges",
                 "must be a boolean")


def test_console_size():
    assert_error(with_("process.consoleSize", {"height": 1}), "process.consoleSize.width",
                 "is required")
    assert_error(with_("process.consoleSize", {"height": -1, "width": 1}),
                 "process.consoleSize.height", "got -1")


def test_oom_score_adj_range():
    assert_error(with_("process.oomScoreAdj", 1001), "process.oomScoreAdj",
                 "must be between -1000 and 1000, got 1001")
    assert_error(with_("process.oomScoreAdj", -1001), "process.oomScoreAdj", "got -1001")
    assert_error(with_("process.oomScoreAdj", "0"), "process.oomScoreAdj", "must be an integer")


def test_lsm_labels_are_strings():
    assert_error(with_("process.apparmorProfile", 1), "process.apparmorProfile",
                 "must be a string")
    assert_error(with_("process.selinuxLabel", []), "process.selinuxLabel", "must be a string")


def test_validate_process_for_exec_uses_given_field():
    with pytest.raises(SpecError) as info:
        validate_process({"args": [], "cwd": "/"}, field="process")
    assert info.value.field == "process.args"
    with pytest.raises(SpecError) as info:
        validate_process({"args": ["sh"], "cwd": "x"}, field="exec")
    assert info.value.field == "exec.cwd"
    validate_process({"args": ["sh"], "cwd": "/"})


def test_validate_process_rejects_non_object():
    err = error_of("sh", validate_process)
    assert (err.field, err.message) == ("process", "must be an object")


# ---------------------------------------------------------------- mounts and hooks

def test_mounts():
    assert_error(with_("mounts", {}), "mounts", "must be an array")
    assert_error(with_("mounts", ["/proc"]), "mounts[0]", "must be an object")
    assert_error(with_("mounts", [{"type": "proc"}]), "mounts[0].destination", "is required")
    mounts = default_spec()["mounts"]
    mounts[2]["destination"] = "proc"
    err = error_of(with_("mounts", mounts))
    assert (err.field, err.message) == ("mounts[2].destination",
                                        'must be an absolute path, got "proc"')
    assert_error(with_("mounts", [{"destination": ""}]), "mounts[0].destination",
                 'must be an absolute path, got ""')


def test_mount_type_source_options():
    m = {"destination": "/x"}
    assert_error(with_("mounts", [dict(m, type=1)]), "mounts[0].type", "must be a string")
    assert_error(with_("mounts", [dict(m, source=None)]), "mounts[0].source", "must be a string")
    assert_error(with_("mounts", [dict(m, options="ro")]), "mounts[0].options",
                 "must be an array")
    assert_error(with_("mounts", [dict(m, options=["ro", 1])]), "mounts[0].options[1]",
                 "must be a string")


def test_mount_id_mappings_structure():
    m = {"destination": "/x", "uidMappings": [{"containerID": 0, "hostID": 0, "size": 0}]}
    assert_error(with_("mounts", [m]), "mounts[0].uidMappings[0].size", "got 0")


def test_hooks():
    assert_error(with_("hooks", []), "hooks", "must be an object")
    assert_error(with_("hooks.prestart", {}), "hooks.prestart", "must be an array")
    assert_error(with_("hooks.poststop", [{}]), "hooks.poststop[0].path", "is required")
    assert_error(with_("hooks.createRuntime", [{"path": "hook"}]), "hooks.createRuntime[0].path",
                 'must be an absolute path, got "hook"')
    base = {"path": "/bin/hook"}
    assert_error(with_("hooks.startContainer", [dict(base, args="x")]),
                 "hooks.startContainer[0].args", "must be an array")
    assert_error(with_("hooks.createContainer", [dict(base, env=[1])]),
                 "hooks.createContainer[0].env[0]", "must be a string")
    assert_error(with_("hooks.poststart", [dict(base, timeout=0)]), "hooks.poststart[0].timeout",
                 "got 0")
    assert_error(with_("hooks.poststart", [dict(base, timeout="5")]),
                 "hooks.poststart[0].timeout", "must be an integer")


def test_annotations():
    assert_error(with_("annotations", ["a"]), "annotations", "must be an object")
    assert_error(with_("annotations", {"org.example.n": 1}), 'annotations["org.example.n"]',
                 "must be a string")


# ---------------------------------------------------------------- linux

def test_linux_must_be_object():
    assert_error(with_("linux", []), "linux", "must be an object")


def test_namespaces():
    assert_error(with_("linux.namespaces", {}), "linux.namespaces", "must be an array")
    assert_error(with_("linux.namespaces", [{}]), "linux.namespaces[0].type", "is required")
    assert_error(with_("linux.namespaces", [{"type": "net"}]), "linux.namespaces[0].type",
                 'got "net"')
    assert_error(with_("linux.namespaces", [{"type": "pid", "path": "proc/1/ns/pid"}]),
                 "linux.namespaces[0].path", "must be an absolute path")


def test_all_eight_namespace_types_accepted():
    types = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
    validate_config(with_("linux.namespaces", [{"type": t} for t in types]))


def test_duplicate_namespace():
    nss = [{"type": "pid"}, {"type": "uts"}, {"type": "pid", "path": "/proc/1/ns/pid"}]
    err = error_of(with_("linux.namespaces", nss))
    assert (err.field, err.message) == ("linux.namespaces[2].type", 'duplicate namespace "pid"')


@pytest.mark.parametrize("key", ["uidMappings", "gidMappings"])
def test_id_mappings_structure(key):
    field = f"linux.{key}"
    ok = {"containerID": 0, "hostID": 1000, "size": 1}
    assert_error(with_(field, ok), field, "must be an array")
    for part in ("containerID", "hostID", "size"):
        broken = {k: v for k, v in ok.items() if k != part}
        assert_error(with_(field, [broken]), f"{field}[0].{part}", "is required")
        assert_error(with_(field, [dict(ok, **{part: -1})]), f"{field}[0].{part}", "got -1")
        assert_error(with_(field, [dict(ok, **{part: 2**32})]), f"{field}[0].{part}",
                     "got 4294967296")
    assert_error(with_(field, [dict(ok, size=0)]), f"{field}[0].size",
                 "must be between 1 and 4294967295, got 0")
    assert_error(with_(field, [dict(ok, hostID=False)]), f"{field}[0].hostID",
                 "must be an integer")


def test_devices():
    dev = {"type": "c", "path": "/dev/null", "major": 1, "minor": 3}
    validate_config(with_("linux.devices", [dev]))
    assert_error(with_("linux.devices", dev), "linux.devices", "must be an array")
    assert_error(with_("linux.devices", [dict(dev, type="x")]), "linux.devices[0].type",
                 'must be one of c, b, u, p, got "x"')
    assert_error(with_("linux.devices", [dict(dev, path="dev/null")]), "linux.devices[0].path",
                 "must be an absolute path")
    for kind in ("c", "b", "u"):
        no_minor = {"type": kind, "path": "/dev/x", "major": 1}
        assert_error(with_("linux.devices", [no_minor]), "linux.devices[0].minor",
                     f'is required for type "{kind}"')
    assert_error(with_("linux.devices", [{"type": "b", "path": "/dev/x", "minor": 1}]),
                 "linux.devices[0].major", "is required")
    assert_error(with_("linux.devices", [dict(dev, major="1")]), "linux.devices[0].major",
                 "must be an integer")
    assert_error(with_("linux.devices", [dict(dev, fileMode=-1)]), "linux.devices[0].fileMode",
                 "got -1")
    assert_error(with_("linux.devices", [dict(dev, uid=True)]), "linux.devices[0].uid",
                 "must be an integer")
    assert_error(with_("linux.devices", [dict(dev, gid=2**32)]), "linux.devices[0].gid",
                 "got 4294967296")


def test_sysctl_values_are_strings():
    assert_error(with_("linux.sysctl", ["a"]), "linux.sysctl", "must be an object")
    assert_error(with_("linux.sysctl", {"net.ipv4.ip_forward": 1}),
                 'linux.sysctl["net.ipv4.ip_forward"]', "must be a string")


@pytest.mark.parametrize("key", ["maskedPaths", "readonlyPaths"])
def test_masked_and_readonly_paths(key):
    field = f"linux.{key}"
    assert_error(with_(field, "/proc"), field, "must be an array")
    assert_error(with_(field, ["/proc/kcore", "sys"]), f"{field}[1]",
                 'must be an absolute path, got "sys"')


def test_rootfs_propagation():
    for word in ("private", "rprivate", "slave", "rslave", "shared", "rshared",
                 "unbindable", "runbindable"):
        validate_config(with_("linux.rootfsPropagation", word))
    assert_error(with_("linux.rootfsPropagation", "rec"), "linux.rootfsPropagation",
                 'got "rec"')
    assert_error(with_("linux.rootfsPropagation", 1), "linux.rootfsPropagation",
                 "must be a string")


def test_linux_strings_and_objects():
    assert_error(with_("linux.cgroupsPath", 1), "linux.cgroupsPath", "must be a string")
    assert_error(with_("linux.mountLabel", 1), "linux.mountLabel", "must be a string")
    assert_error(with_("linux.resources", []), "linux.resources", "must be an object")
    assert_error(with_("linux.seccomp", "x"), "linux.seccomp", "must be an object")


def test_time_offsets():
    assert_error(with_("linux.timeOffsets", []), "linux.timeOffsets", "must be an object")
    assert_error(with_("linux.timeOffsets", {"monotonic": 5}), "linux.timeOffsets.monotonic",
                 "must be an object")
    assert_error(with_("linux.timeOffsets", {"boottime": {"secs": "1"}}),
                 "linux.timeOffsets.boottime.secs", "must be an integer")
    assert_error(with_("linux.timeOffsets", {"boottime": {"nanosecs": 10**9}}),
                 "linux.timeOffsets.boottime.nanosecs", "got 1000000000")
    assert_error(with_("linux.timeOffsets", {"realtime": {"secs": 1}}),
                 "linux.timeOffsets.realtime", 'unknown clock "realtime"')


def test_first_problem_is_reported():
    cfg = with_("root.path", 1)
    cfg["process"]["args"] = []
    assert_error(cfg, "root.path", "must be a string")


def test_quote_matches_go():
    assert quote("proc") == '"proc"'
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("a\nb\x00") == '"a\\x0ab\\x00"'
    assert quote("héllo") == '"héllo"'


# ---------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def rich_spec():
    """The default spec plus one of every optional section, so mutations reach every table."""
    cfg = default_spec()
    cfg["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 1}]}
    cfg["annotations"] = {"a": "b"}
    cfg["process"]["user"]["additionalGids"] = [1]
    cfg["process"]["consoleSize"] = {"height": 1, "width": 1}
    cfg["linux"].update({
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "devices": [{"type": "c", "path": "/dev/null", "major": 1, "minor": 3}],
        "sysctl": {"net.ipv4.ip_forward": "1"},
        "timeOffsets": {"monotonic": {"secs": 1, "nanosecs": 1}},
        "rootfsPropagation": "rslave",
    })
    cfg["mounts"][0]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    return cfg


def slots(node, prefix=()):
    """Every (path of keys/indices) in a document, for the mutation fuzzer to pick from."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        yield prefix + (key,)
        if isinstance(child, (dict, list)):
            yield from slots(child, prefix + (key,))


SLOTS = sorted(set(slots(rich_spec())) | set(slots(default_spec(rootless=True))), key=str)


def replaced(doc, path, value):
    node = doc
    for key in path[:-1]:
        node = node[key]
    if isinstance(node, (dict, list)) and (isinstance(node, dict) or path[-1] < len(node)):
        node[path[-1]] = value
    return doc


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_random_documents_raise_only_spec_error(value):
    try:
        validate_config(value)
    except SpecError:
        pass


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(SLOTS), json_values, st.booleans())
def test_fuzz_mutated_spec_raises_only_spec_error(path, value, rich):
    base = rich_spec() if rich else default_spec(rootless=True)
    try:
        cfg = replaced(base, path, value)
    except (KeyError, IndexError, TypeError):
        return  # this slot only exists in the other base document
    try:
        validate_config(cfg)
    except SpecError as err:
        assert isinstance(err.field, str) and err.message


# ---------------------------------------------------------------- string arrays in one pass

def test_plain_strings_tells_the_arrays_that_need_no_walk():
    from kago.oci.schema import plain_strings
    assert plain_strings(["sh", "-c", "echo hi"]) and plain_strings([])
    assert not plain_strings(["sh", 1])           # not a string
    assert not plain_strings(["a\x00b"])          # a NUL
    assert not plain_strings(["caf\u00e9"])       # not ASCII: checked item by item
    assert not plain_strings(["\ud800"])          # a lone surrogate


def test_a_bad_item_after_plain_ones_is_still_named_by_its_index():
    args = ["sh"] * 40 + ["a\x00b"] + ["sh"] * 40
    assert_error(with_("process.args", args), "process.args[40]", "must not contain a NUL")
    assert_error(with_("process.args", ["sh"] * 5 + ["\ud800"]), "process.args[5]",
                 "lone surrogate")
    validate_config(with_("process.args", ["caf\u00e9", "ok"]))  # real Unicode passes
