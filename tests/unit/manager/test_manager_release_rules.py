"""What decides whether an ended container's rootfs and network are released, and when the
supervisor counts as idle (records in a temp dir; no root needed, nothing is mounted)."""

import json
import os
import subprocess
import sys
import time

import pytest

from kago.manager import format as F
from kago.manager import supervisor as S
from kago.manager.definition import Definition, to_json
from kago.manager.engine import Manager, mark_removing
from kago.manager.records import new_state
from kago.manager.release import releasable

CID = "c0" * 32


def manager(tmp_path):
    return Manager(str(tmp_path / "root"), str(tmp_path / "run"))


def record(mgr, group=None, definition=None, **state):
    definition = definition or Definition(rootfs="/nonexistent")
    rec = {"id": CID, "name": "kmt-r", "created": 1.0, "definition": to_json(definition),
           "rootfs": {"kind": "dir", "path": "/nonexistent"}, "network": {"mode": "host"},
           "runtime": None, "runtime_root": os.path.join(mgr.paths.runroot, "oci", "kago"),
           "group": group, "state": dict(new_state(), **state)}
    mgr.records.save(rec)
    return rec


def test_a_new_or_prepared_container_is_not_released(tmp_path):
    mgr = manager(tmp_path)
    assert not releasable(mgr.ctx, record(mgr), None)              # created: fresh
    assert not releasable(mgr.ctx, record(mgr, status="exited", fresh=True), None)


def test_an_ended_container_is_released_once(tmp_path):
    mgr = manager(tmp_path)
    assert releasable(mgr.ctx, record(mgr, status="exited", fresh=False), None)
    assert releasable(mgr.ctx, record(mgr, status="restarting", fresh=False), None)
    assert mgr.release(CID) is True
    state = mgr.records.load(CID)["state"]
    assert state["released"] and not state["network_kept"]
    assert mgr.release(CID) is False                            # nothing left to release
    # a record from before releases existed: no "fresh", ended
    old = record(mgr, status="exited")
    del old["state"]["fresh"], old["state"]["released"]
    mgr.records.save(old)
    assert releasable(mgr.ctx, mgr.records.load(CID), None)


def test_a_kept_network_is_released_later(tmp_path):
    mgr = manager(tmp_path)
    rec = record(mgr, status="exited", fresh=False, released=True, network_kept=True)
    assert releasable(mgr.ctx, rec, None)


def test_removing_auto_remove_and_foreground_are_left_alone(tmp_path):
    mgr = manager(tmp_path)
    rec = record(mgr, status="exited", fresh=False)
    mgr.records.update(CID, mark_removing)
    assert not releasable(mgr.ctx, mgr.records.load(CID), None)
    assert not S._wants_release(mgr.records.load(CID))
    rec = record(mgr, definition=Definition(rootfs="/nonexistent", auto_remove=True),
                 status="exited", fresh=False)
    assert not releasable(mgr.ctx, rec, None) and not S._wants_release(rec)
    rec = record(mgr, status="running", foreground=True, fresh=False)
    assert not releasable(mgr.ctx, rec, None) and not S._wants_release(rec)
    assert S._wants_release(record(mgr, status="exited", fresh=False))


def test_a_definition_with_exit_hooks_is_released_by_its_live_agent(tmp_path):
    mgr = manager(tmp_path)
    group = {"key": "k" * 16, "file": "/x.py", "release": "agent"}
    rec = record(mgr, group=group, status="exited", fresh=False)
    assert releasable(mgr.ctx, rec, None)                           # no agent: anyone releases
    # a process that looks like the definition's agent
    agent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                              "kago.manager.define.agent"])
    try:
        os.makedirs(mgr.paths.groups(), exist_ok=True)
        with open(os.path.join(mgr.paths.groups(), group["key"] + ".json"), "w") as f:
            json.dump({"agent": agent.pid, "containers": {}}, f)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the child has exec'd
            with open(f"/proc/{agent.pid}/cmdline", "rb") as f:
                if b"kago.manager.define.agent" in f.read():
                    break
            time.sleep(0.01)
        assert not releasable(mgr.ctx, rec, None)
        assert not releasable(mgr.ctx, rec, "supervisor")
        assert releasable(mgr.ctx, rec, "agent")
    finally:
        agent.kill()
        agent.wait()


