"""Without root, every ``kago`` verb joins the user's holder; a user without subordinate IDs
gets one line naming ``usermod`` and exit 125 from every verb, and nothing is made; --help and
--version still answer."""

import os

import pytest

from kago.cli import main as cli
from kago.cli import rootless
from kago.host.subids import SubIds

VERBS = sorted(v for v in cli.VERBS if v != "version")


@pytest.fixture
def non_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(rootless, "_subids", lambda: SubIds("alice", 1000, 1000))


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_names_the_missing_subordinate_ids(non_root, verb, tmp_path, capsys):
    root = tmp_path / "root"
    code = cli.main(["--root", str(root), verb, "x", "/nonexistent"])
    out, err = capsys.readouterr()
    assert code == 125
    assert out == ""
    assert err.count("\n") == 1 and "user alice has no range in /etc/subuid" in err, err
    assert "usermod --add-subuids" in err
    assert not root.exists()


def test_help_and_version_answer_without_root(non_root, capsys):
    assert cli.main(["--version"]) == 0
    assert cli.main(["--help"]) == 0
    assert cli.main(["version"]) == 0
    with pytest.raises(SystemExit) as e:
        cli.main(["ps", "--help"])
    assert e.value.code == 0
    assert "subordinate" not in capsys.readouterr().err
