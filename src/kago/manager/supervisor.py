"""One supervisor per manager root: it starts detached containers, reaps them, records how they
ended, restarts them by policy and copies their output into rotated logs.

Why one process for all containers (and not conmon per container): memory. Each conmon is a
~1 MB C process; this is one Python process (~10 MB, shared by every container), so the memory
kago adds per detached container is a record, two pipe buffers and a few fds
(bench/supervisor_memory measures it).

How it holds on to containers:

- It is a child subreaper (PR_SET_CHILD_SUBREAPER) and it starts every container itself (the
  runtime is called in this process, or as its child), so each container's init ends up as
  its child: it reaps it at once (a VM's PID 1 was seen to reap orphans 1-2 s late) and gets the real
  exit status. OOM kills are read from the container's cgroup before the runtime deletes it.
- A container's stdout and stderr are named FIFOs under RUNROOT/fifos/<id>, which the
  container holds open read-write: if the supervisor dies, the container's writes never fail
  with EPIPE (they block once the 64 KiB pipe is full), and a new supervisor reopens the FIFOs
  and carries on. It adopts running containers it did not start through a pidfd, which says
  when they end but not how: their exit status is recorded as unknown.
- Nothing ``kago ps`` shows depends on this process being alive: live state comes from the
  runtime and /proc, this process only adds exit codes and restarts to the records.
- When a container ends, its rootfs mount and network attachment are released
  (``Manager.release``, docker's behaviour; a restart or ``kago start`` prepares them again).
  That needs kago.network and pyroute2 (~18 MB, ~150 ms to import), which this process never
  loads: a forked releaser does it, for every container that ended meanwhile in one go, under
  each record's lock. A start worker takes the same lock and prepares what a release took.

It is started on demand by the first command that needs it, holds RUNROOT/supervisor.lock
for its lifetime (so a second one exits at once), and exits when it has had nothing to do for
the idle timeout: no container watched, starting, restarting or being released, no request
pending (subscribers to events, such as a definition's agent, do not keep it). The timeout is
``KAGO_SUPERVISOR_IDLE`` seconds in its environment, else ``{"supervisor": {"idle_timeout":
N}}`` in ROOT/kago.json, else 30. Containers keep running when it exits or is killed; the next
command that needs it starts it again.

Protocol: a unix stream socket, one JSON object per line each way.

    {"op": "ping"}                          -> {"ok": true, "pid": N, "watching": [ids],
                                               "restarting": [ids], "idle_timeout": s,
                                               "dropped": {id: log lines dropped}}
    {"op": "start", "id": ID, "attached": b} -> {"ok": true, "pid": N} | {"ok": false,
                                               "error": "...", "code": 125|126|127}
    {"op": "wait", "id": ID}                -> when it has exited: {"ok": true, "exit_code": N,
                                               "oom_killed": b}
    {"op": "events"}                        -> a stream of {"event": "start"|"exit"|
                                               "restart", "id": ID, ...}
    {"op": "quit"}                          -> {"ok": true}, then it exits (containers stay)
    {"op": "adopt", "id": ID}               -> a start whose supervisor died, as it went:
                                               {"ok": true, "pid": N} | {"ok": false, ...}
    {"op": "foreground", "id": ID}          -> {"ok": true}; `kago run -it` keeps this
                                               connection open: its end while the record
                                               still says foreground means the command line
                                               died, and the container is adopted
                                               (adoption.py)

It never imports ``subprocess`` or ``threading``: the runtime forks from this process, which
must stay single-threaded.
"""

import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import sys
import time

from kago.errors import KagoError, describe
from kago.manager import adoption, logs
from kago.manager.config import parse_restart
from kago.manager.errors import ManagerError, NoSuchContainer
from kago.manager.journal import creator, fault
from kago.manager.paths import Paths
from kago.manager.records import Records

STREAMS = ("stdout", "stderr")
RESTART_DELAY_MIN = 0.1     # docker: 100 ms, doubled each time, reset after 10 s of running
RESTART_DELAY_MAX = 10.0
RESTART_RESET_AFTER = 10.0
WORKER_TIMEOUT = 60.0       # a start that takes longer is stuck (a hook that never returns)


IDLE_TIMEOUT = 30.0
RELEASER_WAIT = 10.0        # at exit, how long to wait for a releaser still at work
RELEASE_POLL = 0.05         # a restart due while its container is being released waits so
RETRY_DELAY = 0.5           # an end not recorded, a listener paused (EMFILE): tried again so


