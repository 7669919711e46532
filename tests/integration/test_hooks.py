"""OCI hooks (runtime-spec config.md#posix-platform-hooks) on real containers.

Every hook is a small shell script that appends ``kind:<state JSON from stdin>`` to one log
file. The host's hooks live in a temporary directory; the startContainer hook runs inside the
container, so its script is put in the rootfs (``/bin/start-hook``, a path the host does not
have) and it writes to the same log through a bind mount of that directory.

Failure semantics: prestart, createRuntime, createContainer and startContainer failures fail
the operation and leave nothing behind; poststart and poststop failures are warnings (the spec's
rule; runc 1.1 also fails ``run`` on a poststart failure, kago follows the spec).
"""

import json
import os
import time
from pathlib import Path

import pytest

from conftest import wait_for
from test_lifecycle import (SLEEPER, assert_not_exists, detached, failed, gone, ok, procs_naming,
                            status)

CREATE_KINDS = ("prestart", "createRuntime", "createContainer")
ALL_KINDS = CREATE_KINDS + ("startContainer", "poststart", "poststop")

LOGGER = """#!/bin/sh
echo "$1:$(cat)" >> {log}
"""


@pytest.fixture
def hookdir(tmp_path):
    """A host directory with ``log.sh KIND`` (appends to ``log``) and ``fail.sh``."""
    path = tmp_path / "hooks"
    path.mkdir()
    _script(path / "log.sh", LOGGER.format(log=path / "log"))
    _script(path / "fail.sh", "#!/bin/sh\necho 'hook says no' >&2\nexit 3\n")
    _script(path / "env.sh", f"#!/bin/sh\necho \"$1:$HOOK_VAR:$PATH\" >> {path}/log\n")
    return path


def _script(path, text):
    path.write_text(text)
    os.chmod(path, 0o755)


def _hook(path, *args, **extra):
    return {"path": str(path), "args": [os.path.basename(str(path)), *args], **extra}


def logging_bundle(make_bundle, hookdir, args=SLEEPER):
    """A bundle with every kind of hook logging to hookdir/log."""
    def mutate(cfg):
        cfg["hooks"] = {kind: [_hook(hookdir / "log.sh", kind)] for kind in ALL_KINDS}
        cfg["hooks"]["startContainer"] = [_hook("/bin/start-hook", "startContainer")]
        cfg["mounts"].append({"destination": str(hookdir), "type": "bind",
                              "source": str(hookdir), "options": ["rbind", "rw"]})
    b = make_bundle(args, mutate=mutate)
    _script(Path(b.rootfs) / "bin/start-hook", LOGGER.format(log=hookdir / "log"))
    assert not os.path.exists("/bin/start-hook")  # so it can only be found inside
    return b


def read_log(hookdir):
    """[(kind, state dict)] in the order the hooks ran."""
    try:
        text = (hookdir / "log").read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        kind, _, state = line.partition(":")
        out.append((kind, json.loads(state) if state.startswith("{") else state))
    return out


def kinds(hookdir):
    return [kind for kind, _state in read_log(hookdir)]


def with_hooks(**section):
    def mutate(cfg):
        cfg["hooks"] = section
    return mutate


# --- all six, in order, with the state ----------------------------------------------------------

def test_all_hooks_run_once_in_order(oci, make_bundle, hookdir):
    b = logging_bundle(make_bundle, hookdir)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    assert kinds(hookdir) == list(CREATE_KINDS)
    ok(oci("start", cid))
    assert wait_for(lambda: len(kinds(hookdir)) >= 5)
    assert kinds(hookdir) == list(CREATE_KINDS) + ["startContainer", "poststart"]
    ok(oci("delete", "--force", cid))
    assert kinds(hookdir) == list(ALL_KINDS)


def test_hook_state_documents(oci, make_bundle, hookdir):
    b = logging_bundle(make_bundle, hookdir)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    pid = oci.state(cid)["pid"]
    ok(oci("start", cid))
    assert wait_for(lambda: len(kinds(hookdir)) >= 5)
    ok(oci("delete", "--force", cid))
    states = dict(read_log(hookdir))
    for kind in ALL_KINDS:
        assert states[kind]["id"] == cid and states[kind]["bundle"] == b.path, kind
        assert states[kind]["ociVersion"], kind
    for kind in CREATE_KINDS:  # "created", as crun; runtime-tools' hooks_stdin requires it
        assert states[kind]["status"] == "created" and states[kind]["pid"] == pid, kind
    assert states["poststart"]["status"] == "running" and states["poststart"]["pid"] == pid
    assert states["poststop"]["status"] == "stopped"


