"""``checkpoint`` and ``restore``: a running container to CRIU images and back (runc's verbs).

    checkpoint  running -> criu dump of the init's tree -> stopped (its record stays, as a
                stopped container; ``--leave-running`` keeps it running). A failed dump
                leaves the container running and untouched (CRIU thaws it).
    restore     the bundle's config -> a new record, cgroup and limits (as ``create``) ->
                criu restore into them -> running, with the restored init's new pid.
                A stopped container of the same ID (the one checkpointed) is deleted first.

CRIU is run as a command (kago.runtime.criu says which options stand for runc's RPC fields).
"""

import errno
import os
import subprocess
import time

from kago import jsonio, log
from kago.errors import (CgroupError, ContainerExists, CreateError, IncorrectStatus, KagoError,
                         UsageError)
from kago.runtime import Undo
from kago.runtime import container as ct
from kago.runtime import criu
from kago.runtime import store as st

CRIU_ROOT = "criu-root"   # in the state dir: the rootfs bound on a mount point for --root
CRIU_PID = "criu.pid"
STDIO_FIFOS = "stdio-fifos.json"  # in the image path: [[N, key]] of the init's FIFO stdio


def _run(argv, what):
    with log.phase(what):
        try:
            return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, close_fds=False)
        except OSError as e:
            raise KagoError(f"run {argv[0]}: {os.strerror(e.errno).lower()}") from None


def _mkdir(path, what, mode=0o700):
    try:
        os.makedirs(path, mode, exist_ok=True)
    except OSError as e:
        raise KagoError(f"{what} {path}: {os.strerror(e.errno).lower()}") from None


def _plan_of(record):
    """The container's plan, from its bundle as it is now (runc keeps its config in the state;
    kago-oci reads the bundle's config.json again)."""
    bundle = record["bundle"]
    cfg = ct.load_config(bundle)
    from kago.runtime.options import Options
    return ct.make_plan(cfg, bundle, record["id"], Options(listen_fds=0))


def _freezer(mgr):
    """The container's freezer cgroup for CRIU (runc's FreezeCgroup): v1's, else cgroup2's."""
    if mgr is None:
        return None
    for name in ("freezer", "unified"):
        try:
            d = mgr.path_in(name)
        except CgroupError:
            continue
        if os.path.isdir(d):
            return d
    return None


def check_pre_dump(criu_bin):
    """Pre-dump needs soft-dirty page tracking; refuse in one line where the kernel lacks it."""
    done = _run([criu_bin, "check", "--feature", "mem_dirty_track"], "criu check")
    if done.returncode != 0:
        raise UsageError("--pre-dump needs the kernel's soft-dirty page tracking "
                         "(CONFIG_MEM_SOFT_DIRTY), which this kernel lacks "
                         "(criu check --feature mem_dirty_track failed)")