def idle_timeout(paths=None):
    """Seconds without anything to do before the supervisor exits: KAGO_SUPERVISOR_IDLE, else
    ROOT/kago.json's {"supervisor": {"idle_timeout": N}}, else 30."""
    text = os.environ.get("KAGO_SUPERVISOR_IDLE")
    if text is None and paths is not None:
        try:
            with open(os.path.join(paths.root, "kago.json")) as f:
                text = ((json.load(f).get("supervisor") or {}).get("idle_timeout"))
        except (OSError, ValueError, AttributeError):
            text = None
    try:
        value = float(IDLE_TIMEOUT if text is None else text)
    except (TypeError, ValueError):
        return IDLE_TIMEOUT
    return value if value >= 0 else IDLE_TIMEOUT


class Watched:
    """A running container this supervisor looks after."""

    __slots__ = (
        "attached",
        "child",
        "cid",
        "log",
        "pid",
        "pid_start",
        "pidfd",
        "readers",
        "started",
    )

    def __init__(self, cid, pid, pid_start, child):
        self.cid, self.pid, self.pid_start, self.child = cid, pid, pid_start, child
        self.pidfd = None
        self.readers = {}
        self.log = None
        self.started = time.monotonic()
        self.attached = False


class Client:
    __slots__ = ("buf", "foreground", "sock", "subscribed")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.subscribed = False
        self.foreground = None  # the cid of a `kago run -it` that holds this connection

    def send(self, doc):
        try:
            self.sock.sendall((json.dumps(doc) + "\n").encode())
            return True
        except OSError:
            return False


