"""CRIU's command line for ``kago-oci checkpoint`` and ``restore``: pure functions, as data.

runc drives CRIU through its RPC (``criu swrk`` over a socketpair, protobuf messages); kago-oci
runs the ``criu`` command line with the equivalent options instead (``criu dump`` /
``criu restore``), so it needs no protobuf. What runc puts in its RPC request, kago-oci puts in
argv:

    runc RPC field               criu option
    ImagesDirFd / WorkDirFd      -D IMAGES / -W WORK
    LogFile, LogLevel 4          -o dump.log|restore.log -v4
    Root                         --root (dump: the rootfs; restore: the rootfs bound on a dir)
    ManageCgroups(+Mode)         --manage-cgroups[=soft|full|strict|ignore]
    FreezeCgroup                 --freeze-cgroup (the freezer cgroup of the container)
    CgRoot                       --cgroup-root /the/container's/cgroup (restore)
    ExtMnt                       --external mnt[KEY]:VALUE
    External (net/pid ns path)   --external net[INODE]:extRootNetNS (dump),
                                 --inherit-fd fd[N]:extRootNetNS (restore)
    InheritFd (stdio pipes)      --inherit-fd fd[N]:pipe:[INODE]
    RstSibling                   --restore-sibling -d
    ShellJob, TcpEstablished, ExtUnixSk, FileLocks, EmptyNs, AutoDedup, LeaveRunning
                                 --shell-job, --tcp-established, --ext-unix-sk, --file-locks,
                                 --empty-ns net, --auto-dedup, --leave-running
"""

import os
import shutil

from kago.errors import UsageError

DESCRIPTORS = "descriptors.json"  # runc's name: the init's fds 0-2 at dump time
DUMP_LOG = "dump.log"
RESTORE_LOG = "restore.log"
MANAGE_CGROUPS_MODES = ("soft", "full", "strict", "ignore")
# runc's --empty-ns names -> CRIU's
EMPTY_NS = {"network": "net"}
# namespaces a container may join by path that CRIU must be told are external (runc: the same
# two, keyed as CRIU's RPC expects them)
EXTERNAL_NS = {"network": ("net", "extRootNetNS"), "pid": ("pid", "extRootPidNS")}


class CriuOptions:
    """The flags ``checkpoint`` and ``restore`` share (runc's names, parsed)."""

    __slots__ = ("image_path", "work_path", "leave_running", "tcp_established", "ext_unix_sk",
                 "shell_job", "file_locks", "manage_cgroups_mode", "empty_ns", "auto_dedup",
                 "skip_in_flight")

    def __init__(self, image_path, work_path=None, leave_running=False, tcp_established=False,
                 ext_unix_sk=False, shell_job=False, file_locks=False,
                 manage_cgroups_mode=None, empty_ns=(), auto_dedup=False,
                 skip_in_flight=False):
        self.image_path = os.path.abspath(image_path)
        self.work_path = os.path.abspath(work_path) if work_path else None
        self.leave_running = leave_running
        self.tcp_established = tcp_established
        self.ext_unix_sk = ext_unix_sk
        self.shell_job = shell_job
        self.file_locks = file_locks
        if manage_cgroups_mode and manage_cgroups_mode not in MANAGE_CGROUPS_MODES:
            raise UsageError(f"invalid --manage-cgroups-mode {manage_cgroups_mode!r}: use "
                             + ", ".join(MANAGE_CGROUPS_MODES))
        self.manage_cgroups_mode = manage_cgroups_mode
        for ns in empty_ns:
            if ns not in EMPTY_NS:
                raise UsageError(f'namespace "{ns}" is not supported by --empty-ns '
                                 "(only network)")
        self.empty_ns = tuple(empty_ns)
        self.auto_dedup = auto_dedup
        # not runc's: the manager's warm checkpoints drop connections not yet accepted (a
        # readiness probe's) instead of failing on them
        self.skip_in_flight = skip_in_flight

    def log_dir(self):
        """Where CRIU writes its log: the work path, else the image path (as CRIU does)."""
        return self.work_path or self.image_path


