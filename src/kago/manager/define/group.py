"""``kago up / down / ps / reload / archive FILE``: a definition's containers as one group.

``up`` loads and checks the whole file first (nothing starts if anything is wrong), then for
each container in order: bootstrap its rootfs if it is new, create it, run before_fork,
ask the supervisor to start it, run after_fork, provision it on its first start; then it waits
for readiness checks and prints a table. Starts are pipelined: the supervisor starts container
N (forking it from its own process, no interpreter per container) while this process prepares
container N+1's rootfs, network and bundle, so both cores work. If any step fails, what this
``up`` made is removed again (``--keep-going`` keeps it), and the error names the container.

The group is remembered in ROOT/groups/<key>.json (the file's path, its ``-e`` values, the
container IDs, the agent's pid), so ``down`` and ``ps`` find the containers even if the file
has changed since.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

from kago.errors import KagoError
from kago.manager import perms
from kago.manager.define import hooks as H
from kago.manager.define.load import load
from kago.manager.errors import DefinitionError, ManagerError, NoSuchContainer
from kago.manager.journal import fault

START_TIMEOUT = 120  # seconds without any answer from the supervisor: something is stuck


def key_of(path):
    return hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]


class Group:
    """ROOT/groups/<key>.json: what ``up`` made for one definition file."""

    def __init__(self, mgr, path, env=None):
        self.mgr = mgr
        self.path = os.path.abspath(path)
        self.key = key_of(path)
        self.file = os.path.join(mgr.paths.groups(), self.key + ".json")
        self.data = {"file": self.path, "env": env or {}, "containers": {}, "agent": None}
        try:
            with open(self.file) as f:
                self.data.update(json.load(f))
        except FileNotFoundError:
            pass
        if env is not None:
            self.data["env"] = env

    @property
    def containers(self):
        return self.data["containers"]

    def save(self):
        os.makedirs(os.path.dirname(self.file), perms.PRIVATE_DIR, exist_ok=True)
        with perms.private_file(self.file + ".tmp") as f:  # its env (up -e) too
            f.write(json.dumps(self.data))
        os.rename(self.file + ".tmp", self.file)

    def remove(self):
        for path in (self.file, self.file[:-5] + ".log"):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def records(self):
        """(name, record or None) in definition order."""
        out = []
        for name, cid in self.containers.items():
            try:
                out.append((name, self.mgr.records.load(cid)))
            except NoSuchContainer:
                out.append((name, None))
        return out


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


# --- up ------------------------------------------------------------------------------------------

def up(mgr, file, env=None, out=print, keep_going=False, no_wait=False):
    definition = load(file, env)
    _precheck(mgr, definition)
    group = Group(mgr, file, env)
    run = _Up(mgr, definition, group, keep_going)
    try:
        run.start_all()
        run.provision()
        if not no_wait:
            run.wait_ready()
    except BaseException:
        if not keep_going:
            run.rollback()
        raise
    finally:
        run.close()
    if definition.resident():
        _start_agent(mgr, group)
    _table(mgr, group, out, run.ready_at)
    failed = [n for n, e in run.errors.items() if e]
    code = 1 if failed else 0
    foreground = [c for c in definition.containers if not c.detach]
    if foreground:
        code = _follow(mgr, group, [c.name for c in foreground]) or code
    return code


def _precheck(mgr, definition):
    """What can be known before anything is made: images, names owned by others."""
    group_key = key_of(definition.path)
    for c in definition.containers:
        cfg = definition.configs[c.name]
        if cfg.get("image"):
            from kago.storage import ImageNotFound as StoreImageNotFound
            try:
                mgr.store.image(cfg["image"])
            except StoreImageNotFound:
                raise DefinitionError(c.file, c.line, f"container {c.name}: image "
                                      f"{cfg['image']} not found (kago import or pull it)") \
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
        self.ready_at = {}
        self.progress = Progress(len(definition.containers))
        self.server = H.RootSwitchServer()
        self.conn = None
        self.pending = {}  # cid -> (Container, record, Handle), replies come in any order
        self.deferred = {}  # cid -> (Container, record, Handle, reply): awaiting its hook
        self.switched = set()  # cids whose after_root_switch hook has been served
        self.t0 = time.monotonic()

    # --- creating and starting
    def start_all(self):
        from kago.manager import supervisor
        self.conn = supervisor.connect(self.mgr.paths)
        for c in self.definition.containers:
            record = self._existing(c)
            if record is not None and self.mgr.live(record) in ("running", "paused"):
                self.progress.step(c.name, "running")
                continue
            if record is None:
                record = self._create(c)
            else:
                self.mgr.prepare(record)  # what its end (or a reboot) released
            self._start(c, record)
            self._collect(block=False)
        while self.pending or self.deferred:
            self._collect(block=True)
        self.progress.end()

    def _existing(self, c):
        cid = self.group.containers.get(c.name)
        if cid is None:
            return None
        try:
            return self.mgr.records.load(cid)
        except NoSuchContainer:
            return None

    def _create(self, c):
        cfg = dict(self.definition.configs[c.name])
        made_dir = _bootstrap_dir(c, cfg)
        moments = [m for m in ("before_root_switch", "after_root_switch") if c.hooks[m]]
        if moments:
            directory = os.path.join(self.mgr.paths.runroot, "hooks", c.name)
            cfg["oci_hooks"], extra = H.oci_hooks(directory, moments)
            cfg["mounts"] = list(cfg["mounts"]) + extra
            os.makedirs(directory, exist_ok=True)
        group = {"key": self.group.key, "file": self.group.path}
        if c.hooks["exit"] or c.hooks["failure"]:
            group["release"] = "agent"  # its exit hooks see its rootfs: the agent releases it
        try:
            record = self.mgr.create(cfg, group=group)
        except BaseException:
            if made_dir:
                shutil.rmtree(made_dir, ignore_errors=True)
            raise
        self.made.append(record["id"])
        fault("up.created")  # the record names the group: down finds it without the file
        self.group.containers[c.name] = record["id"]
        self.group.save()
        if cfg.get("image") and c.bootstrap:
            _run_bootstrap(c, record["rootfs"]["path"])
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

    # --- after the starts
    def provision(self):
        for c in self.definition.containers:
            if c.name not in self.first_start or c.name in self.errors:
                continue
            record = self.mgr.records.load(self.group.containers[c.name])
            if c.provision:
                handle = H.Handle(self.mgr, record)
                for step in c.provision:
                    _provision_step(c, step, handle)
            self.mgr.records.update(record["id"], _provisioned)

    def wait_ready(self):
        checks = {}
        for c in self.definition.containers:
            if c.name in self.errors:
                continue
            record = self.mgr.records.load(self.group.containers[c.name])
            if c.readiness is None:
                self.ready_at[c.name] = time.monotonic() - self.t0
                continue
            checks[c.name] = (c, H.Handle(self.mgr, record), time.monotonic()
                              + c.readiness.timeout)
        while checks:
            for name, (c, handle, deadline) in list(checks.items()):
                ended = _ended(self.mgr, handle)
                if ended is None and _is_ready(c.readiness, handle):
                    self.ready_at[name] = time.monotonic() - self.t0
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
            if checks:
                self.server.poll(0.02)

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


def _provisioned(r):
    r["state"]["provisioned"] = True


def _is_ready(check, handle):
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
    return f"tcp port {check.port}" if check.port is not None else "readiness callable"


# --- bootstrap and provision ---------------------------------------------------------------------

def _bootstrap_dir(c, cfg):
    """A directory rootfs that does not exist yet is made and bootstrapped (once, ever);
    returns it if this call made it, so a failure can remove it again."""
    rootfs = cfg.get("rootfs")
    if not rootfs or not c.bootstrap:
        return None
    if os.path.isdir(rootfs) and os.listdir(rootfs):
        return None
    os.makedirs(rootfs, exist_ok=True)
    try:
        _run_bootstrap(c, rootfs)
    except BaseException:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise
    return rootfs


def _run_bootstrap(c, rootfs):
    for step in c.bootstrap:
        where = f"container {c.name}: bootstrap ({step.kind}, line {step.line})"
        if step.kind == "tarball":
            proc = subprocess.run(["tar", "--numeric-owner", "-xf", step.value, "-C", rootfs],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                raise ManagerError(f"{where}: tar: {proc.stderr.strip()}")
        elif step.kind == "shell":
            proc = subprocess.run(["/bin/sh", "-c", step.value], capture_output=True,
                                  text=True, env=dict(os.environ, ROOTFS=rootfs), check=False)
            if proc.returncode:
                raise ManagerError(f"{where}: exited {proc.returncode}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        else:
            ok, result = H.call(step.value, rootfs)
            if not ok:
                raise ManagerError(f"{where}: {result}")


def _provision_step(c, step, handle):
    where = f"container {c.name}: provision ({step.kind}, line {step.line})"
    if step.kind == "shell":
        code, output = handle.exec(["/bin/sh", "-c", step.value], check=False)
        if code:
            raise ManagerError(f"{where}: exited {code}: {output.strip()[-300:]}")
    elif step.kind == "python":
        ok, result = H.call(step.value, handle)
        if not ok:
            raise ManagerError(f"{where}: {result}")
    else:
        raise ManagerError(f"{where}: a tarball is a bootstrap step, not a provision step")


# --- the agent -------------------------------------------------------------------------------------

def _start_agent(mgr, group):
    _stop_agent(group)
    log = os.open(group.file[:-5] + ".log", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                  0o640)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    argv = [sys.executable, "-m", "kago.manager.define.agent", "--root", mgr.paths.root,
            "--runroot", mgr.paths.runroot, group.path]
    argv += [f"{k}={v}" for k, v in group.data["env"].items()]
    try:
        pid = os.posix_spawn(sys.executable, argv, os.environ, setsid=True, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
            (os.POSIX_SPAWN_DUP2, log, 2)])
    finally:
        os.close(log)
        os.close(null)
    group.data["agent"] = pid
    group.save()


def _stop_agent(group):
    pid = group.data.get("agent")
    if not pid:
        return
    from kago.host.procfs import alive, start_time
    started = start_time(pid) if _is_agent(pid) else None
    if started is not None:
        os.kill(pid, 15)
        deadline = time.monotonic() + 5
        while alive(pid, started) and time.monotonic() < deadline:
            time.sleep(0.02)
    group.data["agent"] = None


def _is_agent(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"kago.manager.define.agent" in f.read()
    except OSError:
        return False


# --- down / ps / reload / archive ------------------------------------------------------------------

def down(mgr, file, env=None, out=print, timeout=10, **_):
    group = Group(mgr, file)
    records = [r for _n, r in group.records() if r is not None]
    listed = {r["id"] for r in records}
    # a container whose up died before the group file named it: its record names the group
    records += [r for r in mgr.records.all() if r["id"] not in listed
                and (r.get("group") or {}).get("key") == group.key]
    if not records and not group.containers and not os.path.exists(group.file):
        raise DefinitionError(group.path, 0, "no containers of this definition are known "
                                             "(was it started with kago up?)")
    _stop_agent(group)
    _stop_many(mgr, records, timeout)
    errors = []
    for record in reversed(records):
        try:
            mgr.remove(record["id"], force=True)
            fault("down.removed")
        except KagoError as e:
            errors.append(f"{record['name']}: {e}")
    if errors:
        group.save()
        raise ManagerError("; ".join(errors))
    group.remove()
    out(f"removed {len(records)} container(s)")
    return 0


def _stop_many(mgr, records, timeout=10):
    """Stop signals to all at once, one wait for all, then SIGKILL the rest."""
    from kago.manager.engine import mark_removing
    from kago.oci.names import parse_signal
    running = []
    for record in records:
        mgr.records.update(record["id"], mark_removing)  # removed next: nothing to release
        if mgr.live(record) in ("running", "paused"):
            try:
                mgr.runtime(record).kill(record["id"], parse_signal(record["stop_signal"]))
                running.append(record)
            except KagoError:
                pass
    deadline = time.monotonic() + timeout
    while running and time.monotonic() < deadline:
        states = mgr.states()
        running = [r for r in running if mgr.live(r, states) in ("running", "paused")]
        if running:
            time.sleep(0.05)
    for record in running:
        try:
            mgr.runtime(record).kill(record["id"], 9, all=True)
        except KagoError:
            pass
    deadline = time.monotonic() + 10
    while running and time.monotonic() < deadline:
        states = mgr.states()
        running = [r for r in running if mgr.live(r, states) in ("running", "paused")]
        if running:
            time.sleep(0.02)


def ps(mgr, file, env=None, out=print, **_):
    from kago.manager import format as F
    group = Group(mgr, file)
    states = mgr.states()
    rows = []
    for name, record in group.records():
        if record is None:
            rows.append((name, "-", "removed", "", ""))
            continue
        live = mgr.live(record, states)
        pid = record["state"].get("pid") if live == "running" else ""
        rows.append((name, record["id"][:12], F.status_text(record, live), pid or "",
                     _address(record)))
    out(F.table(("NAME", "CONTAINER ID", "STATUS", "PID", "PORTS/ADDRESS"), rows))
    agent = group.data.get("agent")
    if agent and _is_agent(agent):
        out(f"agent: pid {agent} (timers, signal, pressure and exit hooks)")
    return 0


def _table(mgr, group, out, ready_at):
    from kago.manager import format as F
    states = mgr.states()
    rows = []
    for name, record in group.records():
        if record is None:
            continue
        live = mgr.live(record, states)
        ready = ready_at.get(name)
        rows.append((name, record["id"][:12], F.status_text(record, live),
                     record["state"].get("pid") or "", "" if ready is None else f"{ready:.2f}s",
                     _address(record)))
    out(F.table(("NAME", "CONTAINER ID", "STATUS", "PID", "READY", "PORTS/ADDRESS"), rows))


def _address(record):
    """PORTS/ADDRESS: published ports, else the address (none once its end released it)."""
    from kago.manager import format as F
    if F.released(record):
        return ""
    return F.ports_text(record) or (record.get("network") or {}).get("ipv4") or ""


def _follow(mgr, group, names):
    """detach=False containers: stream their output (name-prefixed) until they all end;
    the worst exit status is ``up``'s."""
    from kago.manager import logs
    paths = {n: mgr.paths.log(group.containers[n]) for n in names}
    offsets = {n: 0 for n in names}
    codes = {}
    while len(codes) < len(names):
        for name in names:
            for entry in logs.read(paths[name])[offsets[name]:]:
                offsets[name] += 1
                stream = sys.stdout if entry.get("stream") == "stdout" else sys.stderr
                stream.write(f"{name} | {entry.get('log', '')}")
                stream.flush()
            record = mgr.records.load(group.containers[name])
            if name not in codes and mgr.live(record) == "exited":
                codes[name] = record["state"].get("exit_code") or 0
        time.sleep(0.1)
    return max(codes.values()) if codes else 0