class Supervisor:
    def __init__(self, paths, lock_fd=None):
        self.paths = paths
        self.lock_fd = lock_fd     # RUNROOT/supervisor.lock: closed in the releaser
        self.records = Records(paths)
        self.sel = selectors.DefaultSelector()
        self.watched = {}          # cid -> Watched
        self.by_pid = {}           # pid -> Watched (our children)
        self.waiters = {}          # cid -> [Client]
        self.clients = set()
        self.timers = []           # [(when, cid)] pending restarts
        self.delays = {}           # cid -> next restart delay
        self.runtimes = {}
        self.starting = {}         # worker report fd -> (Watched, Client or None, bytes read)
        self.workers = {}          # worker report fd -> (worker pid, deadline)
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

    # --- set-up
    def serve(self):
        from kago.kernel import consts, libc
        libc.prctl(consts.PR_SET_CHILD_SUBREAPER, 1)
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, _note)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.sel.register(rfd, selectors.EVENT_READ, ("signal", None))
        listener = self._listen()
        self.sel.register(listener, selectors.EVENT_READ, ("listen", None))
        self._adopt()
        try:
            self._loop(rfd)
        finally:
            listener.close()
            try:
                os.unlink(self.paths.socket())
            except FileNotFoundError:
                pass
            for w in list(self.watched.values()):
                self._close_output(w)
            self._wait_releaser()

    def _listen(self):
        path = self.paths.socket()
        try:
            os.unlink(path)  # we hold the lock: a socket file here is a dead supervisor's
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o077)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(64)
        return sock

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
                # `kago run -it`: its own command line waits for it, while it lives
                adoption.adopt_foreground(self, record["id"])
                continue
            if state.get("starter") and state.get("status") != "running":
                adoption.adopt_start(self, record)  # a start whose supervisor died
                continue
            if state.get("status") == "exited" and _wants_release(record) and (
                    not state.get("released") or state.get("network_kept")):
                self._release_later(record["id"])
            if state.get("status") == "restarting":
                self._schedule(record["id"], RESTART_DELAY_MIN)
            elif state.get("status") == "running":
                pid, start = state.get("pid"), state.get("pid_start")
                if _alive(pid, start):
                    w = Watched(record["id"], pid, start, child=False)
                    try:
                        w.pidfd = os.pidfd_open(pid)
                    except OSError:
                        continue
                    self.sel.register(w.pidfd, selectors.EVENT_READ, ("pidfd", w))
                    self._open_output(w, record, create=False)
                    self.watched[w.cid] = w
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
                    _say(f"{key.data[0]}: {describe(e)}")
            try:
                self._run_timers()
            except (OSError, KagoError) as e:
                _say(f"timers: {describe(e)}")
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
        elif kind == "pidfd":
            self._adopted_exit(obj)
        elif kind == "worker":
            self._worker_done(key.fd)

    def _next_timeout(self):
        waits = [when - time.monotonic() for when, _ in self.timers]
        if self.retry_at is not None:
            waits.append(self.retry_at - time.monotonic())
        waits += [deadline - time.monotonic() for _pid, deadline in self.workers.values()]
        if not self._busy():
            waits.append(self.idle_since + self.idle_after - time.monotonic())
        return max(0.0, min(waits)) if waits else None

    def _busy(self):
        """Something to do or to answer. Event subscribers (a definition's agent) only
        listen: they do not keep an idle supervisor alive (they subscribe again to the next
        one, and catch up on what they missed from the records)."""
        return bool(self.watched or self.timers or self.starting or self.releaser
                    or self.to_release or self.unfinished
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
            sock, _ = listener.accept()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # the connection waits in the backlog; a listener left in the selector would
                # spin: take it out until the next timer round
                self.sel.unregister(listener)
                self.listener_paused = listener
                self._retry_later()
                _say(f"cannot accept a client: {describe(e)}: retrying")
            return
        client = Client(sock)
        self.clients.add(client)
        self.sel.register(sock, selectors.EVENT_READ, ("client", client))

    def _client_readable(self, client):
        try:
            data = client.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buf += data
        while b"\n" in client.buf:
            line, client.buf = client.buf.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:
                client.send({"ok": False, "error": "bad request", "code": 125})
                continue
            self._handle(client, request)

    def _drop(self, client):
        self.clients.discard(client)
        if client.foreground:  # a `kago run -it` ended, or died: then we take over
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
                         "dropped": {cid: w.log.dropped for cid, w in self.watched.items()
                                     if w.log is not None and w.log.dropped}})
        elif op == "start":
            self._start_request(client, req.get("id", ""), bool(req.get("attached")))
        elif op == "wait":
            self._wait_request(client, req.get("id", ""))
        elif op == "events":
            client.subscribed = True
            client.send({"ok": True})
        elif op == "foreground":
            client.foreground = req.get("id") or None
            client.send({"ok": True})
        elif op == "adopt":
            self._adopt_request(client, req.get("id", ""))
        elif op == "quit":
            client.send({"ok": True})
            self.running = False
        else:
            client.send({"ok": False, "error": f"unknown request {op!r}", "code": 125})

    def _start_request(self, client, cid, attached):
        try:
            self.start(cid, attached, client)
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

    # --- starting
    def runtime_for(self, record):
        key = (record.get("runtime"), record["runtime_root"])
        if key not in self.runtimes:
            from kago.manager.runtimes import open_runtime
            self.runtimes[key] = open_runtime(*key)
            self.runtimes[key].warm()
            import gc
            gc.freeze()  # what is loaded now stays out of collections: fewer copied pages
            #              in each forked worker (gc.freeze's documented use before fork)
        return self.runtimes[key]

    def start(self, cid, attached=False, client=None):
        """Start the prepared bundle of ``cid`` detached, with its output coming to us.

        The runtime is called in a worker forked for this one start, so that many starts
        run at once (each mostly waits for its own container's set-up): the worker reports
        the pid on a pipe and exits, and the container's init, left without its parent,
        comes to us as the subreaper. ``client`` gets the reply when the worker reports."""
        if cid in self.watched or cid in self.starting_ids():
            raise ManagerError(f"container {cid[:12]} is already running")
        if cid in self.to_release:
            self.to_release.remove(cid)  # not released yet: nothing to prepare again
        record = self.records.load(cid)
        runtime = self.runtime_for(record)
        if runtime.state(cid) is not None:
            runtime.delete(cid, force=True)  # a stopped run of it the runtime still lists
        fifo_dir = self.paths.fifos(cid)
        os.makedirs(os.path.dirname(fifo_dir), 0o700, exist_ok=True)
        os.makedirs(fifo_dir, 0o700, exist_ok=True)
        writers = []
        w = Watched(cid, 0, None, child=True)
        w.attached = attached
        try:
            self._open_output(w, record, create=True)
            # O_RDWR: the container is a reader too, so its writes never get EPIPE even when
            # no supervisor is reading (they block once the pipe is full, until one is back)
            writers = [os.open(os.path.join(fifo_dir, s), os.O_RDWR | os.O_CLOEXEC)
                       for s in STREAMS]
            report, worker = _fork_worker(runtime, cid, self.paths, writers)
            fault("supervisor.forked")
        except BaseException:
            self._close_output(w)
            raise
        finally:
            for fd in writers:
                os.close(fd)
        self.starting[report] = (w, client, b"")
        self.workers[report] = (worker, time.monotonic() + WORKER_TIMEOUT)
        self.sel.register(report, selectors.EVENT_READ, ("worker", None))

    def starting_ids(self):
        return {entry[0].cid for entry in self.starting.values()}

    def _worker_done(self, fd):
        """A worker's report, one JSON line: the container runs (pid) or could not start.
        Taken as soon as the line is complete: the container's init may keep the pipe's
        other end open until it execs its program."""
        w, client, buf = self.starting[fd]
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        buf += chunk
        if chunk and b"\n" not in buf:
            self.starting[fd] = (w, client, buf)
            return
        self._report(fd, buf.split(b"\n", 1)[0])

    def _report(self, fd, data):
        w, client, _buf = self.starting[fd]
        self.sel.unregister(fd)
        os.close(fd)
        del self.starting[fd]
        self.workers.pop(fd, None)
        try:
            report = json.loads(data)
        except ValueError:
            report = self._lost_report(w.cid)
        if "error" in report:
            self._close_output(w)
            error = ManagerError(report["error"])
            error.exit_code = report.get("code", 125)
            self._failed_start(w.cid, error)
            if client is not None:
                client.send({"ok": False, "id": w.cid, "error": report["error"],
                             "code": error.exit_code})
            self._answer_waiters(w.cid, {"ok": True, "exit_code": error.exit_code,
                                         "status": "exited"})
            return
        w.pid, w.pid_start = report["pid"], report["pid_start"]
        self.watched[w.cid] = w
        self.by_pid[w.pid] = w
        self.records.update(w.cid, lambda r: _started(r, w.pid, w.pid_start, w.attached))
        if client is not None:
            client.send({"ok": True, "id": w.cid, "pid": w.pid})
        self._broadcast({"event": "start", "id": w.cid, "pid": w.pid})
        status = self.early.pop(w.pid, None)
        if status is not None:  # it ended before its worker's report reached us
            self._exited(w, status)

    def _lost_report(self, cid):
        """A worker that died without a report: the runtime says whether it started."""
        try:
            rt = self.runtime_for(self.records.load(cid)).state(cid) or {}
        except (NoSuchContainer, ManagerError):
            rt = {}
        pid = rt.get("pid")
        if rt.get("status") in ("running", "paused") and pid:
            from kago.host.procfs import start_time
            return {"pid": pid, "pid_start": start_time(pid)}
        return {"error": f"start {cid[:12]}: the worker died without a report", "code": 125}

    def _failed_start(self, cid, error):
        def fail(r):
            r["state"].pop("starter", None)
            r["state"]["error"] = str(error)
            r["state"]["exit_code"] = getattr(error, "exit_code", 125)
            r["state"]["fresh"] = False
            if r["state"]["status"] == "restarting":
                r["state"]["status"] = "exited"
        try:
            record = self.records.update(cid, fail)
        except NoSuchContainer:
            return
        if _wants_release(record):
            self._release_later(cid)  # docker cleans up after a failed start too

    def _open_output(self, w, record, create):
        fifo_dir = self.paths.fifos(w.cid)
        opts = (record.get("config") or {}).get("log") or {}
        w.log = logs.LogWriter(self.paths.log(w.cid), opts.get("max_size", 10 << 20),
                               opts.get("max_files", 3),
                               warn=lambda text, cid=w.cid: _say(f"{cid[:12]}: {text}"))
        for stream in STREAMS:
            path = os.path.join(fifo_dir, stream)
            if create and not os.path.exists(path):
                os.mkfifo(path, 0o600)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            w.readers[stream] = fd
            self.sel.register(fd, selectors.EVENT_READ, ("fifo", (w, stream)))

    def _output(self, w, stream, fd):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            w.log.write(stream, data)
        else:  # every writer is gone: the container (and all it forked) exited
            self._close_reader(w, stream)

    def _close_reader(self, w, stream):
        fd = w.readers.pop(stream, None)
        if fd is not None:
            self.sel.unregister(fd)
            os.close(fd)
            w.log.flush(stream)

    def _drain(self, w):
        for stream, fd in list(w.readers.items()):
            for _ in range(1024):  # bounded: a process left in the host pid ns may still write
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                w.log.write(stream, data)

    def _close_output(self, w):
        self._drain(w)
        for stream in list(w.readers):
            self._close_reader(w, stream)
        if w.log is not None:
            w.log.close()
            w.log = None

    # --- endings
    def _exited(self, w, code):
        self.watched.pop(w.cid, None)
        self.by_pid.pop(w.pid, None)
        self._close_output(w)
        ran = time.monotonic() - w.started
        if ran >= RESTART_RESET_AFTER:
            self.delays.pop(w.cid, None)
        self._record_end(w.cid, code, w.attached)

    def _record_end(self, cid, code, attached):
        try:
            self._finish(cid, code, unknown=code is None, attached=attached)
            self.unfinished.pop(cid, None)
        except (OSError, KagoError) as e:
            if not _transient(e):
                self.unfinished.pop(cid, None)
                _say(f"{cid[:12]}: recording its end failed: {describe(e)}")
                return
            # the record could not be read or written (no fd left, a full disk): the end is
            # kept and recorded a little later
            if cid not in self.unfinished:
                _say(f"{cid[:12]}: recording its end failed: {describe(e)}: retrying")
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
            self.sel.register(self.listener_paused, selectors.EVENT_READ, ("listen", None))
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
        oom = _oom_killed(record)
        try:
            runtime.delete(cid, force=True)
        except ManagerError as e:
            _say(f"{cid[:12]}: {e}")
        restart = _should_restart(record, code)
        gone = False
        try:
            record = self.records.update(cid, lambda r: _ended(r, code, oom, unknown, restart))
        except NoSuchContainer:
            restart, gone = False, True
        if not gone and _wants_release(record):
            # also before a restart (docker's): the restart prepares them again, and a
            # dynamic address may change
            self._release_later(cid)
        self._broadcast({"event": "exit", "id": cid, "exit_code": code, "oom_killed": oom})
        # docker wait returns at every end, even one a restart policy will undo
        self._answer_waiters(cid, {"ok": True, "exit_code": code, "oom_killed": oom,
                                   "status": "restarting" if restart else "exited"})
        if restart:
            delay = self.delays.get(cid, RESTART_DELAY_MIN)
            self.delays[cid] = min(delay * 2, RESTART_DELAY_MAX)
            self._schedule(cid, delay)
            return
        if (record.get("config") or {}).get("auto_remove") and not attached:
            self._remove(record)

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
            _say(f"{record['id'][:12]}: --rm: {e}")
        finally:
            os.close(null)

    # --- releases
    def _release_later(self, cid):
        if cid not in self.to_release:
            self.to_release.append(cid)
        if not self.adopting:
            self._run_releaser()

    def _run_releaser(self):
        """Fork a releaser for every container waiting, unless one is at work (it is then
        forked again when that one is reaped)."""
        if self.releaser is not None or not self.to_release:
            return
        cids, self.to_release = self.to_release, []
        fds = [key.fd for key in self.sel.get_map().values()]
        if self.lock_fd is not None:
            fds.append(self.lock_fd)
        try:
            self.releaser = (_fork_releaser(self.paths, cids, fds), cids)
        except OSError as e:
            _say(f"cannot fork a releaser: {e}")

    def _wait_releaser(self):
        """At exit: let a releaser at work finish (bounded), so that none outlives us."""
        deadline = time.monotonic() + RELEASER_WAIT
        while self.releaser is not None and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(self.releaser[0], os.WNOHANG)
            except ChildProcessError:
                pid = self.releaser[0]
            if pid:
                self.releaser = None
            else:
                time.sleep(0.01)

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
                _say(f"{self.starting[fd][0].cid[:12]}: start timed out, killing its worker")
                try:
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
                        state = self.records.update(cid, _abandoned)["state"]
                    except NoSuchContainer:
                        pass
                self._answer_waiters(cid, {"ok": True, "exit_code": state.get("exit_code"),
                                           "oom_killed": state.get("oom_killed", False),
                                           "status": state.get("status")})
                continue
            try:
                self.records.update(cid, _count_restart)
                self.start(cid)
            except ManagerError as e:
                _say(f"{cid[:12]}: restart failed: {e}")
                self._answer_waiters(cid, {"ok": True, "exit_code": getattr(e, "exit_code", 125),
                                           "status": "exited"})
            except OSError as e:
                if not _transient(e):
                    _say(f"{cid[:12]}: restart failed: {describe(e)}")
                    self._answer_waiters(cid, {"ok": True, "exit_code": 125,
                                               "status": "exited"})
                    continue
                # no fd left, a full disk: try again after the next delay
                delay = self.delays.get(cid, RESTART_DELAY_MIN)
                self.delays[cid] = min(delay * 2, RESTART_DELAY_MAX)
                _say(f"{cid[:12]}: restart failed: {describe(e)}: retrying in {delay:g} s")
                self._schedule(cid, delay)