def _common(opts, log_name):
    argv = ["-D", opts.image_path]
    if opts.work_path:
        argv += ["-W", opts.work_path]
    argv += ["-o", log_name, "-v4"]
    mode = opts.manage_cgroups_mode
    argv.append(f"--manage-cgroups={mode}" if mode else "--manage-cgroups")
    for flag, on in (("--tcp-established", opts.tcp_established),
                     ("--ext-unix-sk", opts.ext_unix_sk), ("--shell-job", opts.shell_job),
                     ("--file-locks", opts.file_locks), ("--auto-dedup", opts.auto_dedup)):
        if on:
            argv.append(flag)
    for ns in opts.empty_ns:
        argv += ["--empty-ns", EMPTY_NS[ns]]
    return argv


def dump_argv(criu, pid, opts, rootfs, freezer=None, mounts=(), namespaces=(), pre_dump=False,
              files=()):
    """``criu dump`` (or ``pre-dump``) of the tree at ``pid``.

    ``mounts``: the container's external mounts' destinations (external_mounts()); on dump
    runc names each by its own destination. ``namespaces``: (kind, inode) of namespaces the
    container joined by path (external_namespaces()). ``files``: CRIU's ``file[MNT:INO]`` keys
    of open files to dump as external (fifo_key())."""
    argv = [criu, "pre-dump" if pre_dump else "dump", "-t", str(pid)] + _common(opts, DUMP_LOG)
    if opts.skip_in_flight:
        argv.append("--skip-in-flight")
    argv += ["--root", rootfs]
    if freezer:
        argv += ["--freeze-cgroup", freezer]
    if opts.leave_running or pre_dump:
        argv.append("--leave-running")
    for dest, _source in mounts:
        argv += ["--external", f"mnt[{dest}]:{dest}"]
    for kind, inode in namespaces:
        criu_kind, key = EXTERNAL_NS[kind]
        argv += ["--external", f"{criu_kind}[{inode}]:{key}"]
    for key in files:
        argv += ["--external", key]
    return argv


def restore_argv(criu, opts, root, pid_file, cgroup_root=None, mounts=(), inherit=()):
    """``criu restore``, detached, its root task a sibling of criu (so a child of kago-oci).

    ``root``: a mount point holding the rootfs (CRIU needs one whose parent is not
    overmounted); ``mounts``: (destination, host source) of the external mounts, each
    source mounted at its destination; ``inherit``: (fd, key) pairs, kago-oci's fd given to
    the restored tree for what was ``key`` at dump time (a stdio pipe, extRootNetNS)."""
    argv = [criu, "restore"] + _common(opts, RESTORE_LOG)
    argv += ["--root", root, "--restore-detached", "--restore-sibling", "--pidfile", pid_file]
    if cgroup_root:
        argv += ["--cgroup-root", cgroup_root]
    for dest, source in mounts:
        argv += ["--external", f"mnt[{dest}]:{source}"]
    for fd, key in inherit:
        argv += ["--inherit-fd", f"fd[{fd}]:{key}"]
    return argv


def external_mounts(ops, devices=()):
    """(destination, source) of every mount CRIU must treat as external: what comes from
    outside the container's mount namespace. As runc: each bind mount (the bundle's binds and
    the cgroup hierarchies kago binds under /sys/fs/cgroup), and each device bound from the
    host (``devices``: (path, is_bound) — a user namespace cannot mknod, so kago binds them).
    Masked files are bound from the container's own /dev/null, a mount CRIU sees whole: they
    are not external. Later mounts over the same destination replace earlier ones."""
    found = {}
    for op in ops:
        if op.is_bind and op.source:
            found[op.destination.rstrip("/") or "/"] = op.source
    for path, bound in devices:
        if bound:
            found[path] = path
    return sorted(found.items())


def plan_externals(plan, cgroup_paths):
    """external_mounts() of a container's plan, its ``cgroup`` mount expanded into the binds
    of its cgroup directories (``cgroup_paths``: hierarchy name -> directory), as created."""
    return external_mounts(expanded_mounts(plan, cgroup_paths),
                           [(d.path, plan.userns) for d in plan.devices])


def restore_externals(plan, cgroup_paths):
    """plan_externals() for ``criu restore``, plus what runc's images name: runc dumps each
    masked file as the external mount "/dev/null" (kago's are internal binds), so with masked
    paths the key maps to the host's /dev/null, as runc's restore passes it."""
    found = plan_externals(plan, cgroup_paths)
    if plan.masked_paths and "/dev/null" not in dict(found):
        found = sorted(found + [("/dev/null", "/dev/null")])
    return found


