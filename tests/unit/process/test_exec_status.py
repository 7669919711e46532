"""ExecError carries the shell's status for the container's process: 127 not found, 126 not
executable (used when the program fails after "ready", with nobody left to report to)."""

import os

import pytest

from kago.errors import ExecError
from kago.process.steps import lookup


def test_not_on_path_is_127(tmp_path):
    with pytest.raises(ExecError) as e:
        lookup("nosuchprog", [f"PATH={tmp_path}"])
    assert e.value.status == 127
    assert "executable file not found in $PATH" in str(e.value)


def test_missing_absolute_path_is_127(tmp_path):
    with pytest.raises(ExecError) as e:
        lookup(str(tmp_path / "missing"), [])
    assert e.value.status == 127
    assert "no such file or directory" in str(e.value)


def test_not_executable_is_126(tmp_path):
    f = tmp_path / "data"
    f.write_text("x")
    os.chmod(f, 0o644)
    with pytest.raises(ExecError) as e:
        lookup(str(f), [])
    assert e.value.status == 126
    assert "permission denied" in str(e.value)