def _fork_worker(runtime, cid, paths, writers):
    """Fork a process that prepares the container (``_prepare``), runs ``runtime.start`` with
    its stdio and reports {"pid", "pid_start"} or {"error", "code"} as JSON on the returned
    pipe."""
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(report_w)
        os.set_blocking(report_r, False)
        return report_r, pid
    try:  # the worker: never returns
        import gc
        gc.disable()  # a collection would touch (and so copy) the whole inherited heap
        signal.set_wakeup_fd(-1)  # its signals are not the supervisor's business
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.close(report_r)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(writers[0], 1)
        os.dup2(writers[1], 2)
        try:
            try:
                _prepare(paths, cid)
            except (KagoError, OSError) as e:  # a port taken meanwhile, a network gone...
                from kago.errors import describe
                raise ManagerError(f"container {cid[:12]}: {describe(e)}") from e
            fault("worker.prepared")
            started, start_time = runtime.start(cid, paths.bundle(cid), (0, 1, 2))
            fault("worker.started")
            doc = {"pid": started, "pid_start": start_time}
        except ManagerError as e:
            doc = {"error": str(e), "code": getattr(e, "exit_code", 125)}
        except BaseException as e:  # noqa: BLE001 - reported, never raised past the fork
            doc = {"error": f"start {cid[:12]}: {type(e).__name__}: {e}", "code": 125}
        os.write(report_w, json.dumps(doc).encode() + b"\n")
    finally:
        os._exit(0)


