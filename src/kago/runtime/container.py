"""The container lifecycle: the library API the CLI (and later the manager) calls.

States (runtime-spec runtime.md): creating -> created -> running -> stopped, and paused.
The persisted record says what was done; the live status is derived from it and the kernel:
the init's pid + start time (is it alive), the exec fifo (has ``start`` happened), the freezer.

    create  validate -> plan -> reserve ID -> cgroup -> fork (process.parent) -> record
            any failure undoes every step before it (a failed create leaves nothing behind)
    start   open the exec fifo: the init's blocked open returns and it execs the program
    run     create without the fifo, then wait (or detach) and, in the foreground, delete
    delete  kill what is left, remove the cgroup, poststop hooks, remove the record
"""

import errno
import os
import time

from kago import jsonio, log
from kago.version import OCI_VERSION
from kago.errors import (CgroupError, ContainerNotFound, CreateError, IncorrectStatus, KagoError,
                         SpecError, UsageError)
from kago.runtime import store as st
from kago.runtime import Undo

CREATED, RUNNING, STOPPED, PAUSED, CREATING = "created", "running", "stopped", "paused", "creating"

# The cgroup layout (kago.linux.cgroups.detect), when a long-lived caller detected it once: the
# manager's supervisor, whose forked start workers would otherwise each parse a mountinfo that
# grows by a mount per container. None: detect it per create (kago-oci, one create a process).
LAYOUT = None
_WARM = False  # warm() has run in this process


def warm():
    """For a long-lived caller that forks a create per container (the manager's supervisor):
    import what create uses once, and detect the cgroup layout once (the hierarchies do not
    move; mountinfo grows by a mount per container). Also the limits' devices section (every
    spec the manager writes has one) and libseccomp's dlopen (the default profile): each
    forked create paid them, 0.3-0.6 ms in all. And the sections the manager's own flags
    write (cpu, memory, pids) and the ID-map writer (every container with an ID range):
    a forked create importing one paid ~0.4 ms each in CPU, copy-on-write faults included."""
    global LAYOUT, _WARM
    if _WARM:
        return  # warmed already (the start forker warms at its birth and per runtime root)
    from kago.kernel import idmap, libseccomp  # noqa: F401
    from kago.linux import cgroups, mounts, namespaces, seccomp  # noqa: F401
    from kago.linux.cgroups import limits  # noqa: F401
    from kago.linux.cgroups.resources import cpu, devices, memory, misc  # noqa: F401
    libseccomp.available()
    from kago.plan import build, validate  # noqa: F401
    from kago.process import channel, child, hooks, parent, steps  # noqa: F401
    from kago.runtime import options  # noqa: F401
    LAYOUT = cgroups.detect()
    _WARM = True


def keep_layout():
    """For a long-lived caller that reads containers' cgroups without creating any (the
    manager's supervisor, at each end: resources.oom_killed_at): detect the cgroup layout once,
    as warm() does, instead of parsing mountinfo at every call."""
    global LAYOUT
    if LAYOUT is None:
        from kago.linux import cgroups
        LAYOUT = cgroups.detect()


def layout():
    """The cgroup layout: the one warm() detected, or this mount namespace's now."""
    if LAYOUT is not None:
        return LAYOUT
    from kago.linux import cgroups
    return cgroups.detect()


# --- loading and planning (no side effects) -----------------------------------------------

def load_config(bundle):
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise SpecError("", f"open {path}: {os.strerror(e.errno).lower()}") from None
    cfg = jsonio.loads(data, what="config.json")
    from kago.oci import schema
    schema.validate_config(cfg)
    if not isinstance(cfg.get("process"), dict):
        raise SpecError("process", "is required to create a container")
    return cfg


