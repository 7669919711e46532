"""A definition's agent: the process that runs its resident hooks after ``kago up`` returns.

Started by ``kago up`` (only for definitions that have such hooks) in its own session, with
its output in ROOT/groups/<key>.log; ``kago down`` stops it, ``kago reload`` restarts it with
the new file. It loads the definition itself, so hooks are the file's own callables, and runs
one single-threaded poll loop over:

- the supervisor's event stream: ``exit`` -> on("exit") hooks fn(c, status), and on("failure")
  hooks fn(c, error) when the status is not 0 or the OOM killer struck; ``start`` re-arms the
  watches below (a restart makes a new cgroup);
- timers: ``every(ms, times)`` -> fn(c), at most ``times`` times;
- PSI triggers: ``on_pressure(resource, stall_ms, window_ms)`` writes "some <stall> <window>"
  (microseconds) to the container's cgroup2 <resource>.pressure and waits for POLLPRI
  (Documentation/accounting/psi.rst, "Monitoring for pressure thresholds");
- OOM: ``on_oom`` -> the cgroup's OOM watch (an eventfd on v1; on v2 memory.events,
  whose changes poll as POLLPRI);
- signals: ``on_signal("USR1")`` -> fn(c) when this process gets SIGUSR1 (``kago ps FILE``
  shows its pid).

After a container's exit hooks ran, the agent releases its rootfs mount and network
(``Manager.release``; the supervisor leaves such containers to it, so the hooks see the
rootfs). An idle supervisor exits even while the agent is subscribed; the agent then
subscribes to the next one (starting one only when a container of its group should be
running) and catches up on ends it missed from the records.

It exits when the group is gone (``kago down``) or on SIGTERM. Usage (internal):
``python -m kago.manager.define.agent --root R --runroot RR FILE [KEY=VAL...]``.
"""

import heapq
import json
import os
import select
import signal
import sys
import time

from kago.manager.define import hooks as H
from kago.manager.errors import NoSuchContainer


