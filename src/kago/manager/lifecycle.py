"""A container's runs: ``start`` (prepare, then the shared supervisor runs the bundle),
``stop`` (the stop signal, SIGKILL after the timeout; the record says "stopped by user" so
no restart policy brings it back), ``kill``, ``wait``, ``restart``, and the settling of an
end nobody watched (no supervisor alive: the exit status is lost, the end is still
recorded and released).

Live status always comes from the runtime's state (Context.live): a record's "running" is
believed only if the runtime agrees.
"""

import os
import time

from kago.manager import events, supervisor
from kago.manager.definition import of
from kago.manager.errors import ManagerError, NoSuchContainer, StateError, SupervisorGone
from kago.manager.journal import fault
from kago.manager.release import foreground, mark_stopped, prepare, release_quietly

STOP_TIMEOUT = 10
START_WAIT = 60.0  # a start's worker is killed after 60 s (supervisor/starts.py)


def start(ctx, ref, attached=False, conn=None):
    """Start a created or exited container under the supervisor; returns its pid."""
    record = ctx.resolve(ref)
    status = ctx.live(record)
    if status in ("running", "paused"):
        return record["state"]["pid"]  # docker: starting a running container is a no-op
    prepare(ctx, record)
    fault("start.prepared")
    return _request(ctx, record, attached, conn)


def start_created(ctx, record, attached=False, conn=None):
    """Start the container this process has just created (``record``, create's return): no
    resolve, runtime state or ``prepare`` first. Create set up its rootfs and network and
    left the record ``fresh``, and the runtime has no state of it until the start; the
    supervisor's start worker marks the record under its lock (supervisor/starts.py:
    ``prepare``), as for ``kago up``'s starts. A removal or stop meanwhile is the
    supervisor's to see: no such container, or the user's stop wins."""
    fault("start.prepared")  # by create: the same point of a start as in ``start``
    return _request(ctx, record, attached, conn)


def _request(ctx, record, attached, conn):
    """The start request for a prepared ``record``; the pid its reply names."""
    own = conn is None
    conn = conn or supervisor.connect(ctx.paths)
    try:
        reply = conn.request("start", id=record["id"], attached=attached)
    except SupervisorGone:
        reply = _start_outcome(ctx, record)
    finally:
        if own:
            conn.close()
    fault("start.requested")
    return started(reply)


def _start_outcome(ctx, record):
    """The supervisor died during our start: the next one adopts the start (its worker
    may have started the container: adoption.py) and says how it went."""
    deadline = time.monotonic() + 30
    while True:
        # its orphaned start worker still holds the dead one's socket and lock: a
        # connection may reach nobody until that worker is done
        conn = supervisor.connect(ctx.paths)
        try:
            return conn.request("adopt", id=record["id"])
        except SupervisorGone:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            conn.close()


def started(reply):
    """The pid a supervisor's start reply names, or its error raised."""
    if reply.get("ok"):
        return reply["pid"]
    from kago.manager.errors import CommandError
    code = reply.get("code", 125)
    if code in (126, 127):
        raise CommandError(reply.get("error", "cannot start"), code)
    raise ManagerError(reply.get("error", "the supervisor could not start the container"))


def stop(ctx, ref, timeout=None, signal_name=None):
    """docker stop: the stop signal, SIGKILL after ``timeout`` s (None: the container's
    stop_timeout, else STOP_TIMEOUT); returns the record."""
    record = ctx.resolve(ref)
    record = ctx.records.update(record["id"], mark_stopped)
    status = ctx.live(record)
    if status not in ("running", "paused") and _starting(record):
        # a start on its way (a restart of the policy's): the supervisor ends it as soon as
        # it runs, seeing the stop; wait for that, so stop returns with it stopped (docker's)
        _wait_start(ctx, record)
        record = ctx.records.load(record["id"])
        status = ctx.live(record)
    if status not in ("running", "paused"):
        release_quietly(ctx, record)  # restarting (or an end nobody released)
        return ctx.records.load(record["id"])
    if timeout is None:
        timeout = of(record).stop_timeout
    timeout = STOP_TIMEOUT if timeout is None else timeout
    runtime = ctx.runtime(record)
    from kago.oci.names import parse_signal
    sig = parse_signal("SIGKILL" if status == "paused" else
                       signal_name or record["stop_signal"])
    events.container(ctx.paths, "kill", record, signal=sig)
    if status == "paused":
        runtime.kill(record["id"], sig, all=True)
    else:
        try:
            runtime.kill(record["id"], sig)
        except ManagerError:
            pass  # it ended meanwhile
    fault("stop.signalled")
    if not wait_exit(ctx, record, timeout):
        events.container(ctx.paths, "kill", record, signal=9)
        try:
            runtime.kill(record["id"], parse_signal("SIGKILL"), all=True)
        except ManagerError:
            pass
        if not wait_exit(ctx, record, 10):
            raise ManagerError(f"container {record['name']} did not stop after SIGKILL")
    fault("stop.stopped")
    # the supervisor releases it too; this makes stop return with it done (docker's)
    release_quietly(ctx, record)
    events.container(ctx.paths, "stop", record)
    return ctx.records.load(record["id"])


