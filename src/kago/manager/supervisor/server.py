"""The supervisor's process: set-up (subreaper, signals through a wakeup fd, the socket), the
adoption of what a previous supervisor left (adoption.py), and the loop: one selector for the
signal pipe, the listener, clients, output FIFOs, pidfds of adopted containers and start
workers' reports; each event is dispatched to its half (starts.py, output.py, endings.py,
releases.py). An event's failure (no fd left, a full disk) is logged and the loop goes on: it
supervises every container of the root. It exits after ``idle_timeout`` with nothing to do.

It never imports ``subprocess`` or ``threading``: the runtime forks from this process, which
must stay single-threaded.
"""

import errno
import os
import _signal as signal  # signal.py adds enums (and imports enum): not needed here
import time

from kago.errors import KagoError, describe
from kago.jsonio import std_loads
from kago.manager import adoption
from kago.manager.errors import ManagerError, NoSuchContainer
from kago.manager.records import Records
from kago.manager.supervisor import restart as policy
from kago.manager.supervisor.console import Console
from kago.manager.supervisor.endings import Endings
from kago.manager.supervisor.health import Health
from kago.manager.supervisor.output import Output
from kago.manager.supervisor.poll import EVENT_READ, Selector
from kago.manager.supervisor.releases import Releases, wants_release
from kago.manager.supervisor.runs import Runs, received_fds
from kago.manager.supervisor.forker import Forker
from kago.manager.supervisor.starts import Starts
from kago.manager.supervisor.state import (Client, Watched, accept, alive, idle_timeout,
                                           listen_unix, note, say)


FDS_SPACE = 64  # ancillary room for a few fds (CMSG_SPACE(3 * 4) is 32)


