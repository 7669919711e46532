"""The forked side: the intermediate process and the container's init (or exec'd process).

Every function here runs after ``os.fork`` and leaves only through ``os._exit``: an exception
must never unwind into the parent's code (its ``finally`` blocks, atexit handlers, or pytest).
Errors are sent to the runtime over the channel, then the process exits 1.
"""

import os

from kago import log
from kago.errors import KagoError, KernelError
from kago.host.rootless import in_user_namespace
from kago.kernel import consts as C
from kago.kernel import libc
from kago.linux import namespaces
from kago.process.steps import CREATE_STEPS, EXEC_STEPS, InitContext


def _die(chan, exc):
    if not isinstance(exc, (KagoError, OSError)):
        exc = KagoError(f"internal error: {exc!r}{_where(exc)}")
    chan.send_error(exc)
    os._exit(1)


def _preload(plan):
    """Import now what later steps need: once in the container's mount namespace (joined by
    exec, or after the root switch) kago's module files are out of reach."""
    if plan.process.terminal:
        from kago.process import tty  # noqa: F401
    if plan.hooks.get("startContainer") or plan.hooks.get("createContainer"):
        from kago.process import hooks  # noqa: F401


def _close_inherited(chan, ctx_args, plan=None):
    """Close every fd kago-oci inherited from its caller that the container was not given.

    They would be closed at the program's execve anyway (close_fds marks them close-on-exec),
    but a created container's init waits for ``start`` inside the container's namespaces
    holding them; runc's init never has them (it is a fresh exec with chosen fds).
    """
    keep = {0, 1, 2, chan.fileno(), log.fd()}  # the --log file, shared with the runtime
    keep.update(range(3, 3 + (ctx_args.get("preserve") or 0)))
    keep.update(ctx_args.get(k) for k in ("fifo_fd", "console_fd", "root_fd_for_exec"))
    # idmapped mounts' user namespaces: closed by mounts.mount_one once each mount is made
    keep.update(op.userns_fd for op in ((plan.mounts or ()) if plan is not None else ()))
    # the gaps between the kept fds, each in one close_range(2) (os.closerange): no listing of
    # /proc/self/fd and a close per fd (a supervisor's worker inherits hundreds)
    low = 0
    for fd in sorted(fd for fd in keep if fd is not None and fd >= 0):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 0x7FFFFFFF)


