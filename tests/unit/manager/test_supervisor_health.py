"""The supervisor's healthcheck half (supervisor/health.py ``Health``) with recording fakes
for its records, selector and probe workers: when a check is scheduled, how a report becomes
the record's ``state.health`` and the next check's time, and that a worker that cannot be
forked, a container that ended, or a silent worker never stop the checks or leak an fd."""

import json
import os
import selectors
import time

import pytest

from kago.manager.definition import Definition, Healthcheck, to_json
from kago.manager.errors import NoSuchContainer
from kago.manager.supervisor import health as SH

CID = "c" * 64
S = 1_000_000_000


class Records:
    def __init__(self, record):
        self.record = record
        self.writes = 0

    def load(self, cid):
        if self.record is None:
            raise NoSuchContainer(cid)
        return json.loads(json.dumps(self.record))

    def update(self, cid, fn):
        record = self.load(cid)
        fn(record)
        self.record = record
        self.writes += 1
        return record


class Paths:
    def __init__(self, base):
        self.base = self.root = base

    def fifos(self, cid):
        return os.path.join(self.base, cid)


class Runtime:
    def exec_argv(self, cid, args, **_kw):
        return ["/runtime", "--root", "/r", "exec", cid] + list(args)


class Sup(SH.Health):
    def __init__(self, record, base):
        self.records = Records(record)
        self.paths = Paths(base)
        self.sel = selectors.DefaultSelector()
        self.lock_fd = None
        self.probes = {}
        self.events = []

    def runtime_for(self, _record):
        return Runtime()

    def _broadcast(self, doc):
        self.events.append(doc)


def record(check, started_at=None):
    return {"id": CID, "image_config": {},
            "definition": to_json(Definition(image="i", healthcheck=check)),
            "state": {"status": "running", "started_at": started_at or time.time(),
                      "health": {"Status": "starting", "FailingStreak": 0, "Log": []}}}


@pytest.fixture
def fake_worker(monkeypatch):
    """fork_probe replaced: a pipe whose write end the test holds (the worker's report)."""
    made = []

    def fork_probe(runtime, cid, argv, pid_file, timeout, close_fds, spawn=None):
        r, w = os.pipe()
        os.set_blocking(r, False)
        made.append({"argv": argv, "timeout": timeout, "w": w, "r": r, "spawn": spawn})
        return r, 999999
    monkeypatch.setattr(SH, "fork_probe", fork_probe)
    monkeypatch.setattr(SH.os, "killpg", lambda pid, sig: made.append(("killpg", pid, sig)))
    yield made
    for m in made:
        if isinstance(m, dict):
            for fd in (m["r"], m["w"]):
                try:
                    os.close(fd)
                except OSError:
                    pass


def report(sup, worker, doc):
    os.write(worker["w"], json.dumps(doc).encode() + b"\n")
    p = sup.probes[CID]
    sup._health_report(p)
    return p


def test_no_check_no_probe(tmp_path):
    sup = Sup(record(None), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    assert sup.probes == {}
    sup = Sup(record(Healthcheck(("NONE",))), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    assert sup.probes == {}


def test_first_check_after_one_interval_then_a_report_updates_the_record(tmp_path,
                                                                          fake_worker):
    sup = Sup(record(Healthcheck(("CMD-SHELL", "true"), interval=2 * S)), str(tmp_path))
    before = time.monotonic()
    sup._health_watch(CID, sup.records.record)
    p = sup.probes[CID]
    assert before + 1.9 < p.due < time.monotonic() + 2.1
    sup._health_timers()
    assert fake_worker == []  # not due yet
    p.due = time.monotonic() - 0.01
    sup._health_timers()
    worker = fake_worker[0]
    assert worker["argv"] == ["/runtime", "--root", "/r", "exec", "--pid-file",
                              os.path.join(str(tmp_path), CID, "health.pid"), CID,
                              "/bin/sh", "-c", "true"]
    assert worker["timeout"] == 30.0
    assert p.fd is not None and p.due is None
    assert any(d - 30 > 0 for d in sup._health_waits())  # the worker's deadline
    report(sup, worker, {"start": time.time(), "Start": "s", "End": "e", "ExitCode": 0,
                         "Output": "ok\n"})
    health = sup.records.record["state"]["health"]
    assert health == {"Status": "healthy", "FailingStreak": 0,
                      "Log": [{"Start": "s", "End": "e", "ExitCode": 0, "Output": "ok\n"}]}
    assert sup.events == [{"event": "health_status", "id": CID, "status": "healthy"}]
    assert p.fd is None and p.due > time.monotonic() + 1.5
    from kago.manager import events
    logged = [(d["Action"], d["Actor"]["ID"]) for d in events.read(sup.paths)]
    assert logged == [("health_status: healthy", CID)]  # in the root's event log too
    assert len(sup.sel.get_map()) == 0


def test_a_report_in_two_pieces_is_read_whole(tmp_path, fake_worker):
    sup = Sup(record(Healthcheck(("CMD", "x"))), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    p = sup.probes[CID]
    p.due = 0
    sup._health_timers()
    line = json.dumps({"start": time.time(), "Start": "s", "End": "e", "ExitCode": 1,
                       "Output": "x" * 5000}).encode() + b"\n"
    os.write(fake_worker[0]["w"], line[:100])
    sup._health_report(p)
    assert sup.records.writes == 0 and p.fd is not None
    os.write(fake_worker[0]["w"], line[100:])
    sup._health_report(p)
    assert sup.records.record["state"]["health"]["FailingStreak"] == 1


def test_a_paused_container_is_skipped_without_a_write(tmp_path, fake_worker):
    sup = Sup(record(Healthcheck(("CMD", "x"))), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    sup.probes[CID].due = 0
    sup._health_timers()
    p = report(sup, fake_worker[0], {"skip": True})
    assert sup.records.writes == 0 and p.due is not None


def test_the_end_of_the_container_kills_the_running_check(tmp_path, fake_worker):
    sup = Sup(record(Healthcheck(("CMD", "x"))), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    p = sup.probes[CID]
    p.due = 0
    sup._health_timers()
    sup._health_stop(CID)
    assert ("killpg", 999999, 9) in fake_worker
    assert sup.probes == {} and len(sup.sel.get_map()) == 0
    assert p.fd is None


def test_a_worker_that_cannot_be_forked_is_tried_again(tmp_path, monkeypatch):
    def fail(*_a, **_kw):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(SH, "fork_probe", fail)
    sup = Sup(record(Healthcheck(("CMD", "x"), interval=S)), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    p = sup.probes[CID]
    p.due = 0
    sup._health_timers()
    assert p.fd is None and p.due is not None and p.due > time.monotonic() + 0.5


def test_a_silent_worker_is_killed_at_its_deadline(tmp_path, fake_worker):
    sup = Sup(record(Healthcheck(("CMD", "x"), interval=S)), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    p = sup.probes[CID]
    p.due = 0
    sup._health_timers()
    p.deadline = time.monotonic() - 1
    sup._health_timers()
    assert ("killpg", 999999, 9) in fake_worker
    assert p.fd is None and p.due is not None


def test_a_removed_container_drops_its_probe(tmp_path, fake_worker):
    sup = Sup(record(Healthcheck(("CMD", "x"))), str(tmp_path))
    sup._health_watch(CID, sup.records.record)
    sup.probes[CID].due = 0
    sup._health_timers()
    sup.records.record = None
    report(sup, fake_worker[0], {"start": time.time(), "ExitCode": 0})
    assert sup.probes == {}
