"""Bad input to kago-oci: each is exit status 1, one line on stderr naming the problem (the spec
field, the value, the path) and nothing left behind: no state directory, cgroup, mount or
process (the ``oci`` fixture's leak check, plus a look for processes naming the container).
"""

import json
import os
import subprocess

import pytest

from conftest import KAGO_OCI
from test_lifecycle import (SLEEPER, assert_not_exists, detached, error_message, failed, ok,
                            procs_naming, status)


def rejected(oci, bundle_path, fragment, cid=None):
    """``create`` of the bundle fails with ``fragment`` in one stderr line; nothing is left."""
    cid = cid or oci.new_id()
    proc = failed(detached(oci, "create", "--bundle", bundle_path, cid), fragment)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert error_message(proc.stderr).startswith("create failed: ")
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)
    return proc


def bad_config(oci, make_bundle, mutate, fragment):
    return rejected(oci, make_bundle(SLEEPER, mutate=mutate).path, fragment)


def write_raw(bundle, text):
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write(text)


# --- the config document ----------------------------------------------------------------------

def test_malformed_json_names_line_and_column(oci, make_bundle):
    b = make_bundle(SLEEPER)
    write_raw(b, '{\n "ociVersion": "1.0.2",\n "process": }\n')
    rejected(oci, b.path, "config.json: invalid json at line 3 column 13")


def test_config_not_an_object(oci, make_bundle):
    b = make_bundle(SLEEPER)
    write_raw(b, "[1, 2]")
    rejected(oci, b.path, "config must be a JSON object")


@pytest.mark.parametrize("mutate, fragment", [
    (lambda c: c["process"].update(args="sh"), "process.args: must be a non-empty array"),
    (lambda c: c["process"].update(args=[]), "process.args: must be a non-empty array"),
    (lambda c: c["process"]["user"].update(uid="root"), "process.user.uid: must be an integer"),
    (lambda c: c.update(hostname=5), "hostname: must be a string"),
    (lambda c: c.__delitem__("process"), "process: is required"),
], ids=["args-string", "args-empty", "uid-string", "hostname-int", "no-process"])
def test_schema_errors_name_the_field(oci, make_bundle, mutate, fragment):
    bad_config(oci, make_bundle, mutate, fragment)


def test_unsupported_oci_version(oci, make_bundle):
    bad_config(oci, make_bundle, lambda c: c.update(ociVersion="2.0.0"),
               'unsupported ociVersion "2.0.0"')


def test_missing_config(oci, make_bundle):
    b = make_bundle(SLEEPER)
    os.unlink(os.path.join(b.path, "config.json"))
    rejected(oci, b.path, f"open {b.path}/config.json: no such file or directory")


def test_missing_bundle(oci, tmp_path):
    rejected(oci, tmp_path / "nope", "no such file or directory")


def test_missing_rootfs(oci, make_bundle):
    b = make_bundle(SLEEPER)
    os.rename(b.rootfs, b.rootfs + ".gone")
    rejected(oci, b.path, f"root.path: rootfs {b.rootfs} does not exist")


# --- container IDs --------------------------------------------------------------------------