def checkpoint(store, container_id, opts, criu_bin, pre_dump=False):
    """Dump the container's process tree to ``opts.image_path``."""
    with store.lock(container_id):
        record = store.load(container_id)
        now = ct.status(store, record)
        if now not in (ct.RUNNING, ct.PAUSED):
            raise IncorrectStatus(f"container cannot be checkpointed in {now} state")
        proc = (record.get("kago") or {}).get("process") or {}
        if proc.get("terminal") and not opts.shell_job:
            raise UsageError("the container has a terminal (process.terminal): CRIU can only "
                             "dump it as a shell job, pass --shell-job")
        plan = _plan_of(record)
        if plan.userns and plan.has_ns("mount") and not plan.new_ns("network"):
            raise UsageError("kago-oci cannot checkpoint a container with a user namespace and "
                             "no network namespace of its own: its /sys is a recursive bind "
                             "of the host's, which CRIU cannot restore there")
        mgr = ct.cgroup_of(record)
        paths = mgr.paths() if mgr is not None else {}
        pid = record["pid"]
        # a restore into a user namespace reads the images as the container's root, a host
        # user: the directory must let it in (not list it)
        _mkdir(opts.image_path, "create image path", 0o711 if plan.userns else 0o700)
        if opts.work_path:
            _mkdir(opts.work_path, "create work path")
        _write_descriptors(opts.image_path, pid)
        fifos = _stdio_fifos(pid, record["rootfs"])
        _write_json(os.path.join(opts.image_path, STDIO_FIFOS), fifos)
        # in the host's pid namespace CRIU restores the very same PIDs: note them
        same_pids = [] if plan.new_ns("pid") else (mgr.pids() if mgr is not None else [pid])
        argv = criu.dump_argv(criu_bin, pid, opts, record["rootfs"], freezer=_freezer(mgr),
                              mounts=criu.plan_externals(plan, paths),
                              namespaces=_joined_namespaces(plan), pre_dump=pre_dump,
                              files=sorted({key for _i, key in fifos}))
        log.debug("criu: " + " ".join(argv))
        done = _run(argv, "criu dump")
        if done.returncode != 0:
            raise KagoError(criu.failure("pre-dump" if pre_dump else "dump",
                                         os.path.join(opts.log_dir(), criu.DUMP_LOG),
                                         done.stderr))
        if not (opts.leave_running or pre_dump):
            record["status"] = ct.STOPPED
            record["kago"]["checkpoint"] = opts.image_path
            store.save(container_id, record)
            _wait_reaped(same_pids)


def _wait_reaped(pids, timeout=5.0):
    """Wait (bounded) until the dumped processes are gone, zombies included: a restore of a
    container in the host's pid namespace needs their PIDs free ("Can't fork for PID: File
    exists" otherwise), and their parent (the caller's subreaper, else PID 1) reaps them in
    its own time. Past the bound the checkpoint still succeeded: a warning says so."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if os.path.exists(f"/proc/{p}")]
        if left:
            time.sleep(0.01)
    if left:
        log.warning(f"the dumped processes {left} are not reaped yet: a restore needs their "
                    "PIDs free (the container shares the host's pid namespace)")


def _write_descriptors(image_path, pid):
    """runc's descriptors.json: where the init's fds 0-2 pointed (``pipe:[N]``, a path)."""
    fds = []
    for i in range(3):
        try:
            fds.append(os.readlink(f"/proc/{pid}/fd/{i}"))
        except OSError:
            fds.append("/dev/null")
    _write_json(os.path.join(image_path, criu.DESCRIPTORS), fds)


def _write_json(path, doc):
    with open(path, "w") as f:
        f.write(jsonio.dumps(doc))


def _stdio_fifos(pid, rootfs):
    """[[N, key]] for each of the init's fds 0-2 that is a named pipe outside its root (a
    manager's log FIFO): CRIU dumps it as an external file, and restore hands the restorer's
    own fd N back in its place, as runc does for an anonymous pipe."""
    import stat
    root = os.path.realpath(rootfs) + os.sep
    out = []
    for i in range(3):
        try:
            st_ = os.stat(f"/proc/{pid}/fd/{i}")
            target = os.readlink(f"/proc/{pid}/fd/{i}")
            with open(f"/proc/{pid}/fdinfo/{i}") as f:
                mnt = next(int(line.split()[1]) for line in f if line.startswith("mnt_id:"))
        except (OSError, StopIteration):
            continue
        if stat.S_ISFIFO(st_.st_mode) and target.startswith("/") \
                and not target.startswith(root):
            out.append([i, criu.fifo_key(mnt, st_.st_ino)])
    return out


def _joined_namespaces(plan):
    """(kind, inode) of the network and pid namespaces the container joined by path."""
    out = []
    for kind in criu.EXTERNAL_NS:
        path = plan.ns_path(kind)
        if path:
            try:
                out.append((kind, os.stat(path).st_ino))
            except OSError as e:
                raise KagoError(f"{kind} namespace {path}: "
                                f"{os.strerror(e.errno).lower()}") from None
    return out


# --- restore --------------------------------------------------------------------------------

def restore(store, container_id, bundle, opts, criu_bin, run_opts, console_socket=None):
    """Restore the container from ``opts.image_path``; returns its record (running)."""
    bundle = os.path.abspath(bundle)
    st.validate_id(container_id)
    if console_socket:
        raise UsageError("--console-socket: kago-oci cannot restore a container's terminal "
                         "(CRIU hands back its pty master only through its RPC mode)")
    if not os.path.isfile(os.path.join(opts.image_path, "inventory.img")):
        raise UsageError(f"image path {opts.image_path}: no checkpoint there "
                         "(no inventory.img)")
    descriptors = _read_descriptors(opts.image_path)
    fifos = _read_fifos(opts.image_path)
    cfg = ct.load_config(bundle)
    plan = ct.make_plan(cfg, bundle, container_id, run_opts)
    if plan.process.terminal:
        raise UsageError("kago-oci cannot restore a container with a terminal "
                         "(process.terminal): CRIU hands back its pty only through its RPC "
                         "(orphan-pts-master), which kago-oci does not drive")
    if plan.userns:
        _check_searchable(opts.image_path)
    if opts.work_path:
        _mkdir(opts.work_path, "create work path")
    _drop_checkpointed(store, container_id)  # only once the restore is not refused
    undo = Undo()
    try:
        return _restore(store, container_id, bundle, cfg, plan, opts, criu_bin, run_opts,
                        descriptors, fifos, undo)
    except BaseException as e:
        cleanup_errors = undo.run()
        if cleanup_errors or not isinstance(e, KagoError):
            raise CreateError(e, cleanup_errors) from e
        raise


def _check_searchable(image_path):
    """CRIU reads the images as the restored root task, inside its user namespace: a host ID
    that is not root, so the directory needs the others' search bit."""
    mode = os.stat(image_path).st_mode
    if not mode & 0o001:
        raise UsageError(f"image path {image_path} (mode {mode & 0o777:04o}) cannot be read "
                         "from the container's user namespace: chmod o+x it")