def reload(mgr, file, env=None, out=print, **_):
    """Apply changed cgroup limits and rlimits to running containers, without restarts."""
    from kago.manager import spec
    group = Group(mgr, file, env)
    definition = load(file, group.data["env"] if env is None else env)
    changed = 0
    for c in definition.containers:
        cid = group.containers.get(c.name)
        if cid is None:
            out(f"{c.name}: not started by kago up (kago up starts it)")
            continue
        record = mgr.records.load(cid)
        new = definition.configs[c.name]
        old = record["config"]
        notes = _needs_restart(old, new)
        res_old, res_new = spec.resources(old), spec.resources(new)
        lim_old, lim_new = spec.rlimits_for(old), spec.rlimits_for(new)
        if mgr.live(record) == "running" and (res_old != res_new or lim_old != lim_new):
            if res_old != res_new:
                mgr.runtime(record).update(cid, _with_resets(res_old, res_new))
            if lim_old != lim_new:
                _apply_rlimits(mgr, record, lim_new)
            changed += 1
            out(f"{c.name}: limits applied")
        mgr.records.update(cid, lambda r, new=new: _keep_live_fields(r, new))
        for note in notes:
            out(f"{c.name}: {note} changed: kago down and up to apply it")
    if definition.resident():
        _start_agent(mgr, group)
    out(f"reloaded {changed} running container(s)")
    return 0