def test_ps_shows_no_ports_once_released():
    rec = {"network": {"ports": [{"host_ip": "127.0.0.1", "host_port": 8080,
                                  "container_port": 80, "proto": "tcp"}]},
           "state": new_state()}
    assert F.ports_text(rec) == "127.0.0.1:8080->80/tcp"
    rec["state"]["released"] = True
    assert F.ports_text(rec) == "" and F.released(rec)
    rec["state"]["network_kept"] = True                      # still in use by a sharer
    assert F.ports_text(rec) == "127.0.0.1:8080->80/tcp"


@pytest.fixture(name="paths")
def paths_fixture(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGO_SUPERVISOR_IDLE", raising=False)
    from kago.manager.paths import Paths
    paths = Paths(str(tmp_path / "root"), str(tmp_path / "run"))
    os.makedirs(paths.root)
    return paths


def test_idle_timeout_from_the_environment_the_root_or_the_default(paths, monkeypatch):
    assert S.idle_timeout(paths) == S.IDLE_TIMEOUT
    with open(os.path.join(paths.root, "kago.json"), "w") as f:
        json.dump({"supervisor": {"idle_timeout": 2.5}}, f)
    assert S.idle_timeout(paths) == 2.5
    monkeypatch.setenv("KAGO_SUPERVISOR_IDLE", "7")
    assert S.idle_timeout(paths) == 7.0
    for bad in ("soon", "-1"):
        monkeypatch.setenv("KAGO_SUPERVISOR_IDLE", bad)
        assert S.idle_timeout(paths) == S.IDLE_TIMEOUT


class _Client:
    def __init__(self, subscribed):
        self.subscribed = subscribed


def test_subscribers_do_not_keep_the_supervisor_busy(paths):
    sup = S.Supervisor(paths)
    assert not sup._busy()
    sup.clients.add(_Client(subscribed=True))       # a definition's agent
    assert not sup._busy()
    sup.idle_after = 0
    assert sup._idle()
    sup.clients.add(_Client(subscribed=False))      # a request being served
    assert sup._busy() and not sup._idle()
    sup.clients.clear()
    sup.to_release.append(CID)                      # a release to run
    assert sup._busy()


def test_a_stuck_start_worker_is_killed_and_its_start_fails(paths):
    """A worker past WORKER_TIMEOUT is killed; its start fails "without a report" (here for a
    container whose record is gone, so nothing else is touched)."""
    import selectors as sel_mod
    from kago.manager.supervisor.state import Watched
    sup = S.Supervisor(paths)
    worker = subprocess.Popen(["sleep", "30"])
    report_r, report_w = os.pipe()
    try:
        sup.starting[report_r] = (Watched(CID, 0, None, child=True), None, b"")
        sup.workers[report_r] = (worker.pid, time.monotonic() - 1)
        sup.sel.register(report_r, sel_mod.EVENT_READ, ("worker", None))
        sup._stuck_workers()
        assert worker.wait(timeout=10) == -9
        assert sup.starting == {} and sup.workers == {} and not sup._busy()
    finally:
        worker.kill()
        worker.wait()
        os.close(report_w)


def test_a_paused_listener_is_taken_back_when_the_retry_is_due(paths):
    import socket
    sup = S.Supervisor(paths)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sup.listener_paused = listener
        sup._retry_later()
        sup.retry_at = time.monotonic() - 1
        sup._retries()
        assert sup.listener_paused is None and sup.retry_at is None
        assert sup.sel.get_key(listener).data == ("listen", None)
    finally:
        listener.close()


def test_the_end_of_a_container_being_removed_is_not_written(paths):
    """rm -f / kago down remove the record next: the supervisor leaves it as it is (the same
    file), while an end of any other container is recorded."""
    mgr = Manager(paths.root, paths.runroot)
    record(mgr, status="running", fresh=True, **{"removing": True, "stopped_by_user": True})
    before = os.stat(mgr.paths.record(CID)).st_ino
    sup = S.Supervisor(paths)
    sup._finish(CID, 137)
    assert os.stat(mgr.paths.record(CID)).st_ino == before
    assert mgr.records.load(CID)["state"]["status"] == "running"
    assert mgr.live(mgr.records.load(CID)) == "exited"      # the runtime has no such container
    record(mgr, status="running", fresh=True)
    sup.adopting = True                                       # no releaser forked here
    sup._finish(CID, 3)
    state = mgr.records.load(CID)["state"]
    assert (state["status"], state["exit_code"], state["fresh"]) == ("exited", 3, False)
    assert sup.to_release == [CID]