class Supervisor(Starts, Forker, Endings, Releases, Console, Output, Health, Runs):
    def __init__(self, paths, lock_fd=None):
        self.paths = paths
        self.lock_fd = lock_fd     # RUNROOT/supervisor.lock: closed in the releaser
        self.records = Records(paths)
        self.sel = Selector()
        self.watched = {}          # cid -> Watched
        self.by_pid = {}           # pid -> Watched (our children)
        self.waiters = {}          # cid -> [Client]
        self.attaching = {}        # cid -> [Client] waiting for its terminal (console.py)
        self.clients = set()
        self.timers = []           # [(when, cid)] pending restarts
        self.delays = {}           # cid -> next restart delay
        self.runtimes = {}
        self.starting = {}         # worker report fd -> (Watched, Client or None, bytes read)
        self.workers = {}          # worker report fd -> (worker pid or None, deadline)
        self.early = {}            # pid -> exit status, reaped before its worker reported
        self.to_release = []       # ended containers waiting for the next releaser
        self.releaser = None       # (pid, [cids]) of the releaser at work
        self.idle_after = idle_timeout(paths)
        self.adopting = False      # _adopt batches its releases into one releaser
        self.idle_since = time.monotonic()
        self.running = True
        self.unfinished = {}       # cid -> (code, attached): ends not recorded yet (EMFILE...)
        self.listener_paused = None  # the listener, out of the selector while accept fails
        self.retry_at = None       # when to try those again
        self.probes = {}           # cid -> health.Probe: healthchecks of watched containers

    # --- set-up
    def serve(self):
        from kago.kernel.subreaper import become_subreaper  # not libc: see its module
        become_subreaper()
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, note)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(rfd, EVENT_READ, ("signal", None))
        listener = self._listen()
        self.sel.register(listener, EVENT_READ, ("listen", None))
        self._adopt()
        try:
            self._loop(rfd)
        finally:
            listener.close()
            self._runs_close()  # the run server exits once its requests are done
            self._forker_close()
            try:
                os.unlink(self.paths.socket())
            except FileNotFoundError:
                pass
            for w in list(self.watched.values()):
                self._close_output(w)
            self._wait_releaser()

    def _listen(self):
        # we hold the lock: a socket file there is a dead supervisor's
        return listen_unix(self.paths.socket(), 64)

    def _adopt(self):
        """Containers a previous supervisor started: watch the live ones, settle the rest, and
        release ended ones that still hold their rootfs mount and network (an end recorded
        while the releaser could not run, or by a kago without releases)."""
        self.adopting = True
        try:
            self._adopt_all()
        finally:
            self.adopting = False
        self._run_releaser()

    def _adopt_all(self):
        for record in self.records.all():
            state = record.get("state") or {}
            if state.get("foreground"):
                # `kago run -i`: its own command line waits for it, while it lives
                adoption.adopt_foreground(self, record["id"])
                continue
            if state.get("starter") and state.get("status") != "running":
                adoption.adopt_start(self, record)  # a start whose supervisor died
                continue
            if state.get("status") == "exited" and wants_release(record) and (
                    not state.get("released") or state.get("network_kept")):
                self._release_later(record["id"])
            if state.get("status") == "restarting":
                self._schedule(record["id"], policy.RESTART_DELAY_MIN)
            elif state.get("status") == "running":
                pid, start = state.get("pid"), state.get("pid_start")
                if alive(pid, start):
                    w = Watched(record["id"], pid, start, child=False)
                    try:
                        w.pidfd = os.pidfd_open(pid)
                    except OSError:
                        continue
                    self.sel.register(w.pidfd, EVENT_READ, ("pidfd", w))
                    self._open_output(w, record, create=False)
                    self.watched[w.cid] = w
                    self._health_watch(w.cid, record)
                else:
                    self._finish(record["id"], None, unknown=True)

    # --- the loop
    def _loop(self, signal_fd):
        while self.running:
            timeout = self._next_timeout()
            for key, mask in self.sel.select(timeout):
                try:
                    self._event(key, signal_fd)
                except (OSError, KagoError) as e:
                    # no fd left (EMFILE), a full disk...: this event's work failed, but the
                    # supervisor of every container of the root must go on
                    say(f"{key.data[0]}: {describe(e)}")
            try:
                self._run_timers()
                self._health_timers()
                self._runs_timer()
                self._forker_timer()
            except (OSError, KagoError) as e:
                say(f"timers: {describe(e)}")
            if self._idle():
                break

    def _event(self, key, signal_fd):
        kind, obj = key.data
        if kind == "signal":
            self._signals(signal_fd)
        elif kind == "listen":
            self._accept(key.fileobj)
        elif kind == "client":
            self._client_readable(obj)
        elif kind == "fifo":
            self._output(obj[0], obj[1], key.fd)
        elif kind == "console":
            self._console_event(obj, key.fileobj)
        elif kind == "pty":
            self._pty_output(obj)
        elif kind == "pidfd":
            self._adopted_exit(obj)
        elif kind == "worker":
            self._worker_done(key.fd)
        elif kind == "health":
            self._health_report(obj)
        elif kind == "runs":
            self._runs_readable()
        elif kind == "forker":
            self._forker_readable()

    def _next_timeout(self):
        waits = [when - time.monotonic() for when, _ in self.timers]
        if self.retry_at is not None:
            waits.append(self.retry_at - time.monotonic())
        waits += [deadline - time.monotonic() for _pid, deadline in self.workers.values()]
        waits += self._health_waits()
        for idle_at in (self._runs_idle_at(), self._forker_idle_at()):
            if idle_at is not None:
                waits.append(idle_at - time.monotonic())
        if not self._busy():
            waits.append(self.idle_since + self.idle_after - time.monotonic())
        return max(0.0, min(waits)) if waits else None

    def _busy(self):
        """Something to do or to answer. Event subscribers (a definition's agent) only
        listen: they do not keep an idle supervisor alive (they subscribe again to the next
        one, and catch up on what they missed from the records)."""
        return bool(self.watched or self.timers or self.starting or self.releaser
                    or self.to_release or self.unfinished or self.runs_inflight
                    or any(not c.subscribed for c in self.clients))

    def _idle(self):
        if self._busy():
            self.idle_since = time.monotonic()
            return False
        return time.monotonic() - self.idle_since >= self.idle_after

    def _signals(self, fd):
        try:
            got = os.read(fd, 4096)
        except BlockingIOError:
            got = b""
        if any(s in got for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)):
            self.running = False
        self._reap()

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            if self.releaser is not None and pid == self.releaser[0]:
                self.releaser = None
                self._run_releaser()  # the containers that ended meanwhile
                continue
            if self._runs_reaped(pid) or self._forker_reaped(pid):
                continue
            w = self.by_pid.pop(pid, None)
            if w is not None:
                self._exited(w, code)
            elif self.starting:
                # a container that ended before its worker's report came (or a worker, or a
                # helper we spawned): kept until the report says whose it is
                self.early[pid] = code
                if len(self.early) > 4096:
                    self.early.pop(next(iter(self.early)))

    def _adopted_exit(self, w):
        self.sel.unregister(w.pidfd)
        os.close(w.pidfd)
        w.pidfd = None
        self._exited(w, None)

    # --- clients
    def _accept(self, listener):
        try:
            sock = accept(listener)
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # the connection waits in the backlog; a listener left in the selector would
                # spin: take it out until the next timer round
                self.sel.unregister(listener)
                self.listener_paused = listener
                self._retry_later()
                say(f"cannot accept a client: {describe(e)}: retrying")
            return
        client = Client(sock)
        self.clients.add(client)
        self.sel.register(sock, EVENT_READ, ("client", client))

    def _client_readable(self, client):
        fds = []
        try:  # a run request passes the command line's stdio with its first bytes
            data, anc, _flags, _addr = client.sock.recvmsg(65536, FDS_SPACE)
            fds = received_fds(anc)
        except OSError:
            data = b""
        try:
            if not data:
                self._drop(client)
                return
            client.buf += data
            while b"\n" in client.buf:
                line, client.buf = client.buf.split(b"\n", 1)
                try:
                    request = std_loads(line)
                except ValueError:
                    client.send({"ok": False, "error": "bad request", "code": 125})
                    continue
                if isinstance(request, dict) and request.get("op") == "run":
                    self._handoff(client, line, fds)
                    return
                self._handle(client, request)
        finally:
            for fd in fds:
                os.close(fd)

    def _handoff(self, client, line, fds):
        """A run request goes to the run server (runs.py), the connection with it."""
        if self._run_request(client, line, fds):
            self.forker_ahead()
            self.clients.discard(client)
            self.sel.unregister(client.sock)
            client.sock.close()  # the run server holds it now

    def _drop(self, client):
        self.clients.discard(client)
        self._detach(client)
        if client.foreground:  # a `kago run -i` ended, or died: then we take over
            adoption.adopt_foreground(self, client.foreground, dropped=True)
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()
        for waiting in self.waiters.values():
            while client in waiting:
                waiting.remove(client)

    def _handle(self, client, req):
        op = req.get("op")
        if op == "ping":
            client.send({"ok": True, "pid": os.getpid(), "watching": sorted(self.watched),
                         "restarting": sorted(cid for _, cid in self.timers),
                         "idle_timeout": self.idle_after,
                         "run_server": {"pid": self.runs_pid, "ready": self.runs_ready,
                                        "requests": self.runs_inflight},
                         "dropped": {cid: w.log.dropped for cid, w in self.watched.items()
                                     if w.log is not None and w.log.dropped}})
        elif op == "start":
            self._start_request(client, req.get("id", ""), bool(req.get("attached")),
                                req.get("restore"))
        elif op == "wait":
            self._wait_request(client, req.get("id", ""))
        elif op == "events":
            client.subscribed = True
            client.send({"ok": True})
        elif op == "foreground":
            client.foreground = req.get("id") or None
            client.send({"ok": True})
        elif op == "attach":
            self._attach_request(client, req.get("id", ""), bool(req.get("before_start")))
        elif op == "adopt":
            self._adopt_request(client, req.get("id", ""))
        elif op == "quit":
            client.send({"ok": True})
            self.running = False
        else:
            client.send({"ok": False, "error": f"unknown request {op!r}", "code": 125})

    def _start_request(self, client, cid, attached, restore=None):
        try:
            self.start(cid, attached, client, restore)
        except ManagerError as e:
            client.send({"ok": False, "id": cid, "error": str(e),
                         "code": getattr(e, "exit_code", 125)})
        except OSError as e:
            client.send({"ok": False, "id": cid, "error": f"start {cid[:12]}: {e}",
                         "code": 125})

    def _adopt_request(self, client, cid):
        """A client whose start request lost its supervisor: the start as it went."""
        w = self.watched.get(cid)
        if w is None:
            try:
                w = adoption.adopt_start(self, self.records.load(cid))
            except NoSuchContainer:
                w = None
        if w is not None:
            client.send({"ok": True, "id": cid, "pid": w.pid})
            return
        try:
            error = self.records.load(cid)["state"].get("error")
        except NoSuchContainer:
            error = ""
        client.send({"ok": False, "id": cid, "code": 125,
                     "error": error or f"container {cid[:12]}: it did not start"})

    def _wait_request(self, client, cid):
        if cid in self.watched or cid in self.starting_ids():
            self.waiters.setdefault(cid, []).append(client)
            return
        try:
            state = self.records.load(cid).get("state") or {}
        except NoSuchContainer:
            client.send({"ok": False, "error": f"no such container: {cid}", "code": 125})
            return
        client.send({"ok": True, "exit_code": state.get("exit_code"),
                     "oom_killed": state.get("oom_killed", False),
                     "status": state.get("status")})

    def _broadcast(self, doc):
        for client in list(self.clients):
            if client.subscribed and not client.send(doc):
                self._drop(client)
