"""A container's end: recorded (exit code, OOM kill), its runtime state freed, waiters
answered, its release queued, then a restart scheduled by its policy (restart.py) or, for
--rm, its removal spawned. An end that cannot be recorded for want of fds or space (EMFILE,
ENOSPC...) is kept and recorded again a little later, like a listener paused by EMFILE.
Restarts wait on timers; a start worker past its deadline is killed there too.
"""

import os
import _signal as signal  # signal.py adds enums (and imports enum): not needed here
import sys
import time

from kago.errors import KagoError, describe
from kago.manager import events
from kago.manager.supervisor.settings import of
from kago.manager.errors import ManagerError, NoSuchContainer
from kago.manager.supervisor import restart as policy
from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.releases import wants_release
from kago.manager.supervisor.state import (
    abandoned,
    count_restart,
    ended,
    oom_killed,
    say,
    transient,
)

RELEASE_POLL = 0.05         # a restart due while its container is being released waits so
RETRY_DELAY = 0.5           # an end not recorded, a listener paused (EMFILE): tried again so


class Endings:
    """The Supervisor's half that records ends and restarts."""

    def _exited(self, w, code):
        self.watched.pop(w.cid, None)
        self.by_pid.pop(w.pid, None)
        self._health_stop(w.cid)
        self._close_output(w)
        ran = time.monotonic() - w.started
        if policy.reset(ran):
            self.delays.pop(w.cid, None)
        self._record_end(w.cid, code, w.attached)

    def _record_end(self, cid, code, attached):
        try:
            self._finish(cid, code, unknown=code is None, attached=attached)
            self.unfinished.pop(cid, None)
        except (OSError, KagoError) as e:
            if not transient(e):
                self.unfinished.pop(cid, None)
                say(f"{cid[:12]}: recording its end failed: {describe(e)}")
                return
            # the record could not be read or written (no fd left, a full disk): the end is
            # kept and recorded a little later
            if cid not in self.unfinished:
                say(f"{cid[:12]}: recording its end failed: {describe(e)}: retrying")
            self.unfinished[cid] = (code, attached)
            self._retry_later()

    def _retry_later(self):
        if self.retry_at is None:
            self.retry_at = time.monotonic() + RETRY_DELAY

    def _retries(self):
        """What failed for want of fds or space: the listener, ends not recorded yet."""
        if self.retry_at is None or time.monotonic() < self.retry_at:
            return
        self.retry_at = None
        if self.listener_paused is not None:
            self.sel.register(self.listener_paused, EVENT_READ, ("listen", None))
            self.listener_paused = None
        for cid, (code, attached) in list(self.unfinished.items()):
            self._record_end(cid, code, attached)

    def _finish(self, cid, code, unknown=False, attached=False):
        """Record how ``cid`` ended, free its runtime state, then restart or remove it."""
        try:
            record = self.records.load(cid)
        except NoSuchContainer:
            self._answer_waiters(cid, {"ok": True, "exit_code": code, "oom_killed": False,
                                       "status": "removed"})
            return
        runtime = self.runtime_for(record)
        oom = oom_killed(record)
        try:
            runtime.delete(cid, force=True)
        except ManagerError as e:
            say(f"{cid[:12]}: {e}")
        state = record.get("state") or {}
        decision = policy.decide(of(record).restart, code,
                                 state.get("restart_count", 0),
                                 bool(state.get("stopped_by_user")), self.delays.get(cid))
        restart = decision.restart
        gone = False
        try:
            record = self._update_end(cid, state, lambda r: ended(r, code, oom, unknown, restart))
        except NoSuchContainer:
            restart, gone = False, True
        if not gone and wants_release(record):
            # also before a restart (docker's): the restart prepares them again, and a
            # dynamic address may change
            self._release_later(cid)
        self._broadcast({"event": "exit", "id": cid, "exit_code": code, "oom_killed": oom})
        events.died(self.paths, record, code, oom)
        # docker wait returns at every end, even one a restart policy will undo
        self._answer_waiters(cid, {"ok": True, "exit_code": code, "oom_killed": oom,
                                   "status": "restarting" if restart else "exited"})
        if restart:
            self.delays[cid] = decision.next_delay
            self._schedule(cid, decision.delay)
            return
        if of(record).auto_remove and not attached:
            self._remove(record)

    def _update_end(self, cid, state, edit):
        """The end's record edit (fsynced); none for a container being removed (rm -f, kago
        down): its remover deletes the record next, and a rewrite would only cost a block
        allocated and one freed (on ext4 with ``discard``, a synchronous discard) while the
        remover waits for the record's lock. A removal killed before the record goes leaves
        its status "running" with the runtime's state deleted (above): live status reads
        "exited" (context.live), and the next ``rm -f`` or ``down`` finishes it."""
        if not state.get("removing"):
            return self.records.update(cid, edit)
        return self.records.load(cid)  # NoSuchContainer once removed, as update's

    def _answer_waiters(self, cid, doc):
        for client in self.waiters.pop(cid, []):
            client.send(doc)

    def _remove(self, record):
        """--rm: the full removal (rootfs, network, record) is ``kago rm``'s job; spawn it."""
        argv = [sys.executable, "-m", "kago.cli.main", "--root", self.paths.root,
                "--runroot", self.paths.runroot, "rm", "--force", record["id"]]
        null = os.open(os.devnull, os.O_RDWR)
        try:
            log = os.open(self.paths.supervisor_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.posix_spawn(sys.executable, argv, os.environ, file_actions=[
                    (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                    (os.POSIX_SPAWN_DUP2, log, 2)])
            finally:
                os.close(log)
        except OSError as e:
            say(f"{record['id'][:12]}: --rm: {e}")
        finally:
            os.close(null)

    # --- restarts
    def _schedule(self, cid, delay):
        self.timers.append((time.monotonic() + delay, cid))
        self.timers.sort()

    def _stuck_workers(self):
        """A worker past WORKER_TIMEOUT is killed: its pipe then ends without a report, and
        the start fails with "the worker died without a report"."""
        now = time.monotonic()
        for fd, (pid, deadline) in list(self.workers.items()):
            if now > deadline:
                say(f"{self.starting[fd][0].cid[:12]}: start timed out, killing its worker")
                try:
                    if pid is not None:  # None: the forker has not answered (forker.py)
                        os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._report(fd, b"")

    def _run_timers(self):
        self._stuck_workers()
        self._retries()
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, cid = self.timers.pop(0)
            if self.releaser is not None and cid in self.releaser[1]:
                # its release holds the record's lock: come back rather than block on it
                self._schedule(cid, RELEASE_POLL)
                continue
            try:
                record = self.records.load(cid)
            except NoSuchContainer:
                self._answer_waiters(cid, {"ok": True, "exit_code": None, "status": "removed"})
                continue
            state = record.get("state") or {}
            if state.get("stopped_by_user") or state.get("status") != "restarting":
                if state.get("status") == "restarting":  # stopped during the back-off
                    try:
                        state = self.records.update(cid, abandoned)["state"]
                    except NoSuchContainer:
                        pass
                self._answer_waiters(cid, {"ok": True, "exit_code": state.get("exit_code"),
                                           "oom_killed": state.get("oom_killed", False),
                                           "status": state.get("status")})
                continue
            try:
                self.records.update(cid, count_restart)
                self.start(cid)
            except ManagerError as e:
                say(f"{cid[:12]}: restart failed: {e}")
                self._answer_waiters(cid, {"ok": True, "exit_code": getattr(e, "exit_code", 125),
                                           "status": "exited"})
            except OSError as e:
                if not transient(e):
                    say(f"{cid[:12]}: restart failed: {describe(e)}")
                    self._answer_waiters(cid, {"ok": True, "exit_code": 125,
                                               "status": "exited"})
                    continue
                # no fd left, a full disk: try again after the next delay
                delay = self.delays.get(cid, policy.RESTART_DELAY_MIN)
                self.delays[cid] = policy.backoff(delay)
                say(f"{cid[:12]}: restart failed: {describe(e)}: retrying in {delay:g} s")
                self._schedule(cid, delay)