def make_plan(cfg, bundle, container_id, opts):
    """The plan of ``cfg``, a spec from ``load_config`` (which checked its structure)."""
    from kago.plan import build, validate
    from kago.host.facts import enabled_lsms, last_cap
    lsms = enabled_lsms()
    with log.phase("validate"):
        for warning in validate.validate(cfg, cap_last_cap=last_cap(), lsms=lsms,
                                         structure_checked=True):
            log.warning(warning)
    with log.phase("plan"):
        plan = build.build(cfg, bundle, container_id, no_pivot=opts.no_pivot,
                           extra_env=opts.listen_env())
        build.check_host(plan)
    if "apparmor" not in lsms:
        plan.process.apparmor_profile = None  # warned about above: nothing can apply it
    if "selinux" not in lsms:
        plan.process.selinux_label = None
    return plan


# --- create / run ---------------------------------------------------------------------------

def create(store, container_id, bundle, opts, mode="create", on_pid=None):
    """Create the container (mode "create") or create it started (mode "run").

    Returns the container's record. On failure nothing is left: no process, mount, cgroup or
    state directory. ``on_pid(pid)``: called once the container process exists, before it
    goes on to run anything of the container (process.parent.spawn).
    """
    bundle = os.path.abspath(bundle)
    st.validate_id(container_id)
    with log.phase("spec load"):
        cfg = load_config(bundle)
    plan = make_plan(cfg, bundle, container_id, opts)
    _check_terminal(plan, opts, mode)
    euid = os.geteuid()
    if euid != 0:
        from kago.runtime.rootless import check_maps
        check_maps(plan, euid, os.getegid())
    undo = Undo()
    try:
        return _create(store, container_id, bundle, cfg, plan, opts, mode, undo, on_pid)
    except BaseException as e:
        cleanup_errors = undo.run()
        if cleanup_errors or not isinstance(e, KagoError):
            raise CreateError(e, cleanup_errors) from e
        raise


def _check_terminal(plan, opts, mode):
    if plan.process.terminal and not opts.console_socket and (mode == "create" or opts.detach):
        raise UsageError("cannot allocate tty if kago-oci will detach without setting "
                         "console socket")
    if opts.console_socket and not plan.process.terminal:
        raise UsageError("--console-socket given but process.terminal is false")


def _create(store, container_id, bundle, cfg, plan, opts, mode, undo, on_pid=None):
    state_dir = store.reserve(container_id)
    undo.push(store.remove, container_id)
    record = new_record(container_id, bundle, plan, cfg)
    store.save(container_id, record)
    notify_sock = _notify(plan, state_dir, bundle, opts, mode, undo)
    fifo = None
    if mode == "create":
        fifo = st.mkfifo(os.path.join(state_dir, st.FIFO))
    cgroup = _plan_cgroup(plan, undo, opts.rootless)
    if not plan.has_ns("mount"):
        _host_mounts(plan, record, undo)
    fds = _Fds(undo)
    _idmap_namespaces(plan, fds)
    ctx_args = {"preserve": opts.total_preserved(), "new_keyring": not opts.no_new_keyring}
    if fifo:
        ctx_args["fifo_fd"] = fds.open(fifo, os.O_PATH)
    console = _console(plan, opts, fds)
    ctx_args["console_fd"] = console[0] if console else None
    from kago.process import parent
    with log.phase("spawn"):
        sp = parent.spawn(plan, ctx_args, cgroup,
                          on_hooks=lambda pid: _creation_hooks(plan, record, pid),
                          prepare=_limits(cgroup, plan.resources, opts.rootless),
                          state=lambda pid: oci_state(record, CREATING, pid),
                          seccomp_cache=store.seccomp_cache(), on_pid=on_pid)
    undo.push(sp.kill)
    fds.close_all()
    if cgroup is not None:
        record["kago"]["cgroup"] = cgroup.to_record()  # after spawn: it lists what was made
    record["pid"] = sp.pid
    record["kago"]["pid_start"] = sp.pid_start
    record["status"] = CREATED if mode == "create" else RUNNING
    store.save(container_id, record)
    if opts.pid_file:
        write_pid_file(opts.pid_file, sp.pid)
    record["kago"]["console_peer"] = console[1] if console else None
    record["kago"]["notify_socket"] = notify_sock
    return record