def _read_descriptors(image_path):
    path = os.path.join(image_path, criu.DESCRIPTORS)
    try:
        with open(path, "rb") as f:
            fds = jsonio.loads(f.read(), what=path)
    except FileNotFoundError:
        return []  # a dump not made by a runtime: no stdio to hand over
    if not isinstance(fds, list) or not all(isinstance(s, str) for s in fds):
        raise KagoError(f"{path}: not a list of descriptor names")
    return fds


def _read_fifos(image_path):
    path = os.path.join(image_path, STDIO_FIFOS)
    try:
        with open(path, "rb") as f:
            doc = jsonio.loads(f.read(), what=path)
    except FileNotFoundError:
        return []  # runc's images, or kago-oci's of a container without FIFO stdio
    if not isinstance(doc, list) or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], int)
            and isinstance(e[1], str) for e in doc):
        raise KagoError(f"{path}: not a list of [fd, key] pairs")
    return doc


def _drop_checkpointed(store, container_id):
    """A stopped container of this ID (what checkpoint left) gives its ID to the restore."""
    try:
        record = store.load(container_id)
    except KagoError:
        return
    if ct.status(store, record) != ct.STOPPED:
        raise ContainerExists(container_id)
    ct.delete(store, container_id)


def _restore(store, container_id, bundle, cfg, plan, opts, criu_bin, run_opts, descriptors,
             fifos, undo):
    state_dir = store.reserve(container_id)
    undo.push(store.remove, container_id)
    record = ct.new_record(container_id, bundle, plan, cfg)
    store.save(container_id, record)
    cgroup = ct._plan_cgroup(plan, undo, run_opts.rootless)
    apply_limits = ct._limits(cgroup, plan.resources, run_opts.rootless)
    if apply_limits is not None:
        apply_limits()
    paths = cgroup.paths() if cgroup is not None else {}
    if cgroup is not None:  # before CRIU runs: a restore killed midway can still be deleted
        record["kago"]["cgroup"] = cgroup.to_record()
        store.save(container_id, record)
    _make_mountpoints(plan.rootfs, criu.mountpoints(criu.expanded_mounts(plan, paths)))
    root = _bind_root(plan.rootfs, os.path.join(state_dir, CRIU_ROOT), undo)
    keep = []
    try:
        inherit = []
        for i, key in criu.stdio_inherit(descriptors) + criu.fifo_inherit(fifos):
            fd = _inheritable(os.dup(i))  # kago-oci's own stdio: criu's 0-2 are its pipes
            keep.append(fd)
            inherit.append((fd, key))
        for kind, (_criu_kind, key) in criu.EXTERNAL_NS.items():
            path = plan.ns_path(kind)
            if path:
                fd = _open_inheritable(path, kind)
                keep.append(fd)
                inherit.append((fd, key))
        pid_file = os.path.join(state_dir, CRIU_PID)
        argv = criu.restore_argv(criu_bin, opts, root, pid_file,
                                 cgroup_root=cgroup.path if cgroup is not None else None,
                                 mounts=criu.restore_externals(plan, paths), inherit=inherit)
        log.debug("criu: " + " ".join(argv))
        done = _run(argv, "criu restore")
    finally:
        for fd in keep:
            os.close(fd)
    if done.returncode != 0:
        raise KagoError(criu.failure("restore", os.path.join(opts.log_dir(), criu.RESTORE_LOG),
                                     done.stderr))
    pid = _restored_pid(pid_file)
    undo.push(_kill, pid)
    record["pid"] = pid
    record["kago"]["pid_start"] = st.start_time(pid)
    record["kago"]["restored_from"] = opts.image_path
    record["status"] = ct.RUNNING
    store.save(container_id, record)
    if run_opts.pid_file:
        ct.write_pid_file(run_opts.pid_file, pid)
    _unbind_root(root)
    return record