class Agent:
    def __init__(self, mgr, definition, group):
        self.mgr, self.definition, self.group = mgr, definition, group
        self.poller = select.poll()
        self.fds = {}          # fd -> (kind, data)
        self.timers = []       # heap of (when, seq, name, ms, left, fn)
        self.watches = {}      # cid -> [fds] (PSI, OOM) to close on re-arm
        self.conn = None
        self.running = True
        self.seq = 0
        self.ends = {}         # cid -> finished_at of the last end whose hooks ran

    def handle(self, name):
        cid = self.group.containers.get(name)
        record = self.mgr.records.load(cid)
        return H.Handle(self.mgr, record)

    # --- set-up
    def setup(self):
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd)
        wanted = {signal.SIGTERM, signal.SIGINT}
        for c in self.definition.containers:
            wanted |= {getattr(signal, sig) for sig, _fn in c.signals}
        for sig in wanted:
            signal.signal(sig, _note)
        self._watch(rfd, "signal", None)
        now = time.monotonic()
        for c in self.definition.containers:
            for ms, times, fn in c.timers:
                self._timer(now + ms / 1000, c.name, ms, times, fn)
            if c.name in self.group.containers:
                self._arm(c)
        for cid in self.group.containers.values():
            self.ends[cid] = self._finished_at(cid)
        self._subscribe()

    def _watch(self, fd, kind, data, events=select.POLLIN):
        self.poller.register(fd, events)
        self.fds[fd] = (kind, data)

    def _unwatch(self, fd):
        try:
            self.poller.unregister(fd)
        except (KeyError, ValueError):
            pass
        self.fds.pop(fd, None)
        os.close(fd)

    def _timer(self, when, name, ms, left, fn):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, name, ms, left, fn))

    def _subscribe(self):
        """Subscribe to the supervisor's events. One is started only when a container of the
        group should be running (it adopts them if the last one was killed): an idle
        supervisor exits, and the agent must not keep bringing it back."""
        from kago.manager import supervisor
        from kago.manager.errors import ManagerError
        try:
            self.conn = supervisor.connect(self.mgr.paths, spawn=self._any_running())
            if self.conn is None:
                return  # none: nothing of ours runs; the next one is looked for in 1 s
            self.conn.request("events", timeout=5)
        except (ManagerError, OSError) as e:
            H.warn(f"agent: no supervisor events ({e}); exit hooks wait for it")
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return
        self._watch(self.conn.sock.fileno(), "events", None)
        self._catch_up()

    def _any_running(self):
        for cid in self.group.containers.values():
            try:
                status = self.mgr.records.load(cid)["state"].get("status")
            except NoSuchContainer:  # removed meanwhile
                continue
            if status in ("running", "restarting"):
                return True
        return False

    def _finished_at(self, cid):
        try:
            return self.mgr.records.load(cid)["state"].get("finished_at") or 0.0
        except NoSuchContainer:  # removed meanwhile
            return 0.0

    def _catch_up(self):
        """Ends recorded while no supervisor told us (between two supervisors)."""
        for name, cid in list(self.group.containers.items()):
            try:
                state = self.mgr.records.load(cid)["state"]
            except NoSuchContainer:  # removed meanwhile
                continue
            if state.get("status") in ("exited", "restarting") and \
                    (state.get("finished_at") or 0.0) > self.ends.get(cid, 0.0):
                self._ended(name, cid, state.get("exit_code"), state.get("oom_killed"))

    def _ended(self, name, cid, code, oom):
        """A container's end: its exit and failure hooks, then the release they delayed."""
        finished = self._finished_at(cid)
        if finished and finished <= self.ends.get(cid, 0.0):
            return  # its hooks ran already (caught up before the event came)
        self.ends[cid] = finished
        c = self.definition.container(name)
        for fn in c.hooks["exit"]:
            self._fire(name, fn, code)
        if code != 0 or oom:
            reason = "killed by the OOM killer" if oom else f"exited with status {code}"
            for fn in c.hooks["failure"]:
                self._fire(name, fn, reason)
        from kago.errors import KagoError
        try:
            self.mgr.release(cid, by="agent")
        except (KagoError, OSError) as e:
            H.warn(f"agent: {name}: {e}")

    def _disarm(self, cid, ended=False):
        """Close one container's PSI triggers and OOM watch (its cgroup ended or is new);
        when it ended, its OOM hooks run first for kills not yet seen."""
        for fd in self.watches.pop(cid, []):
            kind, data = self.fds.get(fd, (None, None))
            if kind == "oom":
                if ended and data[1].wait(0):
                    for fn in self.definition.container(data[0]).oom:
                        self._fire(data[0], fn)
                data[1].close()
            if fd in self.fds:
                self._unwatch(fd)

    def _arm(self, c):
        """PSI triggers and the OOM watch of one container (again after a restart)."""
        cid = self.group.containers.get(c.name)
        self._disarm(cid)
        if not cid or not (c.pressure or c.oom):
            return
        record = self.mgr.records.load(cid)
        fds = []
        for resource, stall_ms, window_ms, fn in c.pressure:
            from kago.errors import KagoError
            from kago.runtime.resources import pressure_file_at
            try:
                path = pressure_file_at(record["cgroups_path"], resource)
            except KagoError as e:
                H.warn(f"agent: {c.name}: cannot watch {resource} pressure: {e}")
                continue
            try:
                fd = _psi_trigger(path, stall_ms, window_ms)
            except OSError as e:
                H.warn(f"agent: {c.name}: cannot watch {resource} pressure ({path}: "
                       f"{os.strerror(e.errno).lower()})")
                continue
            self._watch(fd, "psi", (c.name, fn), select.POLLPRI)
            fds.append(fd)
        if c.oom:
            from kago.errors import KagoError
            from kago.runtime.resources import oom_watch_at
            try:
                watch = oom_watch_at(record["cgroups_path"])
            except KagoError as e:
                H.warn(f"agent: {c.name}: cannot watch for OOM: {e}")
                watch = None
            if watch is not None:
                try:
                    fd = _oom_fd(watch)
                except OSError as e:
                    watch.close()
                    H.warn(f"agent: {c.name}: cannot watch for OOM ({watch.dir}/{watch.file}: "
                           f"{os.strerror(e.errno).lower()})")
                else:
                    # a cgroup file always polls readable: only its change notice counts
                    self._watch(fd, "oom", (c.name, watch),
                                select.POLLIN if watch.fileno() is not None else select.POLLPRI)
                    fds.append(fd)
        self.watches[cid] = fds

    # --- the loop
    def run(self):
        self.setup()
        last_check = time.monotonic()
        while self.running:
            timeout = 1000
            if self.timers:
                timeout = max(0, min(timeout, int((self.timers[0][0] - time.monotonic()) * 1000)))
            for fd, events in self.poller.poll(timeout):
                kind, data = self.fds.get(fd, (None, None))
                if kind == "signal":
                    self._signals(fd)
                elif kind == "events":
                    self._events()
                elif kind == "psi":
                    self._pressure(fd, events, data)
                elif kind == "oom":
                    self._oom(fd, data)
            self._run_timers()
            if time.monotonic() - last_check > 1:
                last_check = time.monotonic()
                if not os.path.exists(self.group.file):
                    break
                if self.conn is None:
                    self._subscribe()

    def _pressure(self, fd, events, data):
        """A PSI trigger fired (POLLPRI), or its cgroup was removed (POLLERR as well, on
        every poll from then on): fire once, or drop the trigger."""
        if events & (select.POLLERR | select.POLLHUP | select.POLLNVAL):
            for fds in self.watches.values():
                if fd in fds:
                    fds.remove(fd)
            self._unwatch(fd)
        elif events & select.POLLPRI:
            self._fire(data[0], data[1])

    def _fire(self, name, fn, *args):
        try:
            handle = self.handle(name)
        except Exception:  # noqa: BLE001 - the container went away meanwhile
            return
        ok, result = H.call(fn, handle, *args)
        if not ok:
            H.warn(f"agent: {name}: hook {getattr(fn, '__name__', fn)} failed: {result}")

    def _signals(self, fd):
        try:
            got = os.read(fd, 256)
        except BlockingIOError:
            return
        for signum in got:
            if signum in (signal.SIGTERM, signal.SIGINT):
                self.running = False
                continue
            name = signal.Signals(signum).name
            for c in self.definition.containers:
                for sig, fn in c.signals:
                    if sig == name and c.name in self.group.containers:
                        self._fire(c.name, fn)

    def _events(self):
        from kago.manager.errors import ManagerError
        try:
            event = self.conn.receive(timeout=1)
        except (ManagerError, OSError, ValueError):
            fd = self.conn.sock.fileno()  # the supervisor went away: subscribe again later
            self.poller.unregister(fd)
            self.fds.pop(fd, None)
            self.conn.close()
            self.conn = None
            return
        if event is None:
            return
        by_id = {cid: name for name, cid in self.group.containers.items()}
        name = by_id.get(event.get("id"))
        if name is None:
            return
        c = self.definition.container(name)
        if event.get("event") == "exit":
            self._disarm(event["id"], ended=True)  # the runtime removes its cgroup
            self._ended(name, event["id"], event.get("exit_code"), event.get("oom_killed"))
        elif event.get("event") in ("start", "restart"):
            self._arm(c)
        while self.conn is not None and b"\n" in self.conn.buf:
            self._events()

    def _oom(self, fd, data):
        name, watch = data
        if watch.fileno() is not None:
            try:
                os.eventfd_read(fd)
            except BlockingIOError:
                return
        else:
            try:
                os.pread(fd, 4096, 0)  # a read takes the change notice (kernfs poll)
            except OSError:  # the cgroup is gone: its file polls as changed for ever
                for fds in self.watches.values():
                    if fd in fds:
                        fds.remove(fd)
                watch.close()
                self._unwatch(fd)
                return
        if watch.wait(0.05):  # the eventfd also fires when the cgroup is removed
            for fn in self.definition.container(name).oom:
                self._fire(name, fn)

    def _run_timers(self):
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _when, _seq, name, ms, left, fn = heapq.heappop(self.timers)
            self._fire(name, fn)
            if left is None or left > 1:
                self._timer(now + ms / 1000, name, ms, None if left is None else left - 1, fn)


