"""Running healthchecks: on its timers the supervisor forks a probe worker per check, which
execs the check in the container through the runtime (``exec --pid-file``; with kago's own
runtime, kago.runtime's exec in a forked child: ``in_process``), reads its output
and, past the check's timeout, kills the check's process group inside the container, then
reports one JSON line on a pipe. The loop never waits for a check: the report is one more
fd in its selector (as a start worker's), and the result goes through kago.manager.health's
rules into the record's ``state.health``.

Bounded: the worker kills a check at its timeout (SIGKILL to the exec'd process group, whose
leader the runtime made a session leader, then to the runtime); the supervisor kills a
worker that has not reported ``WORKER_GRACE`` seconds after that. When the container ends its
check is killed the same way and no new one is scheduled; the exec'd processes are in the
container's cgroup and PID namespace, so they make nothing of their own to leave behind.
"""

import os
import _signal as signal  # signal.py adds enums (and imports enum): not needed here
import time

from kago.jsonio import std_dumps, std_loads
from kago.manager import events
from kago.manager import health as H
from kago.manager.supervisor.settings import of
from kago.manager.errors import NoSuchContainer
from kago.manager.supervisor.poll import EVENT_READ, Selector
from kago.manager.supervisor.state import say

_CATCHABLE = tuple(sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}))
WORKER_GRACE = 5.0          # after the check's timeout, how long a silent worker may take
KILL_WAIT = 2.0             # after killing a check, how long the runtime may take to exit


class Probe:
    """One container's healthcheck: its config, when it runs next, the worker at work."""

    __slots__ = ("argv", "buf", "cid", "conf", "deadline", "due", "fd", "started_at",
                 "worker")

    def __init__(self, cid, conf, argv, started_at):
        self.cid, self.conf, self.argv, self.started_at = cid, conf, argv, started_at
        self.due = None
        self.fd = self.worker = self.deadline = None
        self.buf = b""


