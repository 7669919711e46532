"""The container init sequence, as small named steps run in order by ``child.run_steps``.

Why this order (runc's standard_init_linux.go and prepareRootfs, crun's container_init_setup):
- oom_score_adj first, while the host's /proc is still ours;
- the rootfs is prepared (propagation, mounts, devices) before hooks, so createContainer hooks
  see it, and before pivot_root, so mount sources still resolve on the host;
- the cgroup limits are awaited (the runtime's "go") after the mounts, before the devices are
  made and before the first hook or anything of the container runs: the runtime writes them
  while we mount instead of us waiting, and a v1 device list is rewritten from deny-all, so
  a mknod during that write could be refused;
- sysctls, then read-only and masked paths, before the root switch: the writes go through the
  container's /proc, which is about to be made read-only; a masked file gets the container's
  own /dev/null (made above), resolved in the rootfs, which is what runc binds after its
  pivot_root: the mounts then name the container's /dev, never the host's devtmpfs;
- the terminal is made after the switch, from the container's own devpts; stdio that is the
  host's /dev/null becomes the container's own /dev/null there first (runc's reOpenDevNull): a
  file of the host's mount namespace is one CRIU cannot checkpoint;
- the program is looked up and cwd entered while still privileged, so a missing program is
  reported by ``create`` (with runc's wording), not lost after ``create`` returned;
- fds are marked close-on-exec before any seccomp filter can be loaded (a profile need not
  allow close_range, and runtime-tools' default does not);
- capabilities and the user switch come late (they take away the rights the steps above use);
- ``ready`` is sent, and only then does init wait for ``start``;
- no_new_privs right before execve, then the seccomp filter: the filter applies to every
  system call made after it, so the fewer the better (the profile need not allow what
  init does, only what the program does). The filter was compiled by the runtime before the
  fork; loading it is one seccomp(2) call.
- ...unless noNewPrivileges is false: then loading a filter needs CAP_SYS_ADMIN, which
  ``credentials`` may drop, so (runc's order) the filter is loaded right before
  ``credentials`` and everything after it (capset, setgroups, setresgid, setresuid, prctl,
  the ready message, the exec fifo, startContainer hooks, execve) runs under the filter, as
  in runc: such a profile must allow those (docker's and runtime-tools' do);
- ...or unless the profile has SCMP_ACT_NOTIFY: the listener fd it makes must reach the
  runtime (which passes it to ``listenerPath``) while the channel is open, so the filter is
  loaded right before ``ready`` (with no_new_privs set there first when the spec asks for
  it, as runc sets it early).
"""

import _signal  # the C module: signal.py builds IntEnums, and nothing imports after pivot_root
import errno
import os
import stat

from kago import jsonio, log
from kago.errors import ExecError, KernelError
from kago.kernel import consts as C
from kago.host.rootless import in_user_namespace
from kago.kernel import libc
from kago.linux import caps, devices, limits, mounts, rootfs


class InitContext:
    """What the steps share: the plan, the channel to the runtime, and fds opened before fork."""

    __slots__ = ("plan", "chan", "fifo_fd", "console_fd", "rootfd", "top", "preserve",
                 "exe", "state_json", "root_fd_for_exec", "has_devpts", "dev_is_bind",
                 "sources", "new_keyring", "awaiting_go")

    def __init__(self, plan, chan, fifo_fd=None, console_fd=None, preserve=0,
                 root_fd_for_exec=None, new_keyring=True):
        self.plan = plan
        self.chan = chan
        self.new_keyring = new_keyring
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd
        self.preserve = preserve
        self.root_fd_for_exec = root_fd_for_exec
        self.rootfd = None
        self.top = caps.last_cap()
        self.exe = None
        self.state_json = None
        self.has_devpts = False
        self.dev_is_bind = False
        self.sources = {}  # mount index -> O_PATH fd of its bind source (user namespaces)
        self.awaiting_go = False  # child.direct: the runtime's "go" is still to come


# --- create/run: the container's first process --------------------------------------------

def enter_cgroup_ns(ctx):
    """A new cgroup namespace, rooted at the container's own cgroups (we are in them now)."""
    if ctx.plan.new_ns("cgroup"):
        libc.unshare(C.CLONE_NEWCGROUP)


def session_keyring(ctx):
    """A session keyring of the container's own, as runc: otherwise the container shares the
    caller's session keyring and the keys in it (--no-new-keyring keeps the caller's)."""
    if not ctx.new_keyring:
        return
    try:
        libc.join_session_keyring(f"_ses.{ctx.plan.id}")
    except KernelError as e:
        if e.errno != errno.ENOSYS:  # a kernel without keys: nothing to share either
            raise


