"""seccomp filters: compiled with libseccomp in the runtime, loaded in the container process.

``compile(sp, cache_dir)`` runs before the fork (``process.parent.spawn``): it builds the
filter from the ``SeccompPlan`` with libseccomp, or takes the same filter compiled earlier
from the runtime's cache, and keeps the BPF program in ``sp.program``. The forked process
inherits it and ``load(sp)`` installs it with one seccomp(2) call, the last thing before
execve (see ``process.steps`` for the order and why it depends on noNewPrivileges). libseccomp
is thus loaded and run only by the runtime, and never inside the container. With a listener
(SCMP_ACT_NOTIFY) the runtime receives its fd and ``send_listener`` hands it to the agent.

As runc: a system call name this architecture does not have is skipped (it cannot be made,
so it needs no rule), and logged at debug level; libseccomp translates each rule for every
architecture of the filter (x86's and x32's numbers on an x86_64 host); the bad-architecture
action stays libseccomp's default, killing the caller.
"""

import binascii
import marshal
import os
import stat
import sys

from kago import log
from kago.errors import KernelError, SpecError
from kago.kernel import libseccomp as S

BPF_MAXINSNS = 4096  # the kernel refuses a longer filter program (EINVAL)
CACHE_FORMAT = 2
MAX_CACHED = 64  # distinct filters kept; a miss beyond that empties the cache first


def compile(sp, cache_dir=None):
    """Build ``sp.program`` (a ``kernel.libseccomp.Program``) unless it is built already.

    ``cache_dir``: where compiled filters are kept (in the runtime's state root). libseccomp
    needs ~8-10 ms for docker's profile on three architectures, and every container of a host
    tends to use the same few profiles; a cached program is used only when everything that
    went into it is byte-for-byte the same (the rules, libseccomp's version, the kernel).
    """
    if sp.program is not None:
        return sp.program
    key = _cache_key(sp) if cache_dir else None
    hit = _cache_get(cache_dir, key) if cache_dir else None
    if hit is not None:
        bpf, nr_seccomp, skipped = hit
    elif cache_dir:
        bpf, nr_seccomp, skipped = _build_once(sp, cache_dir, key)
    else:
        bpf, nr_seccomp, skipped = _build(sp)
    flags = sp.flags
    if sp.notify:
        flags |= S.FLAG_NEW_LISTENER
        if flags & S.FLAG_TSYNC:
            flags |= S.FLAG_TSYNC_ESRCH  # the kernel refuses TSYNC with a listener otherwise
    if skipped:
        sp.skipped = list(skipped)
        log.debug("seccomp: system calls unknown on this architecture skipped",
                  names=",".join(skipped))
    sp.program = S.Program(bpf, flags, nr_seccomp)
    return sp.program


def _build_once(sp, cache_dir, key):
    """A miss: compile and cache under an flock of the cache directory, so that creates
    missing the same filter at once (a manager starting many containers of one profile) wait
    for the first one's compile and take it from the cache instead of each compiling it."""
    lock = _lock_cache(cache_dir)
    try:
        hit = _cache_get(cache_dir, key) if lock is not None else None
        if hit is not None:
            return hit
        value = _build(sp)
        _cache_put(cache_dir, key, value)
        return value
    finally:
        if lock is not None:
            os.close(lock)  # releases the flock


def _lock_cache(cache_dir):
    """An fd holding an exclusive flock on ``cache_dir``, or None (best effort, as the cache)."""
    import fcntl
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd = os.open(cache_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:
        os.close(fd)
        return None
    return fd


def _build(sp):
    """libseccomp: the filter's BPF, seccomp(2)'s number, the names skipped."""
    nr_seccomp = S.resolve_syscall("seccomp")
    skipped = []
    with S.Filter(sp.default_action) as f:
        for field, arch in sp.arches:
            token = S.resolve_arch(arch)
            if token is None:
                raise SpecError(field, f"libseccomp {'.'.join(map(str, S.version()))} does "
                                f"not know the architecture \"{arch}\"")
            try:
                f.add_arch(token)
            except KernelError as e:
                raise SpecError(field, f"libseccomp cannot add the architecture \"{arch}\": "
                                f"{os.strerror(e.errno).lower()}") from None
        f.optimize()
        for field, name, action, conditions in sp.rules:
            nr = S.resolve_syscall(name)
            if nr is None:
                skipped.append(name)
                continue
            ret = f.add_rule(action, nr, conditions)
            if ret < 0:
                raise SpecError(field, f"libseccomp refused the rule for \"{name}\": "
                                f"{os.strerror(-ret).lower()}")
        bpf = f.export()
    if len(bpf) // 8 > BPF_MAXINSNS:
        raise SpecError("linux.seccomp", f"the filter compiles to {len(bpf) // 8} BPF "
                        f"instructions; the kernel takes at most {BPF_MAXINSNS}")
    return bpf, nr_seccomp, tuple(sorted(set(skipped)))


# --- the cache: <cache_dir>/<crc32>-<key length>, holding marshal((key, value)) --------------

def _cache_key(sp):
    uname = os.uname()
    rules = tuple((name, action, conditions) for _f, name, action, conditions in sp.rules)
    return marshal.dumps((CACHE_FORMAT, S.version(), uname.release, uname.machine,
                          sp.default_action, tuple(a for _f, a in sp.arches), rules))


def _cache_name(key):
    return f"{binascii.crc32(key):08x}-{len(key):x}"


def _private(st):
    """Ours and writable by no one else: a cached filter is trusted as if just compiled."""
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _cache_get(cache_dir, key):
    try:
        fd = os.open(os.path.join(cache_dir, _cache_name(key)),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not (_private(st) and _private(os.stat(cache_dir)) and stat.S_ISREG(st.st_mode)):
            return None
        cached_key, value = marshal.loads(os.read(fd, st.st_size + 1))
        return value if cached_key == key else None
    except (OSError, ValueError, EOFError, TypeError):
        return None  # unreadable or from another format: compile again
    finally:
        os.close(fd)


def _cache_put(cache_dir, key, value):
    """Best effort (a failure only costs the next create a compile): tmp file + rename."""
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        names = os.listdir(cache_dir)
        if len(names) >= MAX_CACHED:
            for name in names:
                os.unlink(os.path.join(cache_dir, name))
        path = os.path.join(cache_dir, _cache_name(key))
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, marshal.dumps((key, value)))
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        log.debug("seccomp: cannot cache the compiled filter", error=str(e))


def load(sp):
    """Install the compiled filter on this process; the listener fd when it has one, else
    None. Needs no_new_privs, or CAP_SYS_ADMIN in the current user namespace."""
    fd = S.load(sp.program)
    return fd if sp.notify else None


def send_listener(sp, fd, pid, state):
    """Hand the listener ``fd`` to the agent at ``sp.listener_path``, as runc does: one
    message on a new stream connection, the runtime-spec's ContainerProcessState as JSON with
    the fd attached (SCM_RIGHTS), ``fds`` naming it "seccompFd"."""
    import _socket

    from kago import jsonio
    from kago.version import OCI_VERSION
    doc = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
           "metadata": sp.listener_metadata or "", "state": state}
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(10)
        sock.connect(sp.listener_path)
        sock.sendmsg([jsonio.dumps(doc).encode()],
                     [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))])
    except OSError as e:
        raise KernelError("send seccomp listener to", e.errno or 0, sp.listener_path,
                          "linux.seccomp.listenerPath") from None
    finally:
        sock.close()