class Health:
    """The Supervisor's healthcheck half (``self.probes``: cid -> Probe)."""

    def _health_watch(self, cid, record):
        """A running container: schedule its first check, if one applies."""
        self._health_stop(cid)
        image = record.get("image_config") or {}
        conf = H.effective(of(record), image)
        argv = H.probe(conf, image)
        if argv is None:
            return
        state = record.get("state") or {}
        p = Probe(cid, conf, argv, state.get("started_at") or time.time())
        status = (state.get("health") or {}).get("Status", "starting")
        p.due = time.monotonic() + H.next_in(conf, status, time.time() - p.started_at)
        self.probes[cid] = p

    def _health_stop(self, cid):
        """The container ended (or starts again): its check killed, none scheduled."""
        p = self.probes.pop(cid, None)
        if p is not None and p.fd is not None:
            self._health_drop(p, kill=True)

    def _health_drop(self, p, kill):
        try:
            self.sel.unregister(p.fd)
        except (KeyError, ValueError):
            pass
        os.close(p.fd)
        if kill:
            try:  # the worker's group: it and the runtime it spawned
                os.killpg(p.worker, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        p.fd = p.worker = p.deadline = None
        p.buf = b""

    def _health_waits(self):
        now = time.monotonic()
        return [(p.deadline if p.fd is not None else p.due) - now
                for p in self.probes.values() if p.due is not None or p.fd is not None]

    def _health_timers(self):
        now = time.monotonic()
        for p in list(self.probes.values()):
            if p.fd is not None:
                if now > p.deadline:
                    say(f"{p.cid[:12]}: healthcheck worker did not report: killed")
                    # the check first, while the runtime (its parent) still holds its pid
                    _kill_pid_file(os.path.join(self.paths.fifos(p.cid), "health.pid"))
                    self._health_drop(p, kill=True)
                    p.due = now + H.next_in(p.conf, "healthy", now)
                continue
            if p.due is not None and now >= p.due:
                p.due = None
                try:
                    self._health_run(p)
                except OSError as e:  # no fd or memory for a worker: the next round tries
                    say(f"{p.cid[:12]}: cannot run its healthcheck: {e}")
                    p.due = now + H.next_in(p.conf, "healthy", now)

    def _health_run(self, p):
        try:
            runtime = self.runtime_for(self.records.load(p.cid))
        except NoSuchContainer:
            self.probes.pop(p.cid, None)
            return
        pid_file = os.path.join(self.paths.fifos(p.cid), "health.pid")
        argv = runtime.exec_argv(p.cid, p.argv)
        at = argv.index("exec") + 1
        argv[at:at] = ["--pid-file", pid_file]
        fds = [key.fd for key in self.sel.get_map().values()]
        if self.lock_fd is not None:
            fds.append(self.lock_fd)
        timeout = H.timeout(p.conf)
        spawn = in_process(runtime, p.cid, p.argv, pid_file)
        p.fd, p.worker = fork_probe(runtime, p.cid, argv, pid_file, timeout, fds, spawn)
        p.deadline = time.monotonic() + timeout + KILL_WAIT + WORKER_GRACE
        self.sel.register(p.fd, EVENT_READ, ("health", p))

    def _health_report(self, p):
        try:
            chunk = os.read(p.fd, 65536)
        except BlockingIOError:
            return
        p.buf += chunk
        if chunk and b"\n" not in p.buf:
            return  # the rest of the line is on its way
        data, p.buf = p.buf, b""
        self._health_drop(p, kill=False)
        if self.probes.get(p.cid) is not p:
            return  # the container ended meanwhile
        try:
            result = std_loads(data.split(b"\n", 1)[0])
        except ValueError:
            result = {"ExitCode": -1, "Output": "the healthcheck worker died without a report",
                      "start": time.time(), "Start": "", "End": ""}
        status = "starting"
        if not result.get("skip"):  # a paused container is not checked
            since = result.pop("start", time.time()) - p.started_at
            old = {}

            def edit(r):
                state = r["state"]
                old.update(state.get("health") or {})
                state["health"] = H.apply(state.get("health") or H.begin(), result, p.conf,
                                          since)
            try:
                record = self.records.update(p.cid, edit)
            except NoSuchContainer:
                self.probes.pop(p.cid, None)
                return
            status = record["state"]["health"]["Status"]
            if status != old.get("Status"):
                self._broadcast({"event": "health_status", "id": p.cid, "status": status})
                events.container(self.paths, f"health_status: {status}", record)
        p.due = time.monotonic() + H.next_in(p.conf, status, time.time() - p.started_at)


def fork_probe(runtime, cid, argv, pid_file, timeout, close_fds, spawn=None):
    """Fork a worker that runs one check (``argv``: the runtime's exec) and reports docker's
    Log entry ({"Start", "End", "ExitCode", "Output"}, plus "start" in epoch seconds) as one
    JSON line; (report fd, worker pid). The worker leads its own process group."""
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError:
        os.close(report_r)
        os.close(report_w)
        raise
    if pid:
        os.close(report_w)
        os.set_blocking(report_r, False)
        return report_r, pid
    try:  # the worker: never returns
        import gc
        gc.disable()
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in close_fds:  # the supervisor's sockets, FIFOs and lock are not ours
            try:
                os.close(fd)
            except OSError:
                pass
        os.close(report_r)
        try:
            state = runtime.state(cid) or {}
            if state.get("status") == "paused":
                doc = {"skip": True}
            else:
                doc = run_check(argv, pid_file, timeout, spawn)
        except Exception as e:  # noqa: BLE001 - reported as the check's failure
            now = time.time()
            from kago.manager.logs import timestamp
            doc = {"start": now, "Start": timestamp(), "End": timestamp(), "ExitCode": -1,
                   "Output": f"{type(e).__name__}: {e}"}
        try:
            os.write(report_w, std_dumps(doc).encode() + b"\n")
        except OSError:
            pass  # the supervisor is gone
    finally:
        os._exit(0)


def run_check(argv, pid_file, timeout, spawn=None):
    """Run the runtime's exec ``argv`` with its output on a pipe; past ``timeout`` seconds
    kill the check (its process group in the container, then the runtime). ``spawn(stdin,
    out)`` -> pid starts the runtime's part another way (``in_process``)."""
    from kago.manager.logs import timestamp
    start, start_ts = time.time(), timestamp()
    os.makedirs(os.path.dirname(pid_file), 0o700, exist_ok=True)
    try:
        os.unlink(pid_file)
    except FileNotFoundError:
        pass
    out_r, out_w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        if spawn is not None:
            pid = spawn(null, out_w)
        else:
            # default dispositions: what the supervisor ignores is not the check's business
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, out_w, 2)], setsigdef=_CATCHABLE)
    finally:
        os.close(out_w)
        os.close(null)
    data, more = b"", False
    deadline = time.monotonic() + timeout
    timed_out = False
    sel = Selector()
    sel.register(out_r, EVENT_READ)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if not sel.select(left):
            continue
        chunk = os.read(out_r, 65536)
        if not chunk:
            break
        if len(data) < H.MAX_OUTPUT + 1:
            data += chunk
        else:
            more = True
    sel.close()
    if timed_out:
        _kill_pid_file(pid_file)
    code = _wait(pid, KILL_WAIT if timed_out else None)
    os.close(out_r)
    try:
        os.unlink(pid_file)
    except FileNotFoundError:
        pass
    doc = {"start": start, "Start": start_ts, "End": timestamp()}
    if timed_out:
        secs = f"{timeout:g}s"
        doc.update(ExitCode=-1, Output=f"Health check exceeded timeout ({secs})")
    else:
        doc.update(ExitCode=code, Output=H.output(data, more))
    return doc


def _wait(pid, limit):
    """The runtime's exit status; with ``limit``, SIGKILL it after that many seconds."""
    end = None if limit is None else time.monotonic() + limit
    while True:
        got, status = os.waitpid(pid, 0 if end is None else os.WNOHANG)
        if got:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
        if time.monotonic() > end:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            end = None
            continue
        time.sleep(0.01)


def _kill_pid_file(pid_file):
    """SIGKILL the check's process group in the container (the exec'd process leads it)."""
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return
    if pid > 1:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def in_process(runtime, cid, args, pid_file):
    """With kago's own runtime (in process, already imported by the supervisor), the exec
    runs in a forked child of the worker rather than in a new kago-oci: the same steps
    (kago.runtime.exec, with --pid-file), without an interpreter's start. None for any other
    runtime (its binary is run)."""
    store = getattr(runtime, "_store", None)
    if store is None:
        return None

    def spawn(stdin, out):
        pid = os.fork()
        if pid:
            return pid
        code = 255
        try:  # the runtime's part: never returns
            for sig in _CATCHABLE:
                try:
                    signal.signal(sig, signal.SIG_DFL)
                except (OSError, ValueError):
                    pass
            os.dup2(stdin, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            from kago.runtime import exec as ex
            from kago.runtime.options import Options
            st = store()
            proc = ex.process_from_args(st.load(cid), list(args))
            code = ex.execute(st, cid, proc, Options(pid_file=pid_file))
        except BaseException as e:  # noqa: BLE001 - the check's output, as kago-oci's stderr
            try:
                os.write(2, f"kago-oci: {e}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code if 0 <= code <= 255 else 255)
    return spawn
