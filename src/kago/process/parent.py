"""The runtime's side of the fork choreography (the protocol is in channel.py).

The runtime becomes a child subreaper first: the container process is a grandchild (the
intermediate exits as soon as it has forked it), and as subreaper the runtime inherits it, so it
can reap it on rollback and wait for it in ``run``/``exec`` without a re-parenting delay (this
VM's PID 1 reaps orphans 1-2 s late). When a ``create`` returns, the container's init is handed
on to the caller's subreaper (containerd's shim, conmon) or PID 1, as with runc.
"""

import os
import _signal as signal  # signal.py builds IntEnums (~4 ms); the C module is enough

import _thread

from kago import log
from kago.errors import KagoError
from kago.host import procfs
from kago.kernel import consts as C
from kago.process.channel import Channel


class Spawn:
    """The processes of one spawn, kept so that a failure can undo them."""

    __slots__ = ("intermediate", "pid", "pid_start", "chan")

    def __init__(self):
        self.intermediate = None
        self.pid = None
        self.pid_start = None
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

    ``cgroup`` (or None, already created) receives the intermediate before it unshares
    anything, so the container inherits it; ``on_hooks(pid)`` runs prestart and
    createRuntime hooks and returns the state JSON.

    Latency: the first move of a task between cgroups waits for an RCU grace period in the
    kernel (~8 ms here, whatever the hierarchy). So the move happens in a short-lived thread
    started after the fork, while the intermediate imports and prepares its namespaces and we
    load ctypes; it is joined before the intermediate may unshare or fork. The thread makes
    one blocking write per hierarchy and nothing else, so it barely needs the GIL.
    """
    assert_single_threaded()
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
    placing = _Placement(cgroup, pid)
    try:
        from kago.kernel import libc  # ctypes: loaded while the thread waits on the kernel
        libc.prctl(C.PR_SET_CHILD_SUBREAPER, 1)
        _handshake(sp, plan, placing, on_hooks)
    except BaseException:
        placing.join()
        sp.kill()
        ours.close()
        raise
    return sp


class _Placement:
    """Create ``cgroup`` and move ``pid`` into it, in a thread; ``join()`` re-raises."""

    __slots__ = ("lock", "error")

    def __init__(self, cgroup, pid):
        self.lock = _thread.allocate_lock()
        self.error = None
        if cgroup is None:
            return
        self.lock.acquire()
        _thread.start_new_thread(self._run, (cgroup, pid))

    def _run(self, cgroup, pid):
        try:
            with log.phase("cgroup placement"):
                cgroup.add(pid)
        except BaseException as e:  # noqa: BLE001 - handed to join()
            self.error = e
        finally:
            self.lock.release()

    def join(self):
        self.lock.acquire()
        self.lock.release()
        if self.error is not None:
            err, self.error = self.error, None
            raise err


def _handshake(sp, plan, placing, on_hooks):
    chan = sp.chan
    hello = chan.recv(expect=("hello",))
    placing.join()
    if hello["userns"]:
        from kago.linux import idmap
        with log.phase("id maps"):
            idmap.write_maps(sp.intermediate, plan.uid_maps, plan.gid_maps)
    chan.send(t="ok")
    sp.pid = chan.recv(expect=("pid",))["pid"]
    # now, not after "ready": a program that exits at once is a zombie by then, and only the
    # start time tells a live container from a recycled pid later
    sp.pid_start = procfs.start_time(sp.pid)
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
