"""Hooks are started by posix_spawn, or by fork + execve where posix_spawn cannot start
anything: glibc's posix_spawn uses clone3(2), which a seccomp profile may refuse with EPERM
(runtime-tools' default does; init runs startContainer hooks under the filter when
noNewPrivileges is false)."""

import errno
import os

import pytest

from kago.process import hooks
from kago.plan.model import Hook


def _refuse_clone3(*args, **kw):
    raise PermissionError(errno.EPERM, "Operation not permitted")


def test_a_hook_runs_when_posix_spawn_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "posix_spawn", _refuse_clone3)
    out = tmp_path / "out"
    hook = Hook(path="/bin/sh", args=["sh", "-c", f"cat > {out}; echo to-stderr >&2"],
                env=["A=1"], timeout=10)
    hooks.run_one("startContainer", hook, '{"id": "x"}')
    assert out.read_text() == '{"id": "x"}'  # the state on stdin, as with posix_spawn


def test_the_fork_path_reports_the_hooks_own_failure(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "posix_spawn", _refuse_clone3)
    hook = Hook(path="/bin/sh", args=["sh", "-c", "echo broken >&2; exit 3"], env=[],
                timeout=10)
    with pytest.raises(hooks.HookError) as e:
        hooks.run_one("startContainer", hook, "{}")
    assert str(e.value) == "startContainer hook /bin/sh: exit status 3: broken"


def test_the_fork_path_reports_a_missing_hook_as_such(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "posix_spawn", _refuse_clone3)
    missing = str(tmp_path / "nope")
    hook = Hook(path=missing, args=[missing], env=[], timeout=10)
    with pytest.raises(hooks.HookError) as e:
        hooks.run_one("startContainer", hook, "{}")
    assert str(e.value) == f"startContainer hook {missing}: no such file or directory"
