"""kago-oci's command line as clients use it: runc's flags, spellings, errors and log formats.

Where runc (urfave/cli) has a behaviour that clients depend on, the test says so: flags may
follow the container ID, ``-bundle`` is ``--bundle``, an unknown flag is
``flag provided but not defined: -nope`` with exit status 1.
"""

import errno
import json
import os

import pytest

from conftest import pid_alive, wait_for
from test_lifecycle import SLEEPER, detached, failed, ok, running

DEFAULT_ROOT = "/run/kago"


# --- version, features, spec ----------------------------------------------------------------

def test_version(oci):
    proc = ok(oci("--version", root=False))
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("kago-oci version ")
    assert lines[1].startswith("spec: 1.")


def test_features_is_json(oci):
    doc = json.loads(ok(oci("features")).stdout)
    assert doc["ociVersionMin"].startswith("1.0") and doc["ociVersionMax"].startswith("1.")
    assert set(doc["linux"]["namespaces"]) == {"cgroup", "ipc", "mount", "network", "pid",
                                               "time", "user", "uts"}
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                            "poststart", "poststop"]
    caps = doc["linux"]["capabilities"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_CHOWN" in caps and len(caps) >= 38
    # the schema's cgroup block is what kago-oci implements; the host is in annotations
    assert doc["linux"]["cgroup"] == {"v1": True, "v2": True, "systemd": False,
                                      "systemdUser": False, "rdma": True}
    from kago.linux.cgroups import detect
    assert doc["annotations"]["io.github.kago.cgroup.host"] == detect().mode


def test_spec_writes_config_and_refuses_to_overwrite(oci, tmp_path):
    ok(oci("spec", "--bundle", tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"] and cfg["root"]["path"] == "rootfs"
    before = (tmp_path / "config.json").read_bytes()
    failed(oci("spec", "--bundle", tmp_path), "File config.json exists. Remove it first")
    assert (tmp_path / "config.json").read_bytes() == before


def test_spec_rootless(oci, tmp_path):
    ok(oci("spec", "--rootless", "--bundle", tmp_path))
    linux = json.loads((tmp_path / "config.json").read_text())["linux"]
    assert {"type": "user"} in linux["namespaces"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]


# --- parsing errors -------------------------------------------------------------------------

def test_unknown_command(oci):
    proc = oci("nope")
    assert proc.returncode != 0
    assert "No help topic for 'nope'" in proc.stderr


def test_unknown_flag(oci):
    failed(oci("state", "--nope", "x"), "flag provided but not defined: -nope")


def test_unknown_global_flag(oci):
    failed(oci("--nope", "state", "x"), "flag provided but not defined: -nope")


def test_missing_id(oci):
    failed(oci("kill"), '"kill" requires a container ID')


def test_extra_argument(oci):
    failed(oci("state", "a", "b"), '"state"')


def test_flag_needs_value(oci):
    failed(oci("create", "--bundle"), "flag needs an argument: -bundle")


def test_systemd_cgroup_not_supported(oci):
    proc = failed(oci("--systemd-cgroup", "state", "x"), "--systemd-cgroup is not supported")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_log_format_xml(oci):
    failed(oci("--log-format", "xml", "state", "x"), "invalid log-format: xml")


# --- spellings runc's clients use -------------------------------------------------------------

def test_single_dash_long_flags(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(detached(oci, "create", "-bundle", b.path, cid))
    assert oci.state(cid)["status"] == "created"
    ok(oci("delete", "-force", cid))


def test_flag_equals_value(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    ok(detached(oci, "create", f"--bundle={b.path}", cid))
    assert oci.state(cid)["bundle"] == b.path


def test_flags_after_the_id(oci, make_bundle, tmp_path):
    """runc (urfave/cli) reorders flags: ``kill ID TERM --all`` signals every process.

    The init (``sleep``, PID 1 of its namespace) has no TERM handler, so only --all reaches
    the exec'd sleep: it dies, the init lives.
    """
    cid, _b, pid = running(oci, make_bundle)
    ok(detached(oci, "exec", "-d", "--pid-file", tmp_path / "p", cid, "sleep", "100"))
    other = int((tmp_path / "p").read_text())
    ok(oci("kill", cid, "TERM", "--all"))
    assert wait_for(lambda: not pid_alive(other))
    assert pid_alive(pid)
    ok(oci("delete", cid, "--force"))
    assert wait_for(lambda: not pid_alive(pid))


def test_exec_args_after_id_are_the_programs(oci, make_bundle):
    cid, _b, _pid = running(oci, make_bundle)
    proc = ok(oci("exec", cid, "sh", "-c", "echo $0 $1", "--all", "-x"))
    assert proc.stdout == "--all -x\n"


# --- logging --------------------------------------------------------------------------------

def test_debug_json_log_has_phases(oci, make_bundle, tmp_path):
    b = make_bundle(["true"])
    cid = oci.new_id()
    log = tmp_path / "log.json"
    ok(oci("--log", log, "--log-format", "json", "--debug", "run", "--bundle", b.path, cid))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and all({"level", "msg", "time"} <= set(r) for r in records)
    phases = {r["msg"]: r for r in records if r["msg"].startswith("phase ")}
    for name in ("phase spec load", "phase plan", "phase spawn", "phase namespaces",
                 "phase mount_all", "phase switch_root"):
        assert name in phases, sorted(phases)
        assert float(phases[name]["ms"]) >= 0


def test_debug_text_log_to_stderr(oci, make_bundle):
    b = make_bundle(["true"])
    proc = ok(oci("--debug", "run", "--bundle", b.path, oci.new_id()))
    assert 'level=debug msg="phase spawn" ms=' in proc.stderr


def test_errors_go_to_log_and_stderr(oci, tmp_path):
    log = tmp_path / "log.txt"
    failed(oci("--log", log, "state", "nope"), "container does not exist")
    assert 'level=error msg="container does not exist"' in log.read_text()


# --- the default state root -----------------------------------------------------------------

def test_default_root(oci, make_bundle):
    b = make_bundle(SLEEPER)
    cid = oci.new_id()
    made_root = not os.path.exists(DEFAULT_ROOT)
    try:
        ok(detached(oci, "create", "--bundle", b.path, cid, root=False))
        assert os.path.isfile(os.path.join(DEFAULT_ROOT, cid, "state.json"))
        assert json.loads(ok(oci("state", cid, root=False)).stdout)["status"] == "created"
        failed(oci("state", cid), "container does not exist")  # not in the session's root
    finally:
        oci("delete", "--force", cid, root=False)
    assert not os.path.exists(os.path.join(DEFAULT_ROOT, cid))
    if made_root:  # the host as it was: this test made the default state dir, it removes it
        try:        # unless podman (with kago-oci) or a user put containers there meanwhile
            os.rmdir(DEFAULT_ROOT)
        except OSError as e:
            if e.errno != errno.ENOTEMPTY:
                raise


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete", "pause", "resume",
                                     "ps"])
def test_missing_container(oci, command):
    failed(oci(command, "nope-" + command), "container does not exist")


def test_delete_force_missing_is_ok(oci):
    """containerd deletes after a failed create: runc's ``delete --force`` succeeds."""
    ok(oci("delete", "--force", "never-created"))


def test_delete_removes_a_stale_directory(oci, state_root):
    """A directory without a record (an aborted create) is removed by delete, as runc does."""
    cid = oci.new_id()
    os.makedirs(os.path.join(state_root, cid))
    failed(oci("delete", cid), "container does not exist")
    assert not os.path.exists(os.path.join(state_root, cid))
