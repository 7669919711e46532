"""Starting a container: a worker forked for each start prepares it (what an earlier end
released comes back: ``release.prepare_locked``, under the record's lock), runs
``runtime.start`` with the container's output going to our FIFOs, and reports the pid (or
the error) on a pipe; the container's init, left without its parent, comes to us as the
subreaper. Many starts run at once: each worker mostly waits for its own container's set-up.

The worker records itself as the start's ``starter``, so that a supervisor that takes over
after this one died adopts the start (adoption.py). Fault-injection steps:
``supervisor.forked``, ``worker.prepared``, ``worker.started``.
"""

import os
import _signal as signal  # signal.py adds enums (and imports enum): not needed here
import time

from kago.errors import KagoError
from kago.jsonio import std_dumps, std_loads
from kago.manager import events
from kago.manager.errors import ManagerError, NoSuchContainer
from kago.manager.journal import creator, fault, unsynced
from kago.manager.records import Records
from kago.manager.supervisor.console import wants_console
from kago.manager.supervisor.output import STREAMS
from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.releases import wants_release
from kago.manager.supervisor.state import Watched, say, started

WORKER_TIMEOUT = 60.0       # a start that takes longer is stuck (a hook that never returns)


class Starts:
    """The Supervisor's starting half."""

    def runtime_for(self, record):
        """The runtime of ``record``, for the supervisor's own calls (state, kill, delete):
        not warmed here. The start path is imported and warmed in the start forker
        (forker.py), which forks the workers, so this process stays without it."""
        key = (record.get("runtime"), record["runtime_root"])
        if key not in self.runtimes:
            from kago.manager.runtimes import open_runtime
            self.runtimes[key] = open_runtime(*key)
        return self.runtimes[key]

    def start(self, cid, attached=False, client=None, restore=None):
        """Start the prepared bundle of ``cid`` detached, with its output coming to us
        (``restore``: {"image_path", "criu", "tcp_established"}: restore it from those CRIU
        images instead, its output coming to the same FIFOs and log; checkpoints.py).

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
            console = self._listen_console(w) if wants_console(record) else None
            report = self.fork_start(record, writers, console, restore)
            fault("supervisor.forked")
        except BaseException:
            self._close_output(w)
            raise
        finally:
            for fd in writers:
                os.close(fd)
        self.starting[report] = (w, client, b"")
        self.workers[report] = (None, time.monotonic() + WORKER_TIMEOUT)  # pid: forker.py
        self.sel.register(report, EVENT_READ, ("worker", None))

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
            report = std_loads(data)
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
        with unsynced():
            record = self.records.update(w.cid,
                                         lambda r: started(r, w.pid, w.pid_start, w.attached))
        self._health_watch(w.cid, record)
        if client is not None:
            client.send({"ok": True, "id": w.cid, "pid": w.pid})
        self._broadcast({"event": "start", "id": w.cid, "pid": w.pid})
        events.started(self.paths, record, w.attached)
        status = self.early.pop(w.pid, None)
        if status is not None:  # it ended before its worker's report reached us
            self._exited(w, status)
        elif record["state"].get("stopped_by_user"):
            self._stopped_while_starting(record)

    def _stopped_while_starting(self, record):
        """A stop (or rm -f) that came while this start was on its way (a restart the
        policy began, or a start the user made before stopping it): the user's stop wins,
        as it does over a restart's back-off. Its end comes as any other, not restarted."""
        say(f"{record['id'][:12]}: stopped while it was starting: killing it")
        try:
            self.runtime_for(record).kill(record["id"], signal.SIGKILL, all=True)
        except ManagerError:
            pass  # it ended meanwhile

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
        if wants_release(record):
            self._release_later(cid)  # docker cleans up after a failed start too


def fork_worker(runtime, cid, paths, writers, report_w, console=None, restore=None,
                inherited=()):
    """Fork a process (in the start forker, forker.py) that prepares the container
    (``prepare``), runs ``runtime.start`` with ``writers`` as its stdout and stderr (and
    ``console``, the console socket of a tty container) and reports {"pid", "pid_start"} or
    {"error", "code"} as one JSON line on ``report_w``; returns its pid. The worker closes
    ``inherited`` first (the forker's channel)."""
    pid = os.fork()
    if pid:
        return pid
    try:  # the worker: never returns
        import gc
        gc.disable()  # a collection would touch (and so copy) the whole inherited heap
        signal.set_wakeup_fd(-1)  # its signals are not the supervisor's business
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(writers[0], 1)
        os.dup2(writers[1], 2)
        unsynced().__enter__()  # for this process's life: its edits describe a start
        try:
            try:
                prepare(paths, cid)
            except (KagoError, OSError) as e:  # a port taken meanwhile, a network gone...
                from kago.errors import describe
                raise ManagerError(f"container {cid[:12]}: {describe(e)}") from e
            fault("worker.prepared")
            if restore:
                pid, start_time = runtime.restore(cid, paths.bundle(cid), (0, 1, 2), restore)
            else:
                pid, start_time = runtime.start(cid, paths.bundle(cid), (0, 1, 2),
                                                console=console)
            fault("worker.started")
            doc = {"pid": pid, "pid_start": start_time}
        except ManagerError as e:
            doc = {"error": str(e), "code": getattr(e, "exit_code", 125)}
        except BaseException as e:  # noqa: BLE001 - reported, never raised past the fork
            doc = {"error": f"start {cid[:12]}: {type(e).__name__}: {e}", "code": 125}
        os.write(report_w, std_dumps(doc).encode() + b"\n")
    finally:
        os._exit(0)


def prepare(paths, cid):
    """In a start worker: under the record's lock, set up again what an end released (rootfs
    mount, network: ``release.prepare_locked``, which imports kago.network only then) and
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
            from kago.manager import release
            from kago.manager.context import Context
            release.prepare_locked(Context(paths.root, paths.runroot), record)
        else:
            state["fresh"] = True
        records.save(record)


