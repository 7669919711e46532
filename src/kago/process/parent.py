"""The runtime's side of the fork choreography (the protocol is in channel.py).

The runtime becomes a child subreaper first: the container process is a grandchild (the
intermediate exits as soon as it has forked it), and as subreaper the runtime inherits it, so it
can reap it on rollback and wait for it in ``run``/``exec`` without a re-parenting delay (this
VM's PID 1 reaps orphans 1-2 s late). When a ``create`` returns, the container's init is handed
on to the caller's subreaper (containerd's shim, conmon) or PID 1, as with runc.
"""

import errno
import os
import sys
import _signal as signal  # signal.py builds IntEnums (~4 ms); the C module is enough

from kago import log
from kago.version import OCI_VERSION
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


def spawn(plan, ctx_args, cgroup=None, on_hooks=None, exec_mode=False, prepare=None,
          state=None, seccomp_cache=None, on_pid=None):
    """Fork the container process; return the Spawn once it reported ``ready``.

    Three shapes (child.py). Without a user namespace, we fork the container process
    directly: we make its pid/time namespaces for our children only (namespaces.ForChildren)
    and it makes the rest itself, which saves a whole process. With a new user namespace and
    only new namespaces besides (as host root), we clone the container process straight into
    all of them (clone3 with CLONE_NEWUSER: every namespace it makes is owned by the new user
    namespace, as if unshared after it) and write its ID maps while it waits for them; no
    intermediate process either. Otherwise (a namespace to join, a time namespace, bind
    sources only host root can open, rootless, exec) an intermediate process unshares the
    user namespace, waits for us to write its ID maps, makes the other namespaces and forks
    the container process (the maps must exist before anything else is made in the
    namespace).

    ``cgroup`` (a created Manager, or None): the first child is born in its cgroup2 directory
    (clone3) and joins the v1 hierarchies itself, before anything is unshared; we never move a
    task, which would cost an RCU grace period (docs/latency.md). ``on_hooks(pid)`` runs
    prestart and createRuntime hooks and returns the state JSON. ``prepare()`` (cgroup limits)
    runs once the container process exists, while it makes its namespaces and mounts; it
    waits for our "go" before its devices, any hook or anything of the container
    (steps.cgroup_limits; runc sets the limits after the container's mounts too).
    A seccomp filter is compiled here, before the fork (the child only loads it), or taken
    from ``seccomp_cache``, a directory of compiled filters; ``state(pid)`` is the container's
    OCI state, sent with a seccomp listener fd to ``listenerPath``. ``on_pid(pid)`` runs as
    soon as the container process's pid is known, before its "go" (and after every fork of
    ours that the container's processes come from, so what it installs is not inherited).
    """
    if plan.process.seccomp is not None:
        from kago.linux import seccomp
        with log.phase("seccomp compile"):
            seccomp.compile(plan.process.seccomp, seccomp_cache)
    assert_single_threaded()
    # the child's modules are loaded here, not after the fork: in a fresh fork every import
    # also pays copy-on-write faults, and the child's path is the critical one (~0.35 ms)
    from kago.process import child
    from kago.kernel import libc
    from kago.host.rootless import in_user_namespace
    libc.prctl(C.PR_SET_CHILD_SUBREAPER, 1)
    # non-dumpable before the fork, not just in the child: the child inherits the flag, and
    # from its first instant it may be visible in the container's pid namespace (exec forks it
    # straight there), where a dumpable process would expose /proc/<pid>/exe, the host's
    # interpreter, to the container (the CVE-2019-5736 window)
    libc.prctl(C.PR_SET_DUMPABLE, 0)
    ours, theirs = Channel.pair()
    sp = Spawn()
    sp.chan = ours
    # as root of a user namespace (rootless podman), setns back to our own pid namespace is
    # refused (its owner is the host's): the intermediate makes the container's instead
    direct = not plan.has_ns("user") and not in_user_namespace()
    born_in_userns = False
    if not direct and _can_clone_into_userns(plan, exec_mode):
        pid, born_in_cgroup = _clone_into_userns(plan, cgroup)
        born_in_userns = pid is not None
    if not born_in_userns:
        pid, born_in_cgroup = _fork_first(plan, cgroup, direct)
    if pid == 0:
        try:
            ours.close()
            join_unified = cgroup is not None and not born_in_cgroup
            if born_in_userns:
                child.born_in_userns(theirs, plan, ctx_args, cgroup, join_unified)
            entry = child.direct if direct else child.intermediate
            entry(theirs, plan, ctx_args, exec_mode, cgroup, join_unified=join_unified)
        finally:
            os._exit(1)  # whatever happens, the child never unwinds into our caller
    theirs.close()
    try:
        if direct:
            sp.pid = pid
            sp.pid_start = procfs.start_time(pid)
            _release(ours, pid, prepare, on_pid)
        elif born_in_userns:
            sp.pid = pid
            sp.pid_start = procfs.start_time(pid)
            _write_maps(sp, plan)
            _release(ours, pid, prepare, on_pid)
        else:
            sp.intermediate = pid
            _intermediate_handshake(sp, plan, prepare, on_pid)
        _readiness(sp, on_hooks, lambda fd: _pass_listener(plan, sp.pid, fd, state, exec_mode))
    except BaseException:
        sp.kill()
        ours.close()
        raise
    return sp