def _notify(plan, state_dir, bundle, opts, mode, undo):
    """NOTIFY_SOCKET (runtime.notify): the container gets a notify directory of its own, and
    ``run`` binds the socket it will relay from; returns that socket (or None)."""
    if not opts.notify_socket:
        return None
    from kago.runtime import notify
    from kago.plan.build import mount_op
    notify.make_directory(state_dir)
    plan.mounts.append(mount_op(notify.mount(state_dir), bundle, f"mounts[{len(plan.mounts)}]"))
    plan.process.env = list(plan.process.env or ()) + [notify.ENV]
    if mode != "run":
        return None  # ``start`` binds it
    sock = notify.bind(state_dir)
    undo.push(sock.close)
    return sock


def _idmap_namespaces(plan, fds):
    """The user namespace of each idmapped mount, as an fd the container process inherits
    (mounts.mount_one closes it): a new one with the mount's maps, made once per distinct
    map (kernel.userns's holder), or the joined user namespace's path, opened."""
    made = {}
    for op in plan.mounts:
        if op.idmap is None:
            continue
        uids, gids, path, _recursive = op.idmap
        if path:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise KagoError(f"open user namespace {path} for idmapped mount "
                                f"{op.destination}: {os.strerror(e.errno).lower()}") from None
        else:
            key = (tuple(map(tuple, uids)), tuple(map(tuple, gids)))
            if key not in made:
                from kago.kernel import idmap
                with log.phase("idmap user namespace"):
                    made[key] = fds.add(idmap.make_userns(uids, gids))
            fd = os.dup(made[key])  # one per mount: each is closed once its mount is made
        op.userns_fd = fds.add(fd)


def _host_mounts(plan, record, undo):
    """No mount namespace: the container's mounts are made in the host's, under the rootfs.
    Remember what was there before, so that a failed create and ``delete`` take away every
    mount under the rootfs the container made (its own included), and only those."""
    from kago.linux import rootfs
    before = [mid for mid, _point in rootfs.mounts_under(plan.rootfs)]
    record["kago"]["host_mounts"] = {"root": plan.rootfs, "before": before}
    undo.push(rootfs.unmount_new, plan.rootfs, before)


def _unmount_host_mounts(record):
    found = (record.get("kago") or {}).get("host_mounts")
    if found:
        from kago.linux import rootfs
        rootfs.unmount_new(found["root"], found["before"])


class _Fds:
    """fds opened for the child; closed after the spawn, or by the rollback."""

    __slots__ = ("fds",)

    def __init__(self, undo):
        self.fds = []
        undo.push(self.close_all)

    def open(self, path, flags):
        fd = os.open(path, flags | os.O_CLOEXEC)
        self.fds.append(fd)
        return fd

    def add(self, fd):
        self.fds.append(fd)
        return fd

    def close_all(self):
        while self.fds:
            try:
                os.close(self.fds.pop())
            except OSError:
                pass


def _console(plan, opts, fds):
    """(fd for the child, our end or None): the console socket, or a pair for run's proxy."""
    if not plan.process.terminal:
        return None
    import _socket
    if opts.console_socket:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            sock.connect(opts.console_socket)
        except OSError as e:
            sock.close()
            raise KagoError(f"connect console socket {opts.console_socket}: "
                            f"{os.strerror(e.errno).lower()}") from None
        return fds.add(sock.detach()), None
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    from kago.process import tty
    size = tty.terminal_size(0)
    if size is not None:
        # our proxy makes the pty follow our terminal (runc resizes it once started): it
        # starts at that size, so the container's first look at it sees the right one
        plan.process.console_size = {"height": size[0], "width": size[1]}
    return fds.add(b.detach()), a