def expanded_mounts(plan, cgroup_paths):
    """The plan's mounts in order, its ``cgroup`` mount expanded into the binds of the
    container's cgroup directories (``cgroup_paths``: hierarchy name -> directory)."""
    from kago.plan.build import expand_cgroup_mount
    ops = []
    for op in plan.mounts:
        ops.extend(expand_cgroup_mount(op, cgroup_paths) if op.fstype == "cgroup" else [op])
    return ops


def mountpoints(ops, source_is_dir=os.path.isdir):
    """(destination, is_dir) of each mount point a restore must find in the rootfs (runc's
    prepareCriuRestoreMounts): a fresh rootfs (podman's ``restore --import``) lacks those the
    runtime made at create. Those under a tmpfs are not needed: CRIU restores a tmpfs whole,
    its mount points in it. A bind of a file needs a file, everything else a directory."""
    tmpfs = [op.destination.rstrip("/") for op in ops if op.fstype == "tmpfs"]
    out = []
    for op in ops:
        dest = op.destination.rstrip("/") or "/"
        if dest == "/" or any(dest.startswith(t + "/") for t in tmpfs):
            continue
        is_dir = not op.is_bind or source_is_dir(op.source)
        if (dest, is_dir) not in out:
            out.append((dest, is_dir))
    return out


def stdio_inherit(descriptors):
    """(fd, key) for each of the init's stdio that was a pipe at dump time (runc's rule):
    the restored tree gets kago-oci's own fd N in its place."""
    return [(i, s) for i, s in enumerate(descriptors[:3]) if s.startswith("pipe:")]


def fifo_key(mnt_id, inode):
    """CRIU's key of an external file (``--external file[MNT:INO]``, both in hex): how it
    names an open file it must not look up in the container's mounts, and the key of the fd
    handed back for it on restore (``--inherit-fd fd[N]:file[MNT:INO]``)."""
    return f"file[{mnt_id:x}:{inode:x}]"


def fifo_inherit(fifos):
    """(fd, key) for each of the init's stdio that was a named pipe (FIFO) outside the
    container at dump time (``fifos``: [[N, key]]): as for a pipe, the restored tree gets
    kago-oci's own fd N in its place."""
    return [(int(i), key) for i, key in fifos if 0 <= int(i) <= 2]


def find(given=None, path=None):
    """The criu binary: ``--criu PATH`` when given (as runc), else ``criu`` on PATH."""
    if given:
        if os.path.isfile(given) and os.access(given, os.X_OK):
            return given
        found = shutil.which(given, path=path) if os.sep not in given else None
        if found:
            return found
        raise UsageError(f"criu not found: {given} is not an executable (--criu PATH)")
    found = shutil.which("criu", path=path)
    if not found:
        raise UsageError("criu not found on PATH: install CRIU >= 3.17 (./dev setup builds "
                         "4.2 into .build/criu) or pass --criu PATH")
    return found


# not why CRIU failed: its harmless complaint about raising its fd limit, and its cgroup
# helper's when CRIU stops it after a failure
_NOISE = ("RLIMIT_NOFILE", "cgroupd: recv req error")
# CRIU's closing lines that only say that something above failed
_SUMMARIES = ("Dumping FAILED", "Restoring FAILED", "Pre-dumping FAILED", "failed with -1",
              "Unable to restore", "Restoring mntns failed")


def last_error(log_path):
    """The last ``Error`` line of a CRIU log that says what went wrong (its message part; the
    closing "Dumping FAILED." lines come after it), or None."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    errors = [ln for ln in lines if "Error (" in ln and not any(n in ln for n in _NOISE)]
    if not errors:
        return None
    # what failed first: the errors before CRIU's closing "... FAILED." (after it come
    # those of its helpers being stopped, cgroupd's "recv req error")
    closing = next((i for i, ln in enumerate(errors) if "FAILED" in ln), len(errors))
    telling = [ln for ln in errors[:closing] if not any(word in ln for word in _SUMMARIES)]
    line = (telling or errors)[-1]
    return line.split("): ", 1)[1].strip() if "): " in line else line.strip()


def failure(verb, log_path, stderr=""):
    """One line: CRIU's verb failed, its log's last error, the log's path."""
    why = last_error(log_path)
    if why is None:
        tail = [ln for ln in (stderr or "").splitlines() if ln.strip()]
        why = tail[-1].strip() if tail else "no error in its log"
    return f"criu {verb} failed: {why} (log: {log_path})"
