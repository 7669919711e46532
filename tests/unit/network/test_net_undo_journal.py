"""The detach journal's saves: each undone step leaves it before the next, but not before the
journal's own removal (no root needed: a host-network attachment's etc files in a temp dir)."""

import os

import pytest

from kago.network import Attachment, state
from kago.network.steps import Steps


class _Nets:
    """What Steps' etc and record undos use of Networks."""

    def __init__(self, root):
        self.state = state.StateDir(root)

    def _refresh_hosts(self, network, gone=None):
        assert network is None  # a host-network attachment has no peers


@pytest.fixture(name="made")
def made_fixture(tmp_path, monkeypatch):
    nets = _Nets(str(tmp_path / "network"))
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("hosts", "resolv.conf", "hostname"):
        (etc / name).write_text("x\n")
    att = Attachment(cid="c" * 64, mode="host", hostname="web", etc_dir=str(etc))
    steps = Steps(nets, att)
    steps.claim()
    steps.mark("etc", lambda: None)
    saved = []
    real = state.write_json
    monkeypatch.setattr(state, "write_json", lambda path, data: (saved.append(data["made"]),
                                                                  real(path, data)))
    return nets, steps, etc, saved


def test_a_detach_removes_the_journal_without_rewriting_it_first(made):
    nets, steps, etc, saved = made
    data = state.read_json(nets.state.attachment(steps.att.cid))
    assert data["made"] == ["record", "etc"]
    assert Steps.load(nets, data).undo(raise_errors=True) == ""
    assert saved == []                                   # the journal went in one unlink
    assert not os.path.exists(nets.state.attachment(steps.att.cid))
    assert os.listdir(etc) == []


def test_a_failed_undo_is_saved_and_a_retry_finishes(made, monkeypatch):
    nets, steps, etc, saved = made
    monkeypatch.setattr(Steps, "_undo_etc", lambda self: (_ for _ in ()).throw(OSError("busy")))
    data = state.read_json(nets.state.attachment(steps.att.cid))
    assert "etc: busy" in Steps.load(nets, data).undo()
    assert saved == [["record", "etc"]]                  # kept, with what is still to undo
    monkeypatch.undo()
    data = state.read_json(nets.state.attachment(steps.att.cid))
    assert Steps.load(nets, data).undo(raise_errors=True) == ""
    assert not os.path.exists(nets.state.attachment(steps.att.cid))