def _prepare(paths, cid):
    """In a start worker: under the record's lock, set up again what an end released (rootfs
    mount, network: ``Manager.prepare_locked``, which imports kago.network only then) and
    mark the record ``fresh``, so a releaser still to come leaves this start alone. A start
    right after create finds everything in place and imports nothing."""
    records = Records(paths)
    with records.lock(cid):
        record = records.load(cid)
        state = record["state"]
        state["starter"] = creator()  # a new supervisor adopts this start if we are orphaned
        rootfs = record.get("rootfs") or {}
        if state.get("released") or (rootfs.get("kind") == "image"
                                     and not os.path.ismount(rootfs["path"])):
            from kago.manager.engine import Manager
            Manager(paths.root, paths.runroot).prepare_locked(record)
        else:
            state["fresh"] = True
        records.save(record)


def _fork_releaser(paths, cids, fds):
    """Fork a process that releases ``cids`` (``Manager.release``) and exits; its pid. It
    closes ``fds`` first (the supervisor's sockets, FIFOs and lock), so that a client sees
    the supervisor's end when it comes, and a new supervisor can take the lock."""
    pid = os.fork()
    if pid:
        return pid
    try:  # the releaser: never returns
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        from kago.manager.engine import Manager
        mgr = Manager(paths.root, paths.runroot)
        for cid in cids:
            try:
                mgr.release(cid, by="supervisor")
            except Exception as e:  # noqa: BLE001 - logged; the next start prepares anyway
                _say(f"{cid[:12]}: {e}")
    finally:
        os._exit(0)


