"""Without root, every ``kago`` verb says in one line that kago needs root and exits 125
(docker's status for daemon errors), and leaves nothing behind; --help and --version still
answer."""

import os

import pytest

from kago.cli import main as cli

VERBS = sorted(v for v in cli.VERBS if v != "version")


@pytest.fixture
def non_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_says_it_needs_root(non_root, verb, tmp_path, capsys):
    root = tmp_path / "root"
    code = cli.main(["--root", str(root), verb, "x", "/nonexistent"])
    out, err = capsys.readouterr()
    assert code == 125
    assert out == ""
    assert err.count("\n") == 1 and "kago needs root" in err, err
    assert not root.exists()


def test_help_and_version_answer_without_root(non_root, capsys):
    assert cli.main(["--version"]) == 0
    assert cli.main(["--help"]) == 0
    assert cli.main(["version"]) == 0
    with pytest.raises(SystemExit) as e:
        cli.main(["ps", "--help"])
    assert e.value.code == 0
    assert "kago needs root" not in capsys.readouterr().err