def _plan_cgroup(plan, undo, rootless=False):
    """Create the container's cgroup (process.parent moves the container into it).

    ``rootless`` (runc's --rootless): a cgroup the caller may not create is skipped, not an
    error; the container then stays in the caller's cgroups (runtime.rootless)."""
    from kago.linux import cgroups
    from kago.plan.build import expand_cgroup_mount
    with log.phase("cgroups"):
        layout = LAYOUT if LAYOUT is not None else cgroups.detect()
        if not layout.hierarchies:
            log.warning("no cgroup hierarchy is mounted: the container gets no cgroup")
            return None
        if rootless and plan.cgroups_path == f"/kago-{plan.id}":
            # no cgroupsPath in the spec: runc's rootless default, beside the caller's own
            # cgroup (under its parent on pure v2), where a delegated subtree is
            plan.cgroups_path = f"kago-{plan.id}"
        mgr = cgroups.open_manager(plan.cgroups_path, layout)
        if mgr.exists():
            mgr.check_reusable()  # an empty cgroup is reused, as runc does
        if rootless:
            from kago.runtime import rootless as rl
            mgr = rl.create_cgroup(mgr, plan.resources)
            if mgr is None:
                paths = rl.own_cgroup_dirs(layout)
        else:
            mgr.create()
        if mgr is not None:
            undo.push(mgr.destroy)
            paths = mgr.paths()
    mounts = []
    for op in plan.mounts:
        mounts.extend(expand_cgroup_mount(op, paths) if op.fstype == "cgroup" else [op])
    plan.mounts = mounts
    return mgr


def _limits(cgroup, resources, rootless=False):
    """The cgroup limits, applied by process.parent while the first child gets ready (it
    waits for them before its first step). Rootless, a limit the caller may not write (a
    controller not delegated to it) is skipped with a warning."""
    if cgroup is None or not resources:
        return None

    def apply():
        with log.phase("cgroup limits"):
            if rootless:
                from kago.runtime.rootless import apply_limits
                apply_limits(cgroup, resources)
            else:
                cgroup.apply(resources)
    return apply


def _creation_hooks(plan, record, pid):
    from kago.process.hooks import run_hooks
    # "created", as crun passes it (runc: "creating"): runtime-tools' hooks_stdin requires it
    # of prestart; createContainer gets this same document
    state = oci_state(record, CREATED, pid)
    text = jsonio.dumps(state)
    run_hooks("prestart", plan.hooks.get("prestart"), text)
    run_hooks("createRuntime", plan.hooks.get("createRuntime"), text)
    return text


def new_record(container_id, bundle, plan, cfg):
    return {
        "ociVersion": cfg.get("ociVersion", OCI_VERSION), "id": container_id, "pid": 0,
        "status": CREATING, "bundle": bundle, "rootfs": plan.rootfs,
        "created": _now(), "owner": "", "annotations": plan.annotations,
        "kago": {"creator": os.getpid(), "creator_start": st.start_time(os.getpid()),
                 "process": cfg.get("process"), "hooks": (cfg.get("hooks") or {}),
                 # exec'd processes get the container's filter too, as with runc
                 "seccomp": (cfg.get("linux") or {}).get("seccomp"),
                 "cgroup": None, "pid_start": None},
    }


