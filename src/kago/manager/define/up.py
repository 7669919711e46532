"""``kago up FILE``: start every container a definition defines.

``up`` loads and checks the whole file first (nothing starts if anything is wrong), then for
each container in order: bootstrap its rootfs if it is new, create it, run before_fork,
ask the supervisor to start it, run after_fork, provision it on its first start; then it waits
for readiness checks and prints a table. Starts are pipelined: the supervisor starts container
N (forking it from its own process, no interpreter per container) while this process prepares
container N+1's rootfs, network and bundle, so both cores work. If any step fails, what this
``up`` made is removed again (``--keep-going`` keeps it), and the error names the container.

READY is each container's own time: from when ``up`` began with it (its create, or the
prepare of an existing one) to its start's answer, or with a readiness check to the check's
first success; checks are polled while the later containers are still being started (after
provisioning, for a container provisioned on this start).
"""

import os
import shutil
import sys
import time

from kago.errors import KagoError
from kago.manager.define import hooks as H
from kago.manager.define.bootstrap import bootstrap_dir, provision_step, run_bootstrap
from kago.manager.define.group import Group, key_of, start_agent
from kago.manager.define.load import load
from kago.manager.define.table import follow, up_table
from kago.manager.errors import DefinitionError, ManagerError, NoSuchContainer
from kago.manager.journal import batch, fault

START_TIMEOUT = 120  # seconds without any answer from the supervisor: something is stuck
WARM_DUMPS = 4       # warm checkpoints made at once by the first up


class Progress:
    """``starting 37/100 web-10037`` on one terminal line (only when stderr is a terminal)."""

    def __init__(self, total):
        self.total, self.done = total, 0
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def step(self, name, what="started"):
        self.done += 1
        if self.tty:
            sys.stderr.write(f"\r\033[K{what} {self.done}/{self.total} {name}")
            sys.stderr.flush()

    def end(self):
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def up(mgr, file, env=None, out=print, keep_going=False, no_wait=False):
    definition = load(file, env)
    _precheck(mgr, definition)
    with batch() as written:  # its records reach the disk together, at the end
        written.dirs.add(mgr.paths.root)
        return _up(mgr, file, definition, env, out, keep_going, no_wait)


def _up(mgr, file, definition, env, out, keep_going, no_wait):
    group = Group(mgr, file, env)
    run = _Up(mgr, definition, group, keep_going)
    run.wait = not no_wait
    try:
        run.start_all()
        run.provision()
        if not no_wait:
            run.wait_ready()
            run.store_warm()
    except BaseException:
        if not keep_going:
            run.rollback()
        raise
    finally:
        run.close()
    if definition.resident():
        start_agent(mgr, group)
    if definition.console is not None:
        from kago.manager.define.console import start_console
        start_console(mgr, group, definition.console.listen, out)
    up_table(mgr, group, out, run.ready_at, run.warm)
    failed = [n for n, e in run.errors.items() if e]
    code = 1 if failed else 0
    foreground = [c for c in definition.containers if not c.detach]
    if foreground:
        code = follow(mgr, group, [c.name for c in foreground]) or code
    return code


def _precheck(mgr, definition):
    """What can be known before anything is made: images, names owned by others."""
    group_key = key_of(definition.path)
    for c in definition.containers:
        image = definition.definitions[c.name].image
        if image:
            from kago.storage import ImageNotFound as StoreImageNotFound
            try:
                mgr.store.image(image)
            except StoreImageNotFound:
                raise DefinitionError(c.file, c.line_of("image"), f"container {c.name}: "
                                      f"image {image} not found (kago import or pull it)") \
                    from None
        try:
            other = mgr.records.resolve(c.name)
        except NoSuchContainer:
            continue
        if other["name"] == c.name and (other.get("group") or {}).get("key") != group_key:
            raise DefinitionError(c.file, c.line, f'container name "{c.name}" is in use by '
                                  f"container {other['id'][:12]} of another definition")