def _make_mountpoints(rootfs, points):
    """Create each missing mount point in the rootfs, resolved inside it (never through a
    symlink out of it)."""
    from kago.kernel.rooted import create_file_in_root, mkdirs_in_root
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for dest, is_dir in points:
            fd = (mkdirs_in_root if is_dir else create_file_in_root)(rootfd, dest)
            os.close(fd)
    finally:
        os.close(rootfd)


def _bind_root(rootfs, where, undo):
    """CRIU's --root on restore must be a mount point whose parent is not overmounted: the
    rootfs, bound on a directory in the state dir (runc does the same)."""
    from kago.kernel import consts as C
    from kago.kernel import libc
    os.mkdir(where, 0o700)
    undo.push(_rmdir, where)
    libc.mount(rootfs, where, None, C.MS_BIND | C.MS_REC)
    undo.push(_unbind_root, where)
    return where


def _unbind_root(where):
    from kago.kernel import consts as C
    from kago.kernel import libc
    from kago.errors import KernelError
    try:
        libc.umount2(where, C.MNT_DETACH)
    except KernelError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):  # not (or no longer) mounted
            raise
    _rmdir(where)


def _rmdir(path):
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def _open_inheritable(path, kind):
    try:
        return _inheritable(os.open(path, os.O_RDONLY))
    except OSError as e:
        raise KagoError(f"{kind} namespace {path}: {os.strerror(e.errno).lower()}") from None


def _inheritable(fd):
    os.set_inheritable(fd, True)  # criu inherits it (subprocess with close_fds=False)
    return fd


def _restored_pid(pid_file):
    try:
        with open(pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError) as e:
        raise KagoError(f"criu restore left no pid in {pid_file}: {e}") from None


def _kill(pid):
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def wait_and_delete(store, container_id, pid):
    """restore without --detach: as ``run``, wait for the restored init, then delete."""
    from kago.process import parent
    code = parent.wait(pid)
    try:
        ct.delete(store, container_id, force=True)
    except KagoError:
        pass
    return code