def set_oom_score(ctx):
    limits.set_oom_score_adj(ctx.plan.process.oom_score_adj)


def prepare_root(ctx):
    if not ctx.plan.has_ns("mount"):  # the host's mount table: change nothing of it
        ctx.rootfd = rootfs.open_root(ctx.plan.rootfs)
        return
    rootfs.isolate_propagation(ctx.plan.rootfs_propagation)
    ctx.rootfd = rootfs.bind_rootfs(ctx.plan.rootfs, _in_userns(ctx))


def _in_userns(ctx):
    """Whether the container is in a user namespace: its own, or the runtime's (rootless
    podman runs us as root of its user namespace): no mknod, no sysfs of another netns."""
    return ctx.plan.userns or in_user_namespace()


def mount_all(ctx):
    userns = _in_userns(ctx)
    for index, op in enumerate(ctx.plan.mounts):
        with log.phase(f"mount {op.destination}"):
            mounts.mount_one(ctx.rootfd, op, userns, ctx.sources.pop(index, None))
        dest = op.destination.rstrip("/")
        if op.fstype == "devpts" and dest == "/dev/pts":
            ctx.has_devpts = True
        if dest == "/dev" and op.is_bind:
            ctx.dev_is_bind = True


def make_devices(ctx):
    if ctx.dev_is_bind:
        return  # the host's /dev (or the user's) is used as it is, as runc does
    userns = _in_userns(ctx)
    for dev in ctx.plan.devices:
        devices.create_device(ctx.rootfd, dev, userns)
    devices.create_dev_links(ctx.rootfd, ctx.has_devpts)


def make_cwd(ctx):
    os.close(mounts.mkdirs_in_root(ctx.rootfd, ctx.plan.process.cwd))


def cgroup_limits(ctx):
    """Wait until the runtime has applied the cgroup limits (child.direct: its "go")."""
    if ctx.awaiting_go:
        ctx.chan.recv(expect=("go",))
        ctx.awaiting_go = False


def creation_hooks(ctx):
    hooks = ctx.plan.hooks
    if not any(hooks.get(k) for k in ("prestart", "createRuntime", "createContainer",
                                       "startContainer")):
        return
    ctx.chan.send(t="hooks")
    ctx.state_json = ctx.chan.recv(expect=("ok",))["state"]
    from kago.process.hooks import run_hooks
    run_hooks("createContainer", hooks.get("createContainer"), ctx.state_json,
              ctx.plan.process.env)


def sysctls(ctx):
    limits.write_sysctls(ctx.rootfd, ctx.plan.sysctl)


def protect_paths(ctx):
    for path in ctx.plan.readonly_paths:
        mounts.bind_readonly(ctx.rootfd, path)
    mounts.mask_paths(ctx.rootfd, ctx.plan.masked_paths)


def switch_root(ctx):
    os.close(ctx.rootfd)
    ctx.rootfd = None
    if not ctx.plan.has_ns("mount"):
        rootfs.chroot_into(ctx.plan.rootfs)  # as runc and crun: pivot_root needs our own
        return
    if ctx.plan.no_pivot:
        rootfs.move_root(ctx.plan.rootfs)
    else:
        rootfs.pivot(ctx.plan.rootfs)
    rootfs.apply_root_propagation(ctx.plan.rootfs_propagation)
    if ctx.plan.root_readonly:
        rootfs.make_root_readonly()


_NULL_RDEV = os.makedev(1, 3)
_S_IFMT, _S_IFCHR = 0o170000, 0o020000


def reopen_dev_null(ctx):
    """Each of fds 0-2 that is a null device (the host's /dev/null a client gave) is replaced by
    the container's own /dev/null, opened read-write as runc does; none there: left as is."""
    if not ctx.plan.has_ns("mount"):
        return
    null = None
    try:
        for fd in range(3):
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            if st.st_mode & _S_IFMT != _S_IFCHR or st.st_rdev != _NULL_RDEV:
                continue
            if null is None:
                null = _open_container_null()
                if null is None:
                    return
            os.dup2(null, fd)
    finally:
        if null is not None:
            os.close(null)


def _open_container_null():
    try:
        fd = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_mode & _S_IFMT == _S_IFCHR and st.st_rdev == _NULL_RDEV:
        return fd
    os.close(fd)
    return None


def set_names(ctx):
    limits.set_names(ctx.plan.hostname, ctx.plan.domainname)


# --- shared by init and exec ---------------------------------------------------------------

def enter_exec_root(ctx):
    """exec: take the container's root (the fd was opened before joining its namespaces)."""
    os.fchdir(ctx.root_fd_for_exec)
    os.chroot(".")
    os.close(ctx.root_fd_for_exec)
    ctx.root_fd_for_exec = None