def _starting(record):
    from kago.manager.adoption import lives
    return lives((record.get("state") or {}).get("starter"))


def _wait_start(ctx, record, timeout=START_WAIT):
    """Until the start of ``record`` under way has run its course (its worker gone), at most
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            current = ctx.records.load(record["id"])
        except NoSuchContainer:
            return
        if not _starting(current):
            return
        time.sleep(0.02)


def kill(ctx, ref, signal_name="SIGKILL"):
    from kago.oci.names import parse_signal
    record = ctx.resolve(ref)
    if ctx.live(record) not in ("running", "paused"):
        raise StateError(f"cannot kill container {record['name']}: it is not running")
    sig = parse_signal(signal_name if signal_name.upper().startswith("SIG") or
                       signal_name.isdigit() else "SIG" + signal_name.upper())
    if sig == 9:
        ctx.records.update(record["id"], mark_stopped)
    ctx.runtime(record).kill(record["id"], sig)
    events.container(ctx.paths, "kill", record, signal=sig)
    return record


def wait_exit(ctx, record, timeout=None):
    """Wait until the container's end is recorded; False on timeout. Uses the supervisor
    when one is alive, else the pid's pidfd (and then records the end itself)."""
    conn = supervisor.connect(ctx.paths, spawn=False)
    if conn is not None:
        try:
            reply = conn.request("wait", timeout=timeout, id=record["id"])
        except (ManagerError, OSError):
            reply = None
        finally:
            conn.close()
        if ctx.live(ctx.records.load(record["id"])) not in ("running", "paused"):
            return True
        if reply is None:
            return False
        # answered at once but still running: not the supervisor's (kago run -i)
    return _wait_unsupervised(ctx, record, timeout)


def _wait_unsupervised(ctx, record, timeout):
    import select
    state = ctx.records.load(record["id"])["state"]
    rt = ctx.runtime(record).state(record["id"]) or {}
    pid = state.get("pid") or rt.get("pid")  # a foreground run records no pid
    if pid and ctx.live(record) in ("running", "paused"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = None
        if fd is not None:
            try:
                if not select.select([fd], [], [], timeout)[0]:
                    return False
            finally:
                os.close(fd)
    settle(ctx, record)
    return True


def settle(ctx, record):
    """Record the end of a container nobody watched (its exit status is lost)."""
    runtime = ctx.runtime(record)
    try:
        runtime.delete(record["id"], force=True)
    except ManagerError:
        pass

    def ended(r):
        if foreground(r["state"]):
            return  # its command line records the real status
        r["state"]["foreground"] = False
        if r["state"]["status"] in ("running", "restarting"):
            events.container(ctx.paths, "die", r)  # docker's die, without an exitCode
            r["state"].update(status="exited", pid=0, finished_at=time.time(),
                              fresh=False,
                              error="exited while no supervisor was watching: exit "
                                    "status unknown")
    try:
        ctx.records.update(record["id"], ended)
    except NoSuchContainer:
        return
    release_quietly(ctx, record["id"])


def wait(ctx, ref):
    """docker wait: block until the container stops; its exit code (None if unknown)."""
    record = ctx.resolve(ref)
    conn = supervisor.connect(ctx.paths, spawn=False)
    if conn is None:
        _wait_unsupervised(ctx, record, None)
        return ctx.records.load(record["id"])["state"].get("exit_code")
    try:
        return conn.request("wait", id=record["id"]).get("exit_code")
    finally:
        conn.close()


def restart(ctx, ref, timeout=None):
    record = stop(ctx, ref, timeout)
    return start(ctx, record["id"])