def _send_go(chan):
    """Tell the container process to start its steps. It may have failed already (joining a
    namespace, say) and closed its end: then its error, waiting in the channel, is the one
    to report, not our EPIPE."""
    try:
        chan.send(t="go")
    except OSError:
        chan.recv()  # raises the child's error (or ChannelClosed if it left none)
        raise


def _fork_first(plan, cgroup, direct):
    """Fork the first child; for the direct shape, into the container's pid/time namespaces."""
    if not direct:
        return _fork_into(cgroup)
    from kago.linux.namespaces import ForChildren
    children = ForChildren()
    try:
        children.enter(plan.namespaces, plan.time_offsets)
        forked = _fork_into(cgroup)
    except BaseException:
        children.restore()
        raise
    if forked[0] != 0:
        children.restore()  # our later children (hooks) are born in our own namespaces
    return forked


# clone3 refused for what it was asked, not failed: the caller takes a plain fork
_CLONE3_UNSUPPORTED = (errno.ENOSYS, errno.EINVAL, errno.E2BIG, errno.EOPNOTSUPP)


def _raw_clone_safe():
    """threading registers after-fork hooks that a raw clone3 would skip: without it loaded,
    a raw clone3 is as safe as os.fork here."""
    return "threading" not in sys.modules


def _fork_into(cgroup):
    """Fork the intermediate directly into the container's cgroup2 directory when there is one.

    clone3(CLONE_INTO_CGROUP) from here, where we are still host root (inside a user namespace
    the kernel would refuse it); the v1 hierarchies the intermediate joins itself. Returns
    (pid, whether the child was born in the cgroup2 directory). We are single-threaded here
    (asserted), which is what makes a raw clone3 safe: see kernel.libc.clone3_into_cgroup.
    """
    fd = cgroup.unified_fd() if cgroup is not None else None
    if fd is None or not _raw_clone_safe():
        if fd is not None:
            os.close(fd)
        return os.fork(), False
    from kago.kernel import libc
    try:
        return libc.clone3_into_cgroup(fd), True
    except OSError as e:
        if e.errno not in _CLONE3_UNSUPPORTED:
            raise
        return os.fork(), False  # kernel < 5.7: the child moves itself (one grace period)
    finally:
        os.close(fd)


def _can_clone_into_userns(plan, exec_mode):
    """Whether the container process can be cloned straight into its new user namespace and
    all its other namespaces (one clone3, no intermediate process): from a process without
    ``threading`` (a raw clone3 skips its after-fork hooks), and where the plan fits."""
    return _raw_clone_safe() and userns_clone_fits(plan, exec_mode)


def userns_clone_fits(plan, exec_mode):
    """The plan's side of ``_can_clone_into_userns``: as host root, a create whose
    namespaces are all new (joining an existing one needs host root's capabilities, which a
    process born in a new user namespace has lost), without a time namespace (its offsets
    are written before anyone is in it) and without bind sources that only a helper with
    host root's credentials can open (child.SourceOpener)."""
    if exec_mode or not plan.new_ns("user"):
        return False
    if os.geteuid() != 0:
        return False
    from kago.host.rootless import in_user_namespace
    if in_user_namespace():
        return False
    if any(path is not None or kind == "time" for kind, _flag, path in plan.namespaces):
        return False
    from kago.process.child import source_opener_indices
    return not source_opener_indices(plan)