def _where(exc):
    """Where ``exc`` was raised, without importing traceback: after the root switch no
    module file can be imported, and a failing import here would lose the error."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    return f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


def _prologue(chan, plan, ctx_args, cgroup, join_unified):
    """What the first child does before any namespace: shared by both shapes (parent.spawn)."""
    # non-dumpable while inside the container's namespaces: its processes must not be able to
    # ptrace us or open /proc/<pid>/exe (the CVE-2019-5736 class)
    libc.prctl(C.PR_SET_DUMPABLE, 0)
    _preload(plan)
    _close_inherited(chan, ctx_args, plan)
    with log.phase("cgroups join"):
        # first: once a mount namespace is joined, the host's cgroupfs is out of reach (the
        # cgroup2 tree: we were born there by clone3, unless the kernel lacks it)
        if cgroup is not None:
            cgroup.enter_self()
            if join_unified:
                cgroup.enter_unified_self()


def intermediate(chan, plan, ctx_args, exec_mode=False, cgroup=None, join_unified=False):
    """Join cgroups and namespaces, get ID maps, fork the container process, report its pid."""
    try:
        _prologue(chan, plan, ctx_args, cgroup, join_unified)
        with log.phase("namespaces"):
            # before joining anything: the opener must keep the host's user namespace
            opener = None if exec_mode else SourceOpener.start(plan, chan)
            opened = namespaces.open_paths(plan.namespaces)
            namespaces.join(opened)
            namespaces.close_all(opened)
            _new_userns_or_hello(chan, plan)
            flags = namespaces.unshare_flags(plan.namespaces)
            if flags:
                libc.unshare(flags)
            sources = opener.collect() if opener else {}
            if plan.new_ns("time"):
                namespaces.write_time_offsets(plan.time_offsets)
        pid = os.fork()
    except BaseException as e:  # noqa: BLE001 - must reach os._exit
        _die(chan, e)
    if pid == 0:
        try:
            ctx = InitContext(plan, chan, **ctx_args)
            ctx.sources = sources
            ctx.awaiting_go = True  # the cgroup_limits step waits for it, after the mounts
        except BaseException as e:  # noqa: BLE001 - must reach os._exit
            _die(chan, e)
        run_steps(ctx, EXEC_STEPS if exec_mode else CREATE_STEPS)
        os._exit(1)  # not reached: run_steps execs or exits
    try:
        chan.send(t="pid", pid=pid)
    finally:
        os._exit(0)


def direct(chan, plan, ctx_args, exec_mode=False, cgroup=None, join_unified=False):
    """The container process itself, forked straight from the runtime (no user namespace).

    The runtime made the pid (and time) namespace for its children before forking us, so we
    are already in them; the rest we join or make here, then run the init steps.
    """
    try:
        _prologue(chan, plan, ctx_args, cgroup, join_unified)
        with log.phase("namespaces"):
            own = [ns for ns in plan.namespaces if ns[0] not in namespaces.FOR_CHILDREN]
            opened = namespaces.open_paths(own)
            namespaces.join(opened)
            namespaces.close_all(opened)
            flags = namespaces.unshare_flags(own)
            if flags:
                libc.unshare(flags)
        ctx = InitContext(plan, chan, **ctx_args)
        ctx.awaiting_go = True  # the cgroup_limits step waits for it, after the mounts
    except BaseException as e:  # noqa: BLE001 - must reach os._exit
        _die(chan, e)
    run_steps(ctx, EXEC_STEPS if exec_mode else CREATE_STEPS)
    os._exit(1)  # not reached: run_steps execs or exits


def born_in_userns(chan, plan, ctx_args, cgroup=None, join_unified=False):
    """The container process itself, cloned by the runtime straight into a new user namespace
    and the container's other new namespaces (parent.spawn's third shape: no intermediate).
    Its credentials are still host root's until the maps are written and it becomes root of
    the namespace, so it can still join its v1 cgroups itself."""
    try:
        _prologue(chan, plan, ctx_args, cgroup, join_unified)
        with log.phase("namespaces"):
            _hello(chan, plan, new_user=True, unprivileged=False)
        ctx = InitContext(plan, chan, **ctx_args)
        ctx.awaiting_go = True  # the cgroup_limits step waits for it, after the mounts
    except BaseException as e:  # noqa: BLE001 - must reach os._exit
        _die(chan, e)
    run_steps(ctx, CREATE_STEPS)
    os._exit(1)  # not reached: run_steps execs or exits


def source_opener_indices(plan):
    """The bind mounts whose sources a user-namespaced container needs opened by a helper
    with host root's credentials (SourceOpener), by index in ``plan.mounts``."""
    # only sources the mapped root cannot reach need one (the container's own cgroup
    # dirs, the usual binds, it can): no helper process, a fork and its exit (~2 ms)
    from kago.host.facts import closed_ancestor
    modes = {}
    # and idmapped binds: only host root may idmap a host filesystem
    return [i for i, op in enumerate(plan.mounts) if op.is_bind and (
        op.idmap is not None or not (op.source or "").startswith("/")
        or closed_ancestor(op.source, modes))]