class _Up:
    def __init__(self, mgr, definition, group, keep_going):
        self.mgr, self.definition, self.group = mgr, definition, group
        self.keep_going = keep_going
        self.made, self.started = [], []
        self.first_start = set()
        self.errors = {}
        self.ready_at = {}  # name -> seconds from its own beginning to ready
        self.began = {}     # name -> (monotonic, wall clock) time up began with it
        self.wait = True    # readiness checks run (not with --no-wait)
        self.checks = {}    # name -> (Container, Handle, deadline): readiness polled
        self.progress = Progress(len(definition.containers))
        self.server = H.RootSwitchServer()
        self.conn = None
        self.pending = {}  # cid -> (Container, record, Handle), replies come in any order
        self.deferred = {}  # cid -> (Container, record, Handle, reply): awaiting its hook
        self.switched = set()  # cids whose after_root_switch hook has been served
        self.t0, self.t0_wall = time.monotonic(), time.time()
        self.warm = set()       # names restored from a warm checkpoint (define/warm.py)
        self.criu = None
        for c in definition.containers:
            if c.warm and c.readiness is None:
                c.readiness = _warm_readiness(c, definition.definitions[c.name])
        self.to_warm = []       # names booted cold, to checkpoint once ready

    # --- creating and starting
    def start_all(self):
        from kago.manager import supervisor
        self.conn = supervisor.connect(self.mgr.paths)
        for c in self.definition.containers:
            self.began[c.name] = (time.monotonic(), time.time())
            record = self._existing(c)
            if record is not None and self.mgr.live(record) in ("running", "paused"):
                self.progress.step(c.name, "running")
                continue
            if record is None:
                record = self._create(c)
                if c.warm:
                    if self._warm_start(c, record):
                        self._collect(block=False)
                        self._poll_checks()
                        continue
                    self.to_warm.append(c.name)
            else:
                self.mgr.prepare(record)  # what its end (or a reboot) released
            self._start(c, record)
            self._collect(block=False)
            self._poll_checks()
        while self.pending or self.deferred:
            self._collect(block=True)
        self.progress.end()

    def _warm_start(self, c, record):
        """Ask the supervisor to restore the new container from its key's warm checkpoint,
        if there is one (pipelined as a start; a restore that fails boots it: _started)."""
        from kago.manager.define import warm
        path = warm.entry(self.mgr, record)
        if path is None:
            return False
        try:
            if self.criu is None:
                from kago.manager.checkpoints import find_criu
                self.criu = find_criu()
            how = warm.prepare(self.mgr, record, path, self.criu)
        except (KagoError, OSError) as e:
            self._warm_failed(c, record, str(e))
            return True
        self.warm.add(c.name)
        self.conn.send("start", id=record["id"], attached=False, restore=how)
        self.pending[record["id"]] = (c, record, H.Handle(self.mgr, record))
        return True

    def _warm_failed(self, c, record, why):
        """A warm start that failed: the container made again and booted."""
        H.warn(f"{c.name}: warm start failed, booting it: {why}")
        self.warm.discard(c.name)
        self.made.remove(record["id"])
        del self.group.containers[c.name]
        self.mgr.remove(record["id"], force=True)
        self.to_warm.append(c.name)
        self._start(c, self._create(c))

    def store_warm(self):
        """Checkpoint each ready container booted cold with warm=True (leaving it running),
        a few at once: much of a dump is CRIU waiting for the freezer."""
        from concurrent.futures import ThreadPoolExecutor

        from kago.manager.define import warm
        records = [self.mgr.records.load(self.group.containers[name]) for name in self.to_warm
                   if name not in self.errors and name in self.ready_at]
        with ThreadPoolExecutor(max_workers=WARM_DUMPS) as pool:
            for problem in pool.map(lambda r: warm.store(self.mgr, r), records):
                if problem:
                    H.warn(problem)

    def _existing(self, c):
        cid = self.group.containers.get(c.name)
        if cid is None:
            return None
        try:
            return self.mgr.records.load(cid)
        except NoSuchContainer:
            return None

    def _create(self, c):
        definition = self.definition.definitions[c.name]
        made_dir = bootstrap_dir(c, definition)
        moments = [m for m in ("before_root_switch", "after_root_switch") if c.hooks[m]]
        if moments:
            directory = os.path.join(self.mgr.paths.runroot, "hooks", c.name)
            hooks, extra = H.oci_hooks(directory, moments)
            definition = definition.but(oci_hooks=hooks, mounts=definition.mounts + extra)
            os.makedirs(directory, exist_ok=True)
        group = {"key": self.group.key, "file": self.group.path}
        if c.hooks["exit"] or c.hooks["failure"]:
            group["release"] = "agent"  # its exit hooks see its rootfs: the agent releases it
        try:
            record = self.mgr.create(definition, group=group)
        except BaseException:
            if made_dir:
                shutil.rmtree(made_dir, ignore_errors=True)
            raise
        self.made.append(record["id"])
        fault("up.created")  # the record names the group: down finds it without the file
        self.group.containers[c.name] = record["id"]
        self.group.save()
        if definition.image and c.bootstrap:
            run_bootstrap(c, record["rootfs"]["path"])
        return record

    def _start(self, c, record):
        handle = H.Handle(self.mgr, record)
        for fn in c.hooks["before_fork"]:
            ok, result = H.call(fn, handle)
            if not ok:
                raise ManagerError(f"container {c.name}: before_fork hook failed: {result}")
        if any(c.hooks[m] for m in ("before_root_switch", "after_root_switch")):
            directory = os.path.join(self.mgr.paths.runroot, "hooks", c.name)
            self.server.open(directory, lambda moment, c=c, handle=handle:
                             self._root_hook(c, handle, moment))
        if not (record.get("state") or {}).get("provisioned"):
            self.first_start.add(c.name)
        self.conn.send("start", id=record["id"], attached=False)
        self.pending[record["id"]] = (c, record, handle)

    def _root_hook(self, c, handle, moment):
        ok = True
        for fn in c.hooks.get(moment, ()):
            good, result = H.call(fn, handle.refresh())
            if not good:
                H.warn(f"{c.name}: {moment} hook failed: {result}")
                ok = False
                break
        if moment == "after_root_switch":
            self.switched.add(handle.id)
        return ok

    def _collect(self, block):
        """Handle the supervisor's replies that have arrived (or wait for the next one).

        A reply can come before the container's after_root_switch hook has called back (the
        runtime runs startContainer hooks after ``create`` returned), so such a container's
        reply waits in ``deferred`` until its hook was served: after_fork comes after it."""
        deadline = time.monotonic() + START_TIMEOUT
        while self.pending or self.deferred:
            for cid in [cid for cid in self.deferred if cid in self.switched]:
                self._started(*self.deferred.pop(cid))
            if not self.pending and not self.deferred:
                return
            if b"\n" not in self.conn.buf:
                left = max(0.0, deadline - time.monotonic()) if block else 0
                what = self.server.wait(self.conn.sock, left)
                if what == "served":
                    continue
                if what is None:
                    if not block:
                        return
                    raise ManagerError(f"no answer in {START_TIMEOUT} s about "
                                       + ", ".join(c.name for c, *_ in self._waiting()))
            reply = self.conn.receive()
            c, record, handle = self.pending.pop(reply.get("id"))
            if c.hooks["after_root_switch"] and reply.get("ok") and \
                    record["id"] not in self.switched:
                self.deferred[record["id"]] = (c, record, handle, reply)
            else:
                self._started(c, record, handle, reply)
            block = False
            deadline = time.monotonic() + START_TIMEOUT

    def _waiting(self):
        return list(self.pending.values()) + [v[:3] for v in self.deferred.values()]

    def _started(self, c, record, handle, reply):
        from kago.manager.engine import _started as started_pid
        if c.name in self.warm:
            if not reply.get("ok"):
                self._warm_failed(c, record, reply.get("error", "restore failed"))
                return
            from kago.manager.define import warm
            self.mgr.records.update(record["id"], warm.restored)
        try:
            handle.pid = started_pid(reply)
        except KagoError as e:
            for fn in c.hooks["failure"]:
                H.call(fn, handle, e)
            if not self.keep_going:
                error = ManagerError(f"container {c.name}: {e}")
                error.exit_code = getattr(e, "exit_code", 125)  # 127/126 as for kago run
                raise error from None
            self.errors[c.name] = str(e)
            self.progress.step(c.name, "failed")
            return
        self.started.append(record["id"])
        for fn in c.hooks["after_fork"]:
            ok, result = H.call(fn, handle)
            if not ok:
                raise ManagerError(f"container {c.name}: after_fork hook failed: {result}")
        self.progress.step(c.name)
        if c.readiness is None:
            # its start, as the supervisor recorded it: the answer may have been read
            # only after the next container's own work (pipelining)
            state = self.mgr.records.load(record["id"]).get("state") or {}
            self._ready(c.name, state.get("started_at"))
        elif self.wait and not (c.name in self.first_start and c.provision):
            self._watch(c, handle)

    def _ready(self, name, at=None):
        """``name`` is ready (``at``: when, by the clock, else now)."""
        began, began_wall = self.began.get(name, (self.t0, self.t0_wall))
        took = time.monotonic() - began
        if at is not None:
            took = min(took, max(0.0, at - began_wall))
        self.ready_at[name] = took

    def _watch(self, c, handle):
        self.checks[c.name] = (c, handle, time.monotonic() + c.readiness.timeout)

    # --- after the starts
    def provision(self):
        for c in self.definition.containers:
            if c.name not in self.first_start or c.name in self.errors:
                continue
            record = self.mgr.records.load(self.group.containers[c.name])
            if c.provision:
                handle = H.Handle(self.mgr, record)
                for step in c.provision:
                    provision_step(c, step, handle)
            self.mgr.records.update(record["id"], _provisioned)

    def wait_ready(self):
        for c in self.definition.containers:
            if c.name in self.errors or c.name in self.ready_at or c.name in self.checks:
                continue
            if c.readiness is None:
                self._ready(c.name)    # running already
                continue
            record = self.mgr.records.load(self.group.containers[c.name])
            self._watch(c, H.Handle(self.mgr, record))
        while self.checks:
            self._poll_checks()
            if self.checks:
                self.server.poll(0.02)

    def _poll_checks(self):
        """One pass over the readiness checks: a ready container leaves them with its
        time; one that ended or timed out fails the up (``--keep-going``: is noted)."""
        checks = self.checks
        if checks:
            for name, (c, handle, deadline) in list(checks.items()):
                ended = _ended(self.mgr, handle)
                if ended is None and _is_ready(c.readiness, handle):
                    self._ready(name)
                    del checks[name]
                elif ended is not None or time.monotonic() > deadline:
                    tail = _log_tail(self.mgr, handle.id)
                    if ended is not None:
                        last = tail[-1] if tail else "no output"
                        error = f"container {name} exited with {ended} before it was ready: {last}"
                    else:
                        error = (f"container {name} not ready after {c.readiness.timeout:g} s "
                                 f"({_describe_check(c.readiness)})")
                    if not self.keep_going:
                        # the rollback removes the container and its logs: show them first
                        # (docker compose keeps them; a rolled-back up keeps nothing)
                        for line in tail[:-1] if ended is not None else tail:
                            sys.stderr.write(f"{name} | {line}\n")
                        raise ManagerError(error)
                    self.errors[name] = error
                    del checks[name]

    def rollback(self):
        """Undo this up: remove what it made, stop what it started."""
        for cid in reversed(self.started):
            if cid not in self.made:
                try:
                    self.mgr.stop(cid, timeout=5)
                except KagoError as e:
                    H.warn(f"rollback: {e}")
        for cid in reversed(self.made):
            try:
                self.mgr.remove(cid, force=True)
            except KagoError as e:
                H.warn(f"rollback: {e}")
            for name, c in list(self.group.containers.items()):
                if c == cid:
                    del self.group.containers[name]
        if self.group.containers:
            self.group.save()
        else:
            self.group.remove()

    def close(self):
        self.server.close()
        if self.conn is not None:
            self.conn.close()