def test_start_container_hook_sees_created(oci, make_bundle, hookdir):
    b = logging_bundle(make_bundle, hookdir)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    ok(oci("start", cid))
    assert wait_for(lambda: "startContainer" in kinds(hookdir))
    assert dict(read_log(hookdir))["startContainer"]["status"] == "created"


def test_hooks_with_run(oci, make_bundle, hookdir):
    b = logging_bundle(make_bundle, hookdir, args=["true"])
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert kinds(hookdir) == list(ALL_KINDS)


def test_hook_env_is_its_whole_environment(oci, make_bundle, hookdir):
    hook = _hook(hookdir / "env.sh", "prestart", env=["HOOK_VAR=yes", "PATH=/hookpath"])
    b = make_bundle(["true"], mutate=with_hooks(prestart=[hook]))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert (hookdir / "log").read_text() == "prestart:yes:/hookpath\n"


# --- failures ---------------------------------------------------------------------------------

def _create_fails(oci, b, fragments, within=None):
    cid = oci.new_id()
    began = time.monotonic()
    proc = detached(oci, "create", "--bundle", b.path, cid)
    took = time.monotonic() - began
    for fragment in fragments:
        failed(proc, fragment)
    if within is not None:
        assert took < within, f"create took {took:.1f}s"
    assert_not_exists(oci, cid)
    assert not procs_naming(cid)
    return proc


def test_prestart_timeout(oci, make_bundle):
    # an argument no other test's process has ("sleep 10" also matched "sleep 100")
    hook = {"path": "/bin/sleep", "args": ["sleep", "9.75"], "timeout": 1}
    b = make_bundle(SLEEPER, mutate=with_hooks(prestart=[hook]))
    _create_fails(oci, b, ["prestart hook /bin/sleep", "timed out"], within=3)
    assert all(gone(p, 1) for p in procs_naming("sleep 9.75"))


def test_failing_create_runtime_hook(oci, make_bundle, hookdir):
    b = make_bundle(SLEEPER, mutate=with_hooks(createRuntime=[_hook(hookdir / "fail.sh")]))
    _create_fails(oci, b, [f"createRuntime hook {hookdir}/fail.sh", "exit status 3",
                           "hook says no"])


def test_failing_create_container_hook(oci, make_bundle, hookdir):
    b = make_bundle(SLEEPER, mutate=with_hooks(createContainer=[_hook(hookdir / "fail.sh")]))
    _create_fails(oci, b, ["createContainer hook", "exit status 3"])


def test_missing_hook_program(oci, make_bundle, hookdir):
    b = make_bundle(SLEEPER, mutate=with_hooks(prestart=[_hook(hookdir / "nope.sh")]))
    _create_fails(oci, b, ["prestart hook", "no such file or directory"])


def test_failing_later_hook_stops_the_rest(oci, make_bundle, hookdir):
    b = make_bundle(SLEEPER, mutate=with_hooks(
        prestart=[_hook(hookdir / "log.sh", "first"), _hook(hookdir / "fail.sh")],
        createRuntime=[_hook(hookdir / "log.sh", "createRuntime")]))
    _create_fails(oci, b, ["prestart hook"])
    assert kinds(hookdir) == ["first"]


def test_failing_start_container_hook_fails_start(oci, make_bundle, hookdir):
    def mutate(cfg):
        cfg["hooks"] = {"startContainer": [{"path": "/bin/false"}],
                        "poststart": [_hook(hookdir / "log.sh", "poststart")]}
    b = make_bundle(SLEEPER, mutate=mutate)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    pid = oci.state(cid)["pid"]
    oci("start", cid)
    assert gone(pid)  # the init gave up instead of running the program
    assert status(oci, cid) == "stopped"


