"""The runtime's side of the fork choreography (the protocol is in channel.py).

The runtime becomes a child subreaper first: the container process is a grandchild (the
intermediate exits as soon as it has forked it), and as subreaper the runtime inherits it, so it
can reap it on rollback and wait for it in ``run``/``exec`` without a re-parenting delay (this
VM's PID 1 reaps orphans 1-2 s late). When a ``create`` returns, the container's init is handed
on to the caller's subreaper (containerd's shim, conmon) or PID 1, as with runc.
"""

import os
import signal

from kago import log
from kago.errors import KagoError
from kago.kernel import consts as C
from kago.kernel import libc
from kago.linux import idmap
from kago.process.channel import Channel


class Spawn:
    """The processes of one spawn, kept so that a failure can undo them."""

    __slots__ = ("intermediate", "pid", "chan")

    def __init__(self):
        self.intermediate = None
        self.pid = None
        self.chan = None

    def kill(self):
        """Rollback: kill and reap whatever was forked."""
        for pid in (self.pid, self.intermediate):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _reap(pid)


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def assert_single_threaded():
    """setns(CLONE_NEWUSER/NEWNS) and unshare need a single-threaded caller."""
    if len(os.listdir("/proc/self/task")) != 1:
        raise KagoError("kago-oci must be single-threaded when it forks a container")


def spawn(plan, ctx_args, cgroup=None, on_hooks=None, exec_mode=False):
    """Fork the container process; return the Spawn once it reported ``ready``.

    ``on_hooks(pid)`` runs prestart/createRuntime hooks and returns the state JSON;
    ``cgroup`` (or None) receives the intermediate before it unshares anything.
    """
    assert_single_threaded()
    libc.prctl(C.PR_SET_CHILD_SUBREAPER, 1)
    ours, theirs = Channel.pair()
    sp = Spawn()
    sp.chan = ours
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            from kago.process.child import intermediate
            intermediate(theirs, plan, ctx_args, exec_mode)
        finally:
            os._exit(1)  # whatever happens, the child never unwinds into our caller
    theirs.close()
    sp.intermediate = pid
    try:
        _handshake(sp, plan, cgroup, on_hooks)
    except BaseException:
        sp.kill()
        ours.close()
        raise
    return sp


def _handshake(sp, plan, cgroup, on_hooks):
    chan = sp.chan
    hello = chan.recv(expect=("hello",))
    if cgroup is not None:
        cgroup.add(sp.intermediate)
    if hello["userns"]:
        with log.phase("id maps"):
            idmap.write_maps(sp.intermediate, plan.uid_maps, plan.gid_maps)
    chan.send(t="ok")
    sp.pid = chan.recv(expect=("pid",))["pid"]
    _reap(sp.intermediate)
    sp.intermediate = None
    while True:
        msg = chan.recv(expect=("hooks", "ready"))
        if msg["t"] == "ready":
            break
        try:
            state = on_hooks(sp.pid) if on_hooks else "{}"
        except BaseException:
            chan.send(t="abort")
            raise
        chan.send(t="ok", state=state)
    chan.close()


def wait(pid, forward_signals=True):
    """Wait for ``pid`` (our child as subreaper), forwarding signals; return a shell status."""
    if forward_signals:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                    signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
            signal.signal(sig, lambda s, _f: _forward(pid, s))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            return 0  # someone else reaped it; nothing more to learn
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else \
        128 + os.WTERMSIG(status)


def _forward(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