def _now():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def write_pid_file(path, pid):
    """Write via tmp + rename (as runc): a reader never sees an empty pid file."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as e:
        raise KagoError(f"write pid file {path}: {os.strerror(e.errno).lower()}") from None


# --- status ---------------------------------------------------------------------------------

def status(store, record):
    ended = _ended_or_creating(record)
    if ended:
        return ended
    mgr = cgroup_of(record)
    if mgr is not None and _frozen(mgr):
        return PAUSED
    if not st.alive(record.get("pid"), record["kago"].get("pid_start")):
        return STOPPED   # it ended while its cgroup was read: the cgroup may be gone too
    if os.path.exists(os.path.join(store.dir(record["id"]), st.FIFO)):
        return CREATED
    return RUNNING


def _ended_or_creating(record):
    """CREATING while its ``create`` runs, STOPPED once that or the init is gone, else None
    (created, running or paused: what the rest of status() tells apart)."""
    kago = record.get("kago") or {}
    if record.get("status") == CREATING:
        alive = st.alive(kago.get("creator"), kago.get("creator_start"))
        return CREATING if alive else STOPPED
    if not st.alive(record.get("pid"), kago.get("pid_start")):
        return STOPPED
    return None


def _frozen(mgr):
    """Whether the container's cgroup is frozen; False once the cgroup is gone (ENOENT, or
    ENODEV from a cgroup removed while its file was read): a container that ended meanwhile
    is not paused."""
    try:
        return mgr.can_freeze() and mgr.frozen()
    except CgroupError as e:
        if e.errno in (errno.ENOENT, errno.ENODEV):
            return False
        raise


def cgroup_of(record):
    rec = (record.get("kago") or {}).get("cgroup")
    if not rec:
        return None
    from kago.linux.cgroups import Manager
    return Manager.from_record(rec)


def oom_killed(record):
    """True if the OOM killer killed any of the container's processes (cgroup still there)."""
    mgr = cgroup_of(record)
    if mgr is None or not mgr.exists():
        return False
    try:
        return mgr.oom_count() > 0
    except KagoError:
        return False


def oci_state(record, status_now, pid=None):
    state = {"ociVersion": record["ociVersion"], "id": record["id"],
             "pid": record["pid"] if pid is None else pid, "status": status_now,
             "bundle": record["bundle"], "rootfs": record["rootfs"],
             "created": record["created"], "owner": record.get("owner", "")}
    if status_now == STOPPED:
        state["pid"] = 0
    if record.get("annotations"):
        state["annotations"] = record["annotations"]
    return state


def state(store, container_id):
    record = store.load(container_id)
    now = status(store, record)
    doc = oci_state(record, now)
    if now == STOPPED:
        if oom_killed(record):
            doc["oomKilled"] = True  # an extra field, like runc's "rootfs" and "owner"
    return doc


# --- start ----------------------------------------------------------------------------------

def start(store, container_id, notify_socket=None):
    """Start a created container; with ``notify_socket`` (the host's NOTIFY_SOCKET), relay
    its READY= there and return only then (runtime.notify)."""
    with store.lock(container_id):
        record = store.load(container_id)
        now = status(store, record)
        if now != CREATED:
            raise IncorrectStatus(_cannot_start(now))
        # still kago's init: the create's command line (read only for poststart hooks)
        before = _identity(record["pid"]) if _poststart_hooks(record) else None
        # bound before the init is released, so that an early READY is not lost
        sock = _notify_start(store.dir(container_id)) if notify_socket else None
        try:
            _release_init(store, record)
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        record["status"] = RUNNING
        store.save(container_id, record)
    _poststart(record, before)
    if sock is not None:
        _relay_ready(sock, notify_socket, record, record["pid"])


def _notify_start(state_dir):
    """``start``'s notify socket, for a container created with NOTIFY_SOCKET (else None)."""
    from kago.runtime import notify
    return notify.bind(state_dir) if notify.created_with_notify(state_dir) else None


def _relay_ready(sock, host, record, main_pid):
    from kago.runtime import notify
    with log.phase("notify"):
        notify.relay(sock, host, main_pid,
                     lambda: st.alive(record["pid"], record["kago"]["pid_start"]))


def _cannot_start(now):
    return {RUNNING: "cannot start an already running container",
            STOPPED: "cannot start a container that has stopped",
            PAUSED: "cannot start a paused container"}.get(now, f"cannot start a {now} container")