def test_id_already_exists(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    first = oci.state(cid)
    proc = failed(detached(oci, "create", "--bundle", make_bundle(SLEEPER).path, cid),
                  "container with given ID already exists")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert oci.state(cid) == first  # untouched: same pid, same bundle, still created
    ok(oci("start", cid))
    assert status(oci, cid) == "running"


@pytest.mark.parametrize("cid", ["a/b", "..", ".", "a\tb", "a\nb", "", "../escape", "a b"],
                         ids=["slash", "dotdot", "dot", "tab", "newline", "empty", "traversal",
                              "space"])
def test_invalid_id(oci, make_bundle, state_root, cid):
    b = make_bundle(SLEEPER)
    before = sorted(os.listdir(state_root)) if os.path.isdir(state_root) else []
    proc = failed(detached(oci, "create", "--bundle", b.path, cid), "invalid container ID format")
    assert len(proc.stderr.strip().splitlines()) == 1
    after = sorted(os.listdir(state_root)) if os.path.isdir(state_root) else []
    assert after == before


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_invalid_id_other_commands(oci, command):
    failed(oci(command, "../x"), "invalid container ID format")


# --- user namespace mappings ------------------------------------------------------------------

def _userns(uid_maps, gid_maps=({"containerID": 0, "hostID": 100000, "size": 65536},)):
    def mutate(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = list(uid_maps)
        cfg["linux"]["gidMappings"] = list(gid_maps)
    return mutate


def test_overlapping_uid_mappings(oci, make_bundle):
    maps = [{"containerID": 0, "hostID": 100000, "size": 100},
            {"containerID": 50, "hostID": 200000, "size": 100}]
    bad_config(oci, make_bundle, _userns(maps),
               "linux.uidMappings[1]: container range 50-149 overlaps linux.uidMappings[0]")


def test_mapping_beyond_32_bits(oci, make_bundle):
    maps = [{"containerID": 0, "hostID": 4294967000, "size": 1000}]
    bad_config(oci, make_bundle, _userns(maps), "linux.uidMappings[0]")


# --- vocabulary -------------------------------------------------------------------------------

def test_unknown_namespace(oci, make_bundle):
    bad_config(oci, make_bundle, lambda c: c["linux"]["namespaces"].append({"type": "foo"}),
               'linux.namespaces[5].type: must be one of')


def test_unknown_signal(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    proc = failed(oci("kill", cid, "FOO"), 'unknown signal "FOO"')
    assert len(proc.stderr.strip().splitlines()) == 1
    assert status(oci, cid) == "running"


def test_missing_bind_source(oci, make_bundle):
    mount = {"destination": "/mnt", "type": "bind", "source": "/nonexistent/src",
             "options": ["rbind"]}
    bad_config(oci, make_bundle, lambda c: c["mounts"].append(mount),
               "bind source /nonexistent/src for /mnt: no such file or directory")


def test_hook_timeout_leaves_nothing(oci, make_bundle):
    hook = {"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}
    bad_config(oci, make_bundle, lambda c: c.update(hooks={"createRuntime": [hook]}),
               "createRuntime hook /bin/sleep: timed out after 1s")


# --- exec -------------------------------------------------------------------------------------

def test_exec_missing_container(oci):
    """runc exits 255 when exec itself fails (the program's own status is never 255 there)."""
    failed(oci("exec", "nope", "true"), "exec failed: container does not exist", 255)


def test_exec_bad_process_file(oci, make_bundle, tmp_path):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    (tmp_path / "p.json").write_text(json.dumps({"args": "sh", "cwd": "/"}))
    failed(oci("exec", "--process", tmp_path / "p.json", cid), "process.args", 255)
    failed(oci("exec", "--process", tmp_path / "none.json", cid), "no such file or directory",
           255)
    assert sorted(json.loads(oci("ps", "--format", "json", cid).stdout)) == \
        [oci.state(cid)["pid"]]


# --- command-line options that fail after the container was made -----------------------------

def test_pid_file_in_missing_directory(oci, make_bundle, tmp_path):
    b = make_bundle(SLEEPER)
    pid_file = tmp_path / "missing" / "init.pid"
    cid = oci.new_id()
    failed(detached(oci, "create", "--bundle", b.path, "--pid-file", pid_file, cid),
           f"write pid file {pid_file}: no such file or directory")
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)


def test_missing_console_socket(oci, make_bundle, tmp_path):
    b = make_bundle(SLEEPER, process__terminal=True)
    sock = tmp_path / "nope.sock"
    cid = oci.new_id()
    failed(detached(oci, "create", "--bundle", b.path, "--console-socket", sock, cid),
           f"connect console socket {sock}: no such file or directory")
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)


def test_terminal_without_console_socket(oci, make_bundle):
    b = make_bundle(SLEEPER, process__terminal=True)
    rejected(oci, b.path, "cannot allocate tty if kago-oci will detach without setting "
                          "console socket")


def test_concurrent_creates_of_one_id(oci, make_bundle, tmp_path):
    """The ID is claimed atomically: of two racing creates exactly one wins."""
    cid = oci.new_id()
    procs = []
    for n in range(2):
        err = open(tmp_path / f"err{n}", "w+")  # not a pipe: the winner's init inherits it
        argv = [KAGO_OCI, "--root", oci.root, "create", "--bundle", make_bundle(SLEEPER).path,
                cid]
        procs.append((subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=err), err))
    results = []
    for proc, err in procs:
        proc.wait(timeout=30)
        err.seek(0)
        results.append((proc.returncode, err.read()))
        err.close()
    assert sorted(code for code, _ in results) == [0, 1], results
    assert any("container with given ID already exists" in err for _, err in results)
    assert oci.state(cid)["status"] == "created"
