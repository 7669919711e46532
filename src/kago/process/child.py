"""The forked side: the intermediate process and the container's init (or exec'd process).

Every function here runs after ``os.fork`` and leaves only through ``os._exit``: an exception
must never unwind into the parent's code (its ``finally`` blocks, atexit handlers, or pytest).
Errors are sent to the runtime over the channel, then the process exits 1.
"""

import os

from kago import log
from kago.errors import KagoError
from kago.kernel import consts as C
from kago.kernel import libc
from kago.linux import namespaces
from kago.process.steps import CREATE_STEPS, EXEC_STEPS, InitContext


def _die(chan, exc):
    if not isinstance(exc, (KagoError, OSError)):
        import traceback
        exc = KagoError(f"internal error: {exc!r}: {traceback.format_exc(limit=3)}")
    chan.send_error(exc)
    os._exit(1)


def intermediate(chan, plan, ctx_args, exec_mode=False):
    """Join/unshare namespaces, get ID maps, fork the container process, report its pid."""
    try:
        # non-dumpable while inside the container's namespaces: its processes must not be
        # able to ptrace us or open /proc/<pid>/exe (the CVE-2019-5736 class)
        libc.prctl(C.PR_SET_DUMPABLE, 0)
        with log.phase("namespaces"):
            opened = namespaces.open_paths(plan.namespaces)
            namespaces.join(opened)
            namespaces.close_all(opened)
            _new_userns_or_hello(chan, plan)
            flags = namespaces.unshare_flags(plan.namespaces)
            if flags:
                libc.unshare(flags)
            if plan.new_ns("time"):
                namespaces.write_time_offsets(plan.time_offsets)
        pid = os.fork()
    except BaseException as e:  # noqa: BLE001 - must reach os._exit
        _die(chan, e)
    if pid == 0:
        try:
            ctx = InitContext(plan, chan, **ctx_args)
        except BaseException as e:  # noqa: BLE001 - must reach os._exit
            _die(chan, e)
        run_steps(ctx, EXEC_STEPS if exec_mode else CREATE_STEPS)
        os._exit(1)  # not reached: run_steps execs or exits
    try:
        chan.send(t="pid", pid=pid)
    finally:
        os._exit(0)


def _new_userns_or_hello(chan, plan):
    new_user = plan.new_ns("user")
    if new_user:
        libc.unshare(C.CLONE_NEWUSER)
    chan.send(t="hello", userns=new_user)
    chan.recv(expect=("ok",))
    if new_user:
        with log.phase("become root in user namespace"):
            _become_root(plan)


def _become_root(plan):
    """Be uid/gid 0 inside the new user namespace, so files we create have mapped owners."""
    if any(cid == 0 for cid, _h, _s in plan.gid_maps):
        os.setgroups([])
        os.setresgid(0, 0, 0)
    if any(cid == 0 for cid, _h, _s in plan.uid_maps):
        os.setresuid(0, 0, 0)


def run_steps(ctx, steps):
    """Run the init steps in order; never returns (the last step execs, or we exit)."""
    try:
        os.setsid()
        for step in steps:
            with log.phase(step.__name__):
                step(ctx)
        raise KagoError("init steps ended without exec")
    except BaseException as e:  # noqa: BLE001 - must reach os._exit
        if ctx.chan.sock.fileno() >= 0:
            _die(ctx.chan, e)
        # after "ready" nobody listens on the channel: tell the container's stderr, like runc
        try:
            os.write(2, f"{e}\n".encode())
        finally:
            os._exit(127 if "not found" in str(e) or "no such file" in str(e) else 126)