_LIMIT_KEYS = ("cgroup", "memory", "memory_swap", "cpus", "cpu_shares", "cpuset_cpus",
               "pids_limit", "rlimits")


def _keep_live_fields(record, new):
    for key in _LIMIT_KEYS:
        if key in new:
            record["config"][key] = new[key]
        else:
            record["config"].pop(key, None)


def _needs_restart(old, new):
    keys = ("image", "rootfs", "command", "entrypoint", "env", "mounts", "ports", "network",
            "uid_map", "gid_map", "userns", "namespaces", "user", "workdir", "cap_add",
            "cap_drop", "read_only", "hostname")
    return [k for k in keys if (old.get(k) or None) != (new.get(k) or None)]


def _with_resets(old, new):
    """A limit the definition no longer sets goes back to "no limit"."""
    out = json.loads(json.dumps(new))
    resets = {("cpu", "quota"): -1, ("memory", "limit"): -1, ("memory", "swap"): -1,
              ("pids", "limit"): -1}
    for section, fields in old.items():
        for field in fields:
            if field not in (new.get(section) or {}):
                if section == "unified":
                    out.setdefault("unified", {})[field] = "max"
                elif (section, field) in resets:
                    out.setdefault(section, {})[field] = resets[(section, field)]
    return out


def _apply_rlimits(mgr, record, limits):
    import resource
    errors = []
    for pid in mgr.runtime(record).pids(record["id"]):
        for limit in limits:
            which = getattr(resource, limit["type"], None)
            if which is None:
                continue
            try:
                resource.prlimit(pid, which, (limit["soft"], limit["hard"]))
            except PermissionError:
                errors.append(f"{limit['type']} of pid {pid}: raising a hard limit needs "
                              f"CAP_SYS_RESOURCE")
            except ProcessLookupError:
                break
    if errors:
        raise ManagerError(f"container {record['name']}: " + "; ".join(errors[:3]))