def terminal(ctx):
    if ctx.plan.process.terminal:
        from kago.process import tty
        tty.setup_console(ctx.console_fd, ctx.plan.process.console_size)
    if ctx.console_fd is not None:
        os.close(ctx.console_fd)
        ctx.console_fd = None


def rlimits(ctx):
    limits.set_rlimits(ctx.plan.process.rlimits)


def home_env(ctx):
    """Like runc: a spec without HOME gets the user's home from the container's /etc/passwd."""
    proc = ctx.plan.process
    if not any(item.startswith("HOME=") for item in proc.env or ()):
        proc.env = list(proc.env or ()) + [f"HOME={passwd_home(proc.uid)}"]


def find_program(ctx):
    proc = ctx.plan.process
    ctx.exe = lookup(proc.args[0], proc.env)


def enter_cwd(ctx):
    try:
        os.chdir(ctx.plan.process.cwd)
    except OSError as e:
        raise KernelError("chdir", e.errno, ctx.plan.process.cwd) from None


def credentials(ctx):
    proc = ctx.plan.process
    if proc.setgroups_denied and proc.additional_gids:
        raise ExecError("cannot set additional groups (process.user.additionalGids) in a "
                        "rootless user namespace mapping a single ID: map ID ranges instead")
    caps.apply(proc, ctx.top, not proc.setgroups_denied)
    if ctx.plan.process.umask is not None:
        os.umask(ctx.plan.process.umask)


def close_fds(ctx):
    """Only 0-2 and the preserved/LISTEN_FDS fds may reach the program (CVE-2024-21626).

    Every other fd is marked close-on-exec, before any seccomp filter is loaded: a profile
    need not allow close_range(2) (runtime-tools' default does not), nor anything else this
    takes. What init opens after this (the exec fifo, hook pipes, a seccomp listener) is
    close-on-exec from birth.
    """
    keep = 3 + ctx.preserve
    cloexec_from(keep)
    for fd in range(3, keep):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass  # a preserved fd the caller did not actually pass


def cloexec_from(first, fd_dir="/proc/self/fd"):
    """Mark every fd >= ``first`` close-on-exec: close_range(2) with CLOSE_RANGE_CLOEXEC,
    else (a kernel before 5.11, or a seccomp filter around the runtime refusing it) each fd
    listed in /proc/self/fd, as runc does. Neither possible: an error, never a leak."""
    try:
        libc.close_range(first, 0xFFFFFFFF, C.CLOSE_RANGE_CLOEXEC)
        return
    except KernelError as e:
        if e.errno not in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
            raise
    try:
        names = os.listdir(fd_dir)
    except OSError as e:
        raise KernelError("mark fds close-on-exec: list", e.errno, fd_dir,
                          "close_range(2) is not available either") from None
    for name in names:
        fd = int(name)
        if fd >= first:
            try:
                os.set_inheritable(fd, False)
            except OSError as e:
                if e.errno != errno.EBADF:  # the listing's own fd, closed since
                    raise KernelError("mark fd close-on-exec", e.errno, f"{fd_dir}/{fd}") \
                        from None


def signal_ready(ctx):
    ctx.chan.send(t="ready")
    ctx.chan.close()