def _psi_trigger(path, stall_ms, window_ms):
    """An fd of ``path`` with a PSI trigger armed (POLLPRI when it fires).

    Without CAP_SYS_RESOURCE the kernel (6.x) only takes a 2 s window (psi.rst: "unprivileged
    triggers"); then the stall is scaled to the same share of a 2 s window."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        try:
            os.write(fd, f"some {stall_ms * 1000} {window_ms * 1000}\0".encode())
        except OSError as e:
            if e.errno != 22 or window_ms == 2000:
                raise
            stall = max(1, stall_ms * 2000 // window_ms)
            os.write(fd, f"some {stall * 1000} 2000000\0".encode())
            H.warn(f"agent: {path}: a {window_ms} ms window needs CAP_SYS_RESOURCE; "
                   f"watching {stall} ms in 2000 ms instead")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _oom_fd(watch):
    """What the agent polls for ``watch``: a copy of its eventfd (v1), or else the file of its
    counter (memory.events on v2), read once: the kernel notes every change of it as POLLPRI
    until the next read (cgroup-v2.rst, "memory.events": "a file modified event")."""
    if watch.fileno() is not None:
        return os.dup(watch.fileno())
    fd = os.open(f"{watch.dir}/{watch.file}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.pread(fd, 4096, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _note(signum, frame):
    """Signals only wake the loop (set_wakeup_fd)."""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = {}
    while argv and argv[0].startswith("--"):
        opts[argv[0]] = argv[1]
        argv = argv[2:]
    path, pairs = argv[0], argv[1:]
    env = dict(p.split("=", 1) for p in pairs)
    from kago.manager.define.group import Group
    from kago.manager.define.load import load
    from kago.manager.engine import Manager
    mgr = Manager(opts.get("--root"), opts.get("--runroot"))
    definition = load(path, env)
    group = Group(mgr, path)
    sys.stderr.write(f"agent {os.getpid()} for {path}: "
                     f"{json.dumps(sorted(group.containers))}\n")
    sys.stderr.flush()
    Agent(mgr, definition, group).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