def _release_init(store, record):
    """Read the exec fifo: the init's blocked open(O_WRONLY) completes and it writes one byte."""
    fifo = os.path.join(store.dir(record["id"]), st.FIFO)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.read(fd, 1):
                    break
            except BlockingIOError:
                pass
            if not st.alive(record["pid"], record["kago"]["pid_start"]):
                raise KagoError("container init exited before start")
            if time.monotonic() > deadline:
                raise KagoError("timed out waiting for the container init to take the start")
            time.sleep(0.0005)
    finally:
        os.close(fd)
        os.unlink(fifo)


def _poststart_hooks(record):
    return bool(((record.get("kago") or {}).get("hooks") or {}).get("poststart"))


def _poststart(record, before):
    """poststart hooks run after the program was executed (runtime-spec), so wait for the
    init's execve: the init runs startContainer hooks after ``start`` released it.
    ``before``: the init's ``_identity`` before that (read only when there are hooks)."""
    if not _poststart_hooks(record):
        return
    pid, started = record["pid"], record["kago"]["pid_start"]
    deadline = time.monotonic() + 10
    while (st.alive(pid, started) and _identity(pid) == before
           and time.monotonic() < deadline):
        time.sleep(0.0005)
    _post_hooks("poststart", record, RUNNING)


def _identity(pid):
    """What execve changes: the executable's inode and the command line."""
    try:
        exe = os.stat(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return exe.st_dev, exe.st_ino, f.read()
    except OSError:
        return None


def _post_hooks(kind, record, status_now):
    hooks_section = (record.get("kago") or {}).get("hooks") or {}
    if not hooks_section.get(kind):
        return
    from kago.plan.build import hooks as build_hooks
    from kago.process.hooks import run_hooks
    run_hooks(kind, build_hooks(hooks_section).get(kind), jsonio.dumps(
        oci_state(record, status_now)))


# --- run ------------------------------------------------------------------------------------

def run(store, container_id, bundle, opts):
    """create + start; in the foreground, wait and delete; return the exit status.

    In the foreground the signals a shell sends us go to the container's init from the moment
    it exists, before it is let go (as runc's handler is set before it starts the container):
    set only at the wait, a SIGTERM in between would end us and leave it running."""
    on_pid = None
    if not opts.detach:
        from kago.process import parent
        on_pid = parent.forward_signals_to
    record = create(store, container_id, bundle, opts, mode="run", on_pid=on_pid)
    if _poststart_hooks(record):
        _poststart(record, _identity(os.getpid()))  # the init is our fork until it execs
    sock = record["kago"].pop("notify_socket", None)
    if opts.detach:
        if sock is not None:
            _relay_ready(sock, opts.notify_socket, record, record["pid"])
        return 0
    if sock is not None:
        # as runc: in the foreground the runtime stays the main process systemd watches (the
        # signals it sends us go to the container: on_pid above)
        _relay_ready(sock, opts.notify_socket, record, os.getpid())
    peer = record["kago"].pop("console_peer", None)
    if peer is not None:
        _proxy_terminal(peer, record)
    if "KAGO_FAULT_STEP" in os.environ:  # tests: a slow step here (kago.faults, not loaded else)
        from kago.faults import fault
        fault("run.waiting")
    with log.phase("wait"):
        code = parent.wait(record["pid"])
    try:
        with log.phase("delete"):
            delete(store, container_id, force=True)
    except ContainerNotFound:
        pass
    return code


def _proxy_terminal(peer, record):
    from kago.process import tty
    master = tty.recv_master(peer)
    peer.close()
    try:
        tty.proxy(master, lambda: st.alive(record["pid"], record["kago"]["pid_start"]))
    finally:
        os.close(master)


# --- kill / delete --------------------------------------------------------------------------

def kill(store, container_id, sig, all_processes=False):
    """Signal the init (every process with ``all_processes``) of a created, running or paused
    container. Only "is it alive" decides, not the full status(): a paused container is
    signalled too (it gets the signal on resume, as with runc), so the cgroup is not read,
    nor its modules loaded, unless ``--all`` needs it."""
    record = store.load(container_id)
    if _ended_or_creating(record):
        raise IncorrectStatus("container not running")
    mgr = cgroup_of(record) if all_processes else None
    if mgr is not None:
        mgr.kill_all(sig)
        return
    try:
        os.kill(record["pid"], sig)
    except ProcessLookupError:
        raise IncorrectStatus("container not running") from None


def delete(store, container_id, force=False):
    """Delete a stopped container (any container with ``force``).

    As runc: a directory left without a record by an aborted create is removed, and with
    ``force`` a container that does not exist is not an error (containerd deletes after a
    failed create).
    """
    try:
        _delete(store, container_id, force)
    except ContainerNotFound:
        if not os.path.exists(os.path.join(store.dir(container_id), st.STATE)):
            store.remove(container_id)
        if not force:
            raise


def _delete(store, container_id, force):
    with store.lock(container_id):
        record = store.load(container_id)
        now = status(store, record)
        if now in (RUNNING, PAUSED) and not force:
            raise IncorrectStatus(f"cannot delete container {container_id} that is not "
                                  f"stopped: {now}")
        if now == CREATING and not force:
            raise IncorrectStatus(f"cannot delete container {container_id} that is being "
                                  f"created")
        mgr = cgroup_of(record)
        if now != STOPPED:
            _kill_and_wait(record, mgr)
        elif mgr is not None and mgr.exists() and mgr.pids():
            mgr.kill_all(9)  # the init is gone but, without a pid namespace, others remain
        _unmount_host_mounts(record)  # no mount namespace: the container's, in the host's
        if mgr is not None:
            mgr.destroy()
        _post_hooks("poststop", record, STOPPED)
        store.remove(container_id)


def _kill_and_wait(record, mgr, timeout=5.0):
    if mgr is not None:
        mgr.kill_all(9)
    pid, started = record.get("pid"), record["kago"].get("pid_start")
    if pid and st.alive(pid, started):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pid and st.alive(pid, started):
        _reap_if_ours(pid)
        if time.monotonic() > deadline:
            raise KagoError(f"container init {pid} did not die after SIGKILL")
        time.sleep(0.002)


def _reap_if_ours(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --- ps / list ------------------------------------------------------------------------------

def pids(store, container_id):
    record = store.load(container_id)
    if status(store, record) in (STOPPED, CREATING):
        raise IncorrectStatus("container not running")
    mgr = cgroup_of(record)
    if mgr is not None:
        return mgr.pids()
    return [record["pid"]]


def list_states(store):
    out = []
    for container_id in store.ids():
        try:
            out.append(state(store, container_id))
        except (ContainerNotFound, SpecError):
            continue  # removed or half-written between listdir and load
    return out



# --- pause / resume -------------------------------------------------------------------------

def pause(store, container_id):
    with store.lock(container_id):
        record = store.load(container_id)
        now = status(store, record)
        if now != RUNNING and now != CREATED:
            raise IncorrectStatus(f"container not running or created: {now}")
        _freezer(record).freeze()


def resume(store, container_id):
    with store.lock(container_id):
        record = store.load(container_id)
        if status(store, record) != PAUSED:
            raise IncorrectStatus("container not paused")
        _freezer(record).thaw()


def _freezer(record):
    mgr = cgroup_of(record)
    if mgr is None:
        raise KagoError(f"cannot pause: {NO_CGROUP}")
    if not mgr.can_freeze():
        raise KagoError("this host has no cgroup freezer: cannot pause")
    return mgr


# why a container has no cgroup record: the two ways it happens, each with its fix
NO_CGROUP = ("the container has no cgroup (none was mounted, or kago-oci ran rootless "
             "where the user may not create one: delegate a cgroup v2 subtree to the user)")