def test_failing_poststart_only_warns(oci, make_bundle, hookdir):
    b = make_bundle(SLEEPER, mutate=with_hooks(poststart=[_hook(hookdir / "fail.sh")]))
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    proc = ok(oci("start", cid))
    assert "level=warning" in proc.stderr and "poststart hook" in proc.stderr
    assert status(oci, cid) == "running"


def test_failing_poststop_only_warns(oci, make_bundle, hookdir):
    b = make_bundle(SLEEPER, mutate=with_hooks(poststop=[_hook(hookdir / "fail.sh")]))
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    proc = ok(oci("delete", "--force", cid))
    assert "level=warning" in proc.stderr and "poststop hook" in proc.stderr
    assert_not_exists(oci, cid)


def test_start_container_hook_alone(oci, make_bundle, hookdir):
    """The only hook: nothing ran before it that could have loaded its machinery."""
    def mutate(cfg):
        cfg["hooks"] = {"startContainer": [_hook("/bin/start-hook", "startContainer")]}
        cfg["mounts"].append({"destination": str(hookdir), "type": "bind",
                              "source": str(hookdir), "options": ["rbind", "rw"]})
    b = make_bundle(["true"], mutate=mutate)
    _script(Path(b.rootfs) / "bin/start-hook", LOGGER.format(log=hookdir / "log"))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert kinds(hookdir) == ["startContainer"]


@pytest.mark.parametrize("how", ["start", "run"])
def test_poststart_waits_for_the_program(oci, make_bundle, hookdir, how):
    """poststart runs after the program was executed, so after a slow startContainer hook."""
    b = logging_bundle(make_bundle, hookdir)
    _script(Path(b.rootfs) / "bin/start-hook",
            "#!/bin/sh\nsleep 0.3\n" + LOGGER.format(log=hookdir / "log").split("\n", 1)[1])
    cid = oci.new_id()
    if how == "start":
        ok(detached(oci, "create", "--bundle", b.path, cid))
        ok(oci("start", cid))
    else:
        ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    assert kinds(hookdir) == list(CREATE_KINDS) + ["startContainer", "poststart"]


def test_hook_without_env_inherits_the_runtimes(oci, make_bundle, hookdir):
    """runc 1.1: a hook with no ``env`` gets the environment of whoever runs it (exec.Cmd
    with a nil Env): kago-oci's for the runtime's hooks, the container process's for
    createContainer (run by the container's init); ``env: []`` is an empty environment."""
    def mutate(cfg):
        cfg["process"]["env"] = ["HOOK_VAR=process", "PATH=/bin:/process/path"]
        cfg["hooks"] = {kind: [_hook(hookdir / "env.sh", kind)]
                        for kind in ("prestart", "createRuntime", "createContainer",
                                     "poststart", "poststop")}
        cfg["hooks"]["poststop"].append(_hook(hookdir / "env.sh", "empty", env=[]))
        # by name, found through the inherited PATH
        cfg["hooks"]["poststart"].append({"path": "/bin/sh", "args": [
            "sh", "-c", f"echo \"named:$(basename $(command -v env.sh))\" >> {hookdir}/log"]})
        # in the container (after HOME was added to the process's env, as runc)
        cfg["hooks"]["startContainer"] = [{"path": "/bin/sh", "args": [
            "sh", "-c", f"echo \"startContainer:$HOOK_VAR:$HOME\" >> {hookdir}/log"]}]
        cfg["mounts"].append({"destination": str(hookdir), "type": "bind",
                              "source": str(hookdir), "options": ["rbind", "rw"]})
    b = make_bundle(["true"], mutate=mutate)
    env = dict(os.environ, HOOK_VAR="runtime", PATH=f"{hookdir}:/usr/bin:/bin")
    ok(oci("run", "--bundle", b.path, oci.new_id(), env=env))
    runtime = f"runtime:{hookdir}:/usr/bin:/bin"
    lines = (hookdir / "log").read_text().splitlines()
    assert lines[:-1] == [
        f"prestart:{runtime}", f"createRuntime:{runtime}",
        "createContainer:process:/bin:/process/path", "startContainer:process:/root",
        f"poststart:{runtime}", "named:env.sh", f"poststop:{runtime}"]
    assert lines[-1].startswith("empty::") and str(hookdir) not in lines[-1]  # sh's own PATH
