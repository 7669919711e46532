"""Crash-safe state: atomic files, names won by exactly one racer, the intent journal, the
fault hook, and network attachment records that are never seen empty (no root needed beyond
what host-mode attaches write: files in a temp dir)."""

import json
import os
import signal
import subprocess
import sys

import pytest

from kago.manager import journal
from kago.manager.definition import Definition, Network
from kago.manager.engine import Manager
from kago.manager.errors import NameInUse, NoSuchContainer
from kago.manager.paths import Paths
from kago.manager.records import Records, new_state
from kago.network import Attachment, state
from kago.network.errors import NetworkError
from kago.network.steps import Steps


def test_create_exclusive_has_one_winner_and_never_an_empty_file(tmp_path):
    path = str(tmp_path / "f")
    journal.create_exclusive(path, b"first")
    with pytest.raises(FileExistsError):
        journal.create_exclusive(path, b"second")
    assert open(path, "rb").read() == b"first"
    assert os.listdir(tmp_path) == ["f"]  # no temp file left either way


def in_processes(count, work):
    """``work(i)`` in ``count`` forked processes released together; their exit codes."""
    go_r, go_w = os.pipe()
    pids = []
    for i in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(go_w)
                os.read(go_r, 1)
                work(i)
                code = 0
            except NameInUse:
                code = 3
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(go_r)
    os.close(go_w)
    return [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]


def test_ten_creates_racing_one_name_one_wins_and_the_losers_leave_no_record(tmp_path):
    root = str(tmp_path / "root")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()

    def create(_i):
        Manager(root, str(tmp_path / "run")).create(Definition(
            rootfs=str(rootfs), network=Network("host"), name="same", command=("true",)))
    codes = in_processes(10, create)
    assert sorted(codes) == [0] + [3] * 9, codes
    recs = Records(Paths(root, str(tmp_path / "run")))
    assert len(recs.all()) == 1
    assert recs.resolve("same")["id"] == recs.all()[0]["id"]


def test_a_record_is_incomplete_until_its_last_step_and_abandoned_when_its_creator_died(
        tmp_path):
    recs = Records(Paths(str(tmp_path / "root"), str(tmp_path / "run")))
    record = {"id": "e1" * 32, "name": "x", "created": 1.0,
              "state": journal.begin(new_state()), "intents": []}
    recs.create(record)
    journal.intend(recs, record, "layer")
    loaded = recs.load("e1" * 32)
    assert journal.incomplete(loaded) and journal.intended(loaded, "layer")
    assert not journal.abandoned(loaded)  # its creator (this process) lives
    loaded["state"]["creator"] = {"pid": os.getpid(), "start": -1}  # another process's
    assert journal.abandoned(loaded)
    journal.finish(record["state"])
    recs.save(record)
    assert not journal.incomplete(recs.load("e1" * 32))


def test_the_fault_hook_kills_only_at_its_step():
    code = "from kago.manager.journal import fault; fault('a'); print('past a'); fault('b')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, KAGO_FAULT_STEP="b"), check=False)
    assert (proc.returncode, proc.stdout) == (-signal.SIGKILL, "past a\n")


class _Nets:
    def __init__(self, root):
        self.state = state.StateDir(root)


def test_an_attachment_record_is_complete_from_its_first_moment(tmp_path, monkeypatch):
    """Another attach reading attachments/ (peers for /etc/hosts) must never find an empty
    file: that failed runs with "unreadable network state (Expecting value ...)"."""
    nets = _Nets(str(tmp_path))
    seen = []
    real = state.write_json

    def spy(path, data):
        for cid in nets.state.attachment_ids():
            try:
                seen.append(state.read_json(nets.state.attachment(cid)))
            except NetworkError as e:
                seen.append(str(e))
        real(path, data)
    monkeypatch.setattr(state, "write_json", spy)
    steps = Steps(nets, Attachment("c1", "host"))
    steps.claim()
    steps.done()
    assert all(isinstance(s, dict) for s in seen), seen
    doc = json.loads(open(nets.state.attachment("c1")).read())
    assert doc["made"] == ["record"] and doc["attachment"]["cid"] == "c1"
    with pytest.raises(Exception, match="c1"):
        Steps(nets, Attachment("c1", "host")).claim()  # the second claim of an id loses


def test_a_record_removed_under_its_creator_is_not_brought_back(tmp_path):
    """rm -f of a container still being created: the creator's next journal save fails
    (its create then undoes what it made) instead of writing the record back."""
    recs = Records(Paths(str(tmp_path / "root"), str(tmp_path / "run")))
    record = {"id": "f1" * 32, "name": "y", "created": 1.0,
              "state": journal.begin(new_state()), "intents": []}
    recs.create(record)
    recs.remove("f1" * 32)
    with pytest.raises(NoSuchContainer):
        journal.intend(recs, record, "layer")
    assert recs.ids() == []


def test_intend_saves_once_for_many_steps_and_not_again_for_known_ones(tmp_path):
    saved = []

    class Counting:
        def save(self, record, existing=False):
            saved.append(list(record["intents"]))

    record = {"intents": []}
    journal.intend(Counting(), record, "ids", "layer", "mount")
    journal.intend(Counting(), record, "layer")  # journalled already: no write
    journal.intend(Counting(), record, "mount", "network")
    assert saved == [["ids", "layer", "mount"], ["ids", "layer", "mount", "network"]]


def test_a_batch_syncs_each_filesystem_once_at_its_end(tmp_path, monkeypatch):
    from kago.kernel import libc
    calls = []
    monkeypatch.setattr(libc, "syncfs", lambda fd, shown=None: calls.append(shown))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with journal.batch() as b:
        journal.write_atomic(str(tmp_path / "a" / "x"), b"1")
        journal.write_atomic(str(tmp_path / "b" / "y"), b"2")
        b.dirs.add(str(tmp_path / "gone"))  # removed meanwhile: skipped
        assert calls == []
    assert len(calls) == 1 and calls[0].startswith(str(tmp_path))