def archive(mgr, file, env=None, out=print, tag=None, **_):
    """Bootstrap and provision each container's rootfs in a scratch container, then save it
    as an image (a commit of the layer, or an import of a directory rootfs)."""
    definition = load(file, env)
    import secrets

    from kago.manager import images
    made = []
    for c in definition.containers:
        if not (c.bootstrap or c.provision):
            continue
        cfg = dict(definition.configs[c.name])
        cfg["name"] = f"{c.name}-archive-{secrets.token_hex(3)}"
        cfg["command"] = ["/bin/sh", "-c", "while :; do sleep 1; done"]
        cfg["entrypoint"] = []
        cfg["restart"] = "no"
        cfg["ports"] = []
        _bootstrap_dir(c, cfg)
        record = mgr.create(cfg)
        try:
            if cfg.get("image") and c.bootstrap:
                _run_bootstrap(c, record["rootfs"]["path"])
            mgr.start(record["id"])
            handle = H.Handle(mgr, mgr.records.load(record["id"]))
            for step in c.provision:
                _provision_step(c, step, handle)
            mgr.stop(record["id"], timeout=2)
            name = tag if tag and len(definition.containers) == 1 else (
                f"{tag}-{c.name}" if tag else c.name)
            info = images.commit(mgr, mgr.records.load(record["id"]), name,
                                 message=f"kago archive {os.path.basename(file)}")
            made.append((c.name, name, info.id))
        finally:
            mgr.remove(record["id"], force=True)
    if not made:
        raise DefinitionError(definition.path, 0, "no container has bootstrap or provision "
                                                  "steps: nothing to archive")
    for cname, name, image_id in made:
        out(f"{cname}: image {name} sha256:{image_id[:12]}")
    return 0