def _wants_release(record):
    """Whether an end of this container should be followed by a release at all (the
    releaser checks the rest under the record's lock)."""
    state = record.get("state") or {}
    return not (state.get("removing") or state.get("foreground")
                or (record.get("config") or {}).get("auto_remove"))


# --- record edits (run under the record's lock) ----------------------------------------------

def _started(r, pid, pid_start, attached):
    s = r["state"]
    s.pop("starter", None)
    s.update(status="running", pid=pid, pid_start=pid_start, started_at=time.time(),
             finished_at=0.0, exit_code=None, oom_killed=False, error="", attached=attached)


def _ended(r, code, oom, unknown, restart):
    s = r["state"]
    s.update(status="restarting" if restart else "exited", pid=0, pid_start=None,
             finished_at=time.time(), exit_code=code, oom_killed=oom, fresh=False)
    if unknown:
        s["error"] = "exited while no supervisor was watching: exit status unknown"


def _abandoned(r):
    if r["state"]["status"] == "restarting":
        r["state"]["status"] = "exited"


def _count_restart(r):
    r["state"]["restart_count"] = r["state"].get("restart_count", 0) + 1


def _should_restart(record, code):
    state = record.get("state") or {}
    if state.get("stopped_by_user"):
        return False
    name, retries = parse_restart((record.get("config") or {}).get("restart"))
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        return code != 0 and (retries == 0 or state.get("restart_count", 0) < retries)
    return False