def wait_for_start(ctx):
    """create: block on the exec fifo until ``kago-oci start`` opens it for reading."""
    if ctx.fifo_fd is None:
        return
    try:
        fd = os.open(mounts.fdpath(ctx.fifo_fd), os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError("open exec fifo", e.errno, None, "is /proc mounted?") from None
    os.write(fd, b"0")
    os.close(fd)
    os.close(ctx.fifo_fd)


def start_hooks(ctx):
    if ctx.plan.hooks.get("startContainer"):
        from kago.process.hooks import run_hooks  # loaded before the root switch
        state = jsonio.loads(ctx.state_json or "{}")
        state["status"] = "created"  # what `start` found, as runc reports it to these hooks
        run_hooks("startContainer", ctx.plan.hooks["startContainer"], jsonio.dumps(state),
                  ctx.plan.process.env)


def lsm_labels(ctx):
    """AppArmor profile / SELinux label for the program, taking effect at execve (runc applies
    them here, before the capability drop). plan.validate dropped them, with a warning, where
    the host has no such LSM."""
    proc = ctx.plan.process
    if proc.apparmor_profile or proc.selinux_label:
        from kago.linux import lsm
        lsm.apply(proc.apparmor_profile, proc.selinux_label)


def no_new_privileges(ctx):
    if ctx.plan.process.no_new_privileges:
        libc.prctl(C.PR_SET_NO_NEW_PRIVS, 1, op="prctl(PR_SET_NO_NEW_PRIVS)")


# --- seccomp: one filter, loaded by the first of these three steps that applies ---------------

def seccomp_privileged(ctx):
    """noNewPrivileges false: load now, while init still has CAP_SYS_ADMIN (see the top)."""
    sp = ctx.plan.process.seccomp
    if sp is not None and not ctx.plan.process.no_new_privileges:
        _load_seccomp(ctx, sp)


def seccomp_listener(ctx):
    """A profile with SCMP_ACT_NOTIFY (and noNewPrivileges): load before ``ready``, so the
    listener fd can still be sent to the runtime."""
    sp = ctx.plan.process.seccomp
    if sp is not None and sp.notify and ctx.plan.process.no_new_privileges:
        no_new_privileges(ctx)  # now rather than later: without it the load needs SYS_ADMIN
        _load_seccomp(ctx, sp)


def seccomp(ctx):
    """The usual case: the filter is the last thing before execve."""
    sp = ctx.plan.process.seccomp
    if sp is not None and not sp.notify and ctx.plan.process.no_new_privileges:
        _load_seccomp(ctx, sp)


def _load_seccomp(ctx, sp):
    from kago.linux import seccomp as sc  # imported by the runtime before the fork
    listener = sc.load(sp)
    if listener is not None:
        try:
            ctx.chan.send_fd(listener, t="seccomp")
            ctx.chan.recv(expect=("ok",))  # the runtime has passed it on to listenerPath
        finally:
            os.close(listener)


def execute(ctx):
    proc = ctx.plan.process
    # the last line of the phase log: the time from here to the program is the kernel's
    log.debug("phase exec", path=ctx.exe, pid=os.getpid())
    _default_signals()
    try:
        os.execve(ctx.exe, proc.args, _env_dict(proc.env))
    except OSError as e:
        raise ExecError(f"exec {ctx.exe}: {os.strerror(e.errno).lower()}",
                        127 if e.errno == errno.ENOENT else 126) from None


CREATE_STEPS = (enter_cgroup_ns, session_keyring, set_oom_score, prepare_root, mount_all,
                cgroup_limits, make_devices, make_cwd, creation_hooks, sysctls, protect_paths,
                switch_root, reopen_dev_null, set_names, terminal, rlimits, home_env,
                find_program, enter_cwd, lsm_labels,
                close_fds, seccomp_privileged, credentials, seccomp_listener, signal_ready,
                wait_for_start, start_hooks, no_new_privileges, seccomp, execute)

EXEC_STEPS = (cgroup_limits, set_oom_score, enter_exec_root, terminal, rlimits, home_env, find_program,
              enter_cwd, lsm_labels, close_fds, seccomp_privileged, credentials, seccomp_listener,
              signal_ready, no_new_privileges, seccomp, execute)


# --- helpers -------------------------------------------------------------------------------

def _default_signals():
    """Python ignores SIGPIPE and SIGXFSZ at start-up, and an ignored signal stays ignored
    across execve: put them back to the default, as the program gets them from runc (Go
    resets what it handles). Ignored SIGHUP/SIGINT of the caller stay ignored there too."""
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _env_dict(env):
    out = {}
    for item in env or ():
        key, sep, value = item.partition("=")
        if sep:
            out[key] = value
    return out


def passwd_home(uid, path="/etc/passwd"):
    """The home directory of the first ``path`` entry for ``uid``, else "/" (runc's default).

    The file belongs to the image: only a regular file is read (a FIFO would block us), and
    only its first MiB.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        data = os.read(fd, 1 << 20) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)
    for line in data.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2] == str(uid):
            return fields[5] or "/"
    return "/"


def lookup(name, env):
    """Find the program like Go's exec.LookPath, with runc's error wording (conmon parses it)."""
    if "/" in name:
        _check_executable(name, name)
        return name
    path = _env_dict(env).get("PATH", DEFAULT_PATH)
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            _check_executable(candidate, name)
            return candidate
        except ExecError:
            continue
    raise ExecError(f'exec: "{name}": executable file not found in $PATH', 127)


def _check_executable(path, shown):
    try:
        st = os.stat(path)
    except OSError as e:
        raise ExecError(f'exec: "{shown}": stat {path}: {os.strerror(e.errno).lower()}',
                        127 if e.errno == errno.ENOENT else 126) from None
    if stat.S_ISDIR(st.st_mode) or not os.access(path, os.X_OK):
        raise ExecError(f'exec: "{shown}": {os.strerror(errno.EACCES).lower()}')