def _warm_readiness(c, definition):
    """A warm container is checkpointed once ready: its readiness check, else its first
    published port accepting connections."""
    from kago.manager.define.dsl import tcp
    if not definition.ports:
        raise DefinitionError(c.file, c.line_of("warm"), f"container {c.name}: warm=True "
                              "needs a readiness check (c.ready(tcp(PORT))) or a published "
                              "port, to know when to checkpoint it")
    return tcp(definition.ports[0].container_port)


def _provisioned(r):
    r["state"]["provisioned"] = True


def _is_ready(check, handle):
    if getattr(check, "health", False):
        state = handle._mgr.records.load(handle.id).get("state") or {}
        return (state.get("health") or {}).get("Status") == "healthy"
    if check.port is not None:
        return H.tcp_ready(handle.netns, handle.refresh().pid, check.port)
    ok, result = H.call(check.fn, handle.refresh())
    return ok and bool(result)


def _ended(mgr, handle):
    """The exit code ("unknown" if none was recorded) of a container that has ended (or is
    waiting for a restart), else None."""
    pid = handle.pid
    if pid and _alive(pid):
        return None
    deadline = time.monotonic() + 2.0  # the supervisor records the end once the output drained
    while True:
        try:
            state = mgr.records.load(handle.id).get("state") or {}
        except NoSuchContainer:
            return "unknown"
        if state.get("status") == "running" and state.get("pid") not in (None, 0, pid):
            handle.pid = state["pid"]  # restarted meanwhile: watch the new run
            return None
        if state.get("status") != "running" or time.monotonic() > deadline:
            code = state.get("exit_code")
            return "unknown" if code is None else code
        time.sleep(0.02)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _log_tail(mgr, cid, lines=10):
    """The container's last output lines (its logs go with it in a rollback)."""
    from kago.manager import logs
    try:
        entries = logs.read(mgr.paths.log(cid), tail=lines)
    except OSError:
        return []
    return [e.get("log", "").rstrip("\n") for e in entries]


def _describe_check(check):
    if getattr(check, "health", False):
        return "healthcheck"
    return f"tcp port {check.port}" if check.port is not None else "readiness callable"