def _oom_killed(record):
    """Read before the runtime deletes the cgroup (runc's state has no such field)."""
    path = record.get("cgroups_path")
    if not path:
        return False
    from kago.runtime.resources import oom_killed_at
    return oom_killed_at(path)


def _alive(pid, start):
    from kago.host.procfs import alive
    return bool(pid) and alive(pid, start)


def _note(signum, frame):
    """Signals only wake the loop (set_wakeup_fd); the work happens there."""


_TRANSIENT = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOSPC, errno.EDQUOT, errno.ENOMEM,
                        errno.ENOBUFS, errno.EAGAIN, errno.EINTR))


def _transient(error):
    """An error that passes when fds, space or memory come back (also found as the cause of
    a KagoError)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in _TRANSIENT:
            return True
        error = error.__cause__ or error.__context__
    return False


def _say(text):
    try:
        sys.stderr.write(f"{logs.timestamp()} {text}\n")
        sys.stderr.flush()
    except OSError:
        pass  # its own log on a full disk: nothing better to do


# --- client side ----------------------------------------------------------------------------

class Connection:
    """A client connection: ``request(op, **fields)``, or ``send`` many then ``receive``."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, op, **fields):
        fields["op"] = op
        self.sock.sendall((json.dumps(fields) + "\n").encode())

    def receive(self, timeout=None):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return None
            except ConnectionResetError:
                data = b""  # it died with our request unread
            if not data:
                from kago.manager.errors import SupervisorGone
                raise SupervisorGone("the supervisor went away")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, op, timeout=None, **fields):
        self.send(op, **fields)
        return self.receive(timeout)

    def close(self):
        self.sock.close()


def connect(paths, spawn=True, timeout=10.0):
    """A Connection to the root's supervisor, starting one if there is none (and ``spawn``)."""
    conn = _try_connect(paths)
    if conn is not None or not spawn:
        return conn
    _spawn(paths)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = _try_connect(paths)
        if conn is not None:
            return conn
        time.sleep(0.01)
    from kago.manager.errors import SupervisorError
    raise SupervisorError(f"the supervisor did not start in {timeout:.0f} s: see "
                          f"{paths.supervisor_log()}")


def _try_connect(paths):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(paths.socket())
    except OSError:
        sock.close()
        return None
    return Connection(sock)


def _spawn(paths):
    """Start a supervisor in its own session, its output to supervisor.log. If another
    command starts one at the same moment, the loser finds the lock taken and exits."""
    from kago.manager import perms
    perms.make_runroot(paths)
    argv = [sys.executable, "-m", "kago.manager.supervisor", "--root", paths.root,
            "--runroot", paths.runroot]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    log = os.open(paths.supervisor_log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                  0o600)
    try:
        os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2)])
    finally:
        os.close(null)
        os.close(log)


def running_pid(paths):
    """The live supervisor's pid, or None (from its pid file; no connection made)."""
    try:
        with open(paths.supervisor_pid()) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = dict(zip(argv[::2], argv[1::2]))
    paths = Paths(opts.get("--root"), opts.get("--runroot"))
    from kago.manager import perms
    perms.make_runroot(paths)
    lock = os.open(os.path.join(paths.runroot, "supervisor.lock"),
                   os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return 0  # another supervisor serves this root
        raise
    from kago import log
    log.configure(paths.supervisor_log())  # the runtime's own warnings go here too
    with open(paths.supervisor_pid() + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(paths.supervisor_pid() + ".tmp", paths.supervisor_pid())
    _say(f"supervisor {os.getpid()} serving {paths.root}")
    try:
        Supervisor(paths, lock).serve()
    finally:
        try:
            os.unlink(paths.supervisor_pid())
        except FileNotFoundError:
            pass
        _say(f"supervisor {os.getpid()} exits")
    return 0


if __name__ == "__main__":
    sys.exit(main())