def _clone_into_userns(plan, cgroup):
    """clone3 into a new user namespace and the plan's other new namespaces (but cgroup: the
    container process makes that once inside its cgroups), and into the container's cgroup2
    directory when there is one. Returns (pid, born in the cgroup2 directory), or (None,
    False) where the kernel refuses it (the caller then takes the intermediate shape)."""
    from kago.kernel import libc
    from kago.linux import namespaces
    flags = C.CLONE_NEWUSER | namespaces.unshare_flags(plan.namespaces)
    fd = cgroup.unified_fd() if cgroup is not None else None
    try:
        return libc.clone3(flags, fd), fd is not None
    except OSError as e:
        if e.errno not in _CLONE3_UNSUPPORTED + (errno.EPERM,):
            raise
        return None, False
    finally:
        if fd is not None:
            os.close(fd)


def _write_maps(sp, plan):
    """The container process's ID maps (host root: any map is valid), once it said hello."""
    chan = sp.chan
    chan.recv(expect=("hello",))
    from kago.kernel import idmap
    with log.phase("id maps"):
        idmap.write_maps(sp.pid, plan.uid_maps, plan.gid_maps)
    chan.send(t="ok", setgroups_denied=False)


def _intermediate_handshake(sp, plan, prepare, on_pid=None):
    """Write the intermediate's ID maps, learn the container process's pid, then apply the
    cgroup limits while it mounts (it waits for our "go" before its devices and hooks).

    The limits come after the "ok", not before it: the intermediate waits for that "ok", and
    writing them first (1.4 ms here) kept every user-namespaced start waiting for them."""
    chan = sp.chan
    hello = chan.recv(expect=("hello",))
    denied = False
    if hello["userns"]:
        from kago.kernel import idmap
        with log.phase("id maps"):
            euid = os.geteuid()
            if euid == 0:  # host root, or root of a user namespace: any map valid there
                idmap.write_maps(sp.intermediate, plan.uid_maps, plan.gid_maps)
            else:
                denied = idmap.write_maps_unprivileged(sp.intermediate, plan.uid_maps,
                                                       plan.gid_maps, euid, os.getegid())
    chan.send(t="ok", setgroups_denied=denied)
    sp.pid = chan.recv(expect=("pid",))["pid"]
    # now, not after "ready": a program that exits at once is a zombie by then, and only the
    # start time tells a live container from a recycled pid later
    sp.pid_start = procfs.start_time(sp.pid)
    _reap(sp.intermediate)
    sp.intermediate = None
    _release(chan, sp.pid, prepare, on_pid)


def _release(chan, pid, prepare, on_pid):
    """The container process ``pid`` exists: tell ``on_pid``, apply the limits, send "go"."""
    if on_pid:
        on_pid(pid)
    if prepare:
        prepare()
    _send_go(chan)


def _readiness(sp, on_hooks, on_listener):
    """Serve hook requests (and a seccomp listener) until the container process is ready."""
    chan = sp.chan
    while True:
        msg = chan.recv(expect=("hooks", "seccomp", "ready"), with_fds=True)
        fds = msg["fds"]
        listener = fds.pop(0) if msg["t"] == "seccomp" and fds else None
        for fd in fds:
            os.close(fd)  # only "seccomp" comes with an fd
        if msg["t"] == "ready":
            break
        if msg["t"] == "seccomp":
            if listener is None:
                raise KagoError("the container process sent no seccomp listener fd")
            try:
                on_listener(listener)
            finally:
                os.close(listener)
            chan.send(t="ok")
            continue
        try:
            state = on_hooks(sp.pid) if on_hooks else "{}"
        except BaseException:
            chan.send(t="abort")
            raise
        chan.send(t="ok", state=state)
    chan.close()


def _pass_listener(plan, pid, fd, state, exec_mode):
    """Send a seccomp listener fd, with the container's state, to the spec's listenerPath."""
    from kago.linux import seccomp
    doc = state(pid) if state else {"ociVersion": OCI_VERSION, "id": plan.id,
                                    "status": "running" if exec_mode else "creating",
                                    "pid": pid, "bundle": plan.bundle}
    with log.phase("seccomp listener"):
        seccomp.send_listener(plan.process.seccomp, fd, pid, doc)


def forward_signals_to(pid):
    """From now on, the signals a shell sends us go to ``pid``."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
        signal.signal(sig, lambda s, _f: _forward(pid, s))


def wait(pid, forward_signals=True):
    """Wait for ``pid`` (our child as subreaper), forwarding signals; return a shell status."""
    if forward_signals:
        forward_signals_to(pid)
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