class SourceOpener:
    """Opens bind-mount sources with the host's credentials, for a user-namespaced container.

    Root in a new user namespace is an unprivileged host ID: it cannot reach a source under a
    host directory it may not search (mode 700, owned by root). Like runc's mount-source fds, a
    helper forked before the user namespace keeps host root; once the container's mount
    namespace exists it joins it, opens each source O_PATH and sends the fds over a socket.
    The sources are opened in the container's mount namespace (not the host's), so a bind of
    them there is allowed, and keeps the flags the kernel locked when that namespace was copied.
    """

    __slots__ = ("pid", "sock", "indices")

    def __init__(self, pid, sock, indices):
        self.pid = pid
        self.sock = sock
        self.indices = indices

    @classmethod
    def start(cls, plan, chan):
        if not plan.has_ns("user"):
            return None
        indices = source_opener_indices(plan)
        if not indices:
            return None
        import _socket
        ours, theirs = _socket.socketpair(_socket.AF_UNIX,
                                          _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            ours.close()
            chan.close()  # the runtime must see EOF when the intermediate dies, not wait for us
            _serve_sources(theirs, plan, indices)
        theirs.close()
        return cls(pid, ours, indices)

    def collect(self):
        """Call once in the container's mount namespace: {mount index: O_PATH fd}."""
        import _socket
        import struct
        fds = {}
        try:
            self.sock.send(b"go")
            for index in self.indices:
                msg, anc, _f, _a = self.sock.recvmsg(4096, _socket.CMSG_SPACE(4))
                if not anc:
                    raise KagoError(msg.decode() or "the bind source opener exited")
                fds[index] = struct.unpack("i", anc[0][2][:4])[0]
        finally:
            self.sock.close()
            os.waitpid(self.pid, 0)
        return fds


def _serve_sources(sock, plan, indices):
    """The opener (host root): wait for "go", join the container's mount ns, send the fds."""
    import _socket
    import struct
    try:
        if sock.recv(16) != b"go":
            os._exit(0)  # the intermediate died: nothing to do
        ns = os.open(f"/proc/{os.getppid()}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        libc.setns(ns, C.CLONE_NEWNS, path="mount namespace of the container")
        for index in indices:
            op = plan.mounts[index]
            try:
                if op.idmap is not None:  # the detached idmapped tree (kernel.idmap)
                    from kago.kernel import idmap
                    fd = idmap.idmapped_tree(op.source, op.userns_fd,
                                             bool(op.flags & C.MS_REC), op.idmap[3])
                else:
                    fd = os.open(op.source, os.O_PATH | os.O_CLOEXEC)
            except KernelError as e:
                raise KagoError(f"{e} (idmapped mount {op.destination})") from None
            except OSError as e:
                raise KagoError(f"open {op.source} (source of mount {op.destination}): "
                                f"{os.strerror(e.errno).lower()}") from None
            sock.sendmsg([b"fd"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                    struct.pack("i", fd))])
            os.close(fd)
    except BaseException as e:  # noqa: BLE001 - must reach os._exit
        try:
            sock.send(str(e).encode() or b"bind source opener failed")
        except OSError:
            pass
    os._exit(0)


def _new_userns_or_hello(chan, plan):
    new_user = plan.new_ns("user")
    unprivileged = new_user and (os.geteuid() != 0 or in_user_namespace())
    if new_user:
        libc.unshare(C.CLONE_NEWUSER)
        if unprivileged:
            # the caller (or newuidmap, which checks who owns /proc/PID) writes our maps as
            # the same unprivileged user (host root only if we are its root: the rootless
            # manager's holder): our /proc files must be ours, not host root's, till then
            libc.prctl(C.PR_SET_DUMPABLE, 1)
    _hello(chan, plan, new_user, unprivileged)


def _hello(chan, plan, new_user, unprivileged):
    """Ask the runtime for our ID maps (``new_user``), then become root of the namespace."""
    chan.send(t="hello", userns=new_user)
    ok = chan.recv(expect=("ok",))
    if unprivileged:
        libc.prctl(C.PR_SET_DUMPABLE, 0)
    if ok.get("setgroups_denied"):
        plan.process.setgroups_denied = True
    if new_user:
        with log.phase("become root in user namespace"):
            _become_root(plan)
    elif plan.has_ns("user"):
        # a joined user namespace: its root, as runc's nsexec stage 2 (setuid(0), setgid(0),
        # setgroups) does; else kago's host IDs are unmapped there, and every mkdir of the
        # mounts fails with EOVERFLOW. A rootless one may refuse setgroups ("deny").
        # (its /proc/self/setgroups cannot be read here: /proc is the container's by now,
        # and we are not in its pid namespace; with all capabilities in the namespace, EPERM
        # can only be that "deny")
        try:
            os.setgroups([])
        except PermissionError:
            plan.process.setgroups_denied = True
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)


def _become_root(plan):
    """Be uid/gid 0 inside the new user namespace, so files we create have mapped owners."""
    if any(cid == 0 for cid, _h, _s in plan.gid_maps):
        if not plan.process.setgroups_denied:
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
            os._exit(getattr(e, "status", 126))
