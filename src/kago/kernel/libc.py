"""Thin wrappers over the system calls Python 3.11's ``os`` lacks.

The only module in kago that calls C (through ``kernel.ffi``, a lean ctypes). Each wrapper
raises ``KernelError`` (an OSError) naming the operation and path, and retries EINTR (ctypes
does not, unlike ``os.*``).
Man pages: unshare(2), setns(2), mount(2), umount(2), pivot_root(2), mount_setattr(2),
openat2(2), open_tree(2), move_mount(2), capget(2), prctl(2), close_range(2), prlimit(2).
"""

import errno as _errno
import os

from kago.errors import KernelError, MountError
from kago.kernel import consts as C
from kago.kernel import ffi


class _Libc:
    """libc's functions, looked up on first use (most commands call only a few)."""

    def __getattr__(self, name):
        fn = ffi.function(name)
        setattr(self, name, fn)
        return fn


_libc = _Libc()
_syscall = ffi.function("syscall", ffi.c_long)


def _call(fn, args, op, path=None, exc=KernelError, detail=None):
    while True:
        ret = fn(*args)
        if ret != -1:
            return ret
        err = ffi.get_errno()
        if err != _errno.EINTR:
            raise exc(op, err, path, detail)


def _b(path):
    return os.fsencode(path) if path is not None else None


# --- namespaces -----------------------------------------------------------------------------

def unshare(flags):
    _call(_libc.unshare, (ffi.c_int(flags),), "unshare", detail=hex(flags))


def setns(fd, nstype=0, path=None):
    _call(_libc.setns, (ffi.c_int(fd), ffi.c_int(nstype)), "setns", path)


def sethostname(name):
    raw = name.encode()
    _call(_libc.sethostname, (raw, ffi.c_size_t(len(raw))), "sethostname", name)


def setdomainname(name):
    raw = name.encode()
    _call(_libc.setdomainname, (raw, ffi.c_size_t(len(raw))), "setdomainname", name)


def syncfs(fd, shown=None):
    """syncfs(2): write the whole filesystem holding ``fd`` to its disk."""
    return _call(_libc.syncfs, (fd,), "syncfs", shown)


# --- mounts ---------------------------------------------------------------------------------

def mount(source, target, fstype, flags, data=None, shown=None):
    """mount(2). ``shown`` is the path to name in errors when ``target`` is a /proc fd link."""
    args = (_b(source), _b(target), _b(fstype), ffi.c_ulong(flags), _b(data))
    _call(_libc.mount, args, "mount", shown or target, MountError,
          detail=f"type {fstype or 'bind'}, source {source}" if source else None)


def umount2(target, flags=0):
    _call(_libc.umount2, (_b(target), ffi.c_int(flags)), "umount", target, MountError)


def pivot_root(new_root, put_old):
    _call(_syscall, (C.SYS_pivot_root, _b(new_root), _b(put_old)), "pivot_root", new_root,
          MountError)


class _MountAttr(ffi.Structure):
    _fields_ = [("attr_set", ffi.c_uint64), ("attr_clr", ffi.c_uint64),
                ("propagation", ffi.c_uint64), ("userns_fd", ffi.c_uint64)]


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0,
                  shown=None):
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _call(_syscall, (C.SYS_mount_setattr, ffi.c_int(dirfd), _b(path), ffi.c_uint(flags),
                     ffi.byref(attr), ffi.c_size_t(ffi.sizeof(attr))),
          "mount_setattr", shown or path, MountError)


def open_tree(dirfd, path, flags):
    return _call(_syscall, (C.SYS_open_tree, ffi.c_int(dirfd), _b(path),
                            ffi.c_uint(flags)), "open_tree", path, MountError)


def move_mount(from_fd, from_path, to_fd, to_path, flags, shown=None):
    _call(_syscall, (C.SYS_move_mount, ffi.c_int(from_fd), _b(from_path), ffi.c_int(to_fd),
                     _b(to_path), ffi.c_uint(flags)), "move_mount", shown or to_path,
          MountError)


class _OpenHow(ffi.Structure):
    _fields_ = [("flags", ffi.c_uint64), ("mode", ffi.c_uint64),
                ("resolve", ffi.c_uint64)]


def openat2(dirfd, path, flags, resolve, mode=0, shown=None):
    """openat2(2): the kernel resolves ``path`` under ``dirfd`` (with RESOLVE_IN_ROOT, symlinks
    and ``..`` cannot leave it). Retries EAGAIN, which the kernel returns when a rename raced."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    for _ in range(64):
        try:
            return _call(_syscall, (C.SYS_openat2, ffi.c_int(dirfd), _b(path),
                                    ffi.byref(how), ffi.c_size_t(ffi.sizeof(how))),
                         "open", shown or path)
        except KernelError as e:
            if e.errno != _errno.EAGAIN:
                raise
    raise KernelError("open", _errno.EAGAIN, shown or path)


# --- process credentials and controls --------------------------------------------------------

def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0, op="prctl"):
    return _call(_libc.prctl, (ffi.c_int(option), ffi.c_ulong(arg2), ffi.c_ulong(arg3),
                               ffi.c_ulong(arg4), ffi.c_ulong(arg5)), op)


class _CapHeader(ffi.Structure):
    _fields_ = [("version", ffi.c_uint32), ("pid", ffi.c_int)]


class _CapData(ffi.Structure):
    _fields_ = [("effective", ffi.c_uint32), ("permitted", ffi.c_uint32),
                ("inheritable", ffi.c_uint32)]


def capset(effective, permitted, inheritable):
    """Set the three per-thread capability sets from 64-bit masks (two u32 halves each)."""
    hdr = _CapHeader(C.LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _call(_syscall, (C.SYS_capset, ffi.byref(hdr), data), "capset")


def capget(pid=0):
    """Return (effective, permitted, inheritable) masks of ``pid`` (0 = this thread)."""
    hdr = _CapHeader(C.LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _call(_syscall, (C.SYS_capget, ffi.byref(hdr), data), "capget")
    join = lambda f: getattr(data[0], f) | (getattr(data[1], f) << 32)  # noqa: E731
    return join("effective"), join("permitted"), join("inheritable")


def close_range(first, last, flags):
    _call(_syscall, (C.SYS_close_range, ffi.c_uint(first), ffi.c_uint(last),
                     ffi.c_uint(flags)), "close_range")


def ioctl_int(fd, request, value=0, op="ioctl"):
    """ioctl with an int argument passed by pointer (TIOCGPTN/TIOCSPTLCK style)."""
    arg = ffi.c_int(value)
    _call(_libc.ioctl, (ffi.c_int(fd), ffi.c_ulong(request), ffi.byref(arg)), op)
    return arg.value


def ioctl_val(fd, request, value=0, op="ioctl"):
    """ioctl with an integer argument passed by value (TIOCSCTTY style)."""
    _call(_libc.ioctl, (ffi.c_int(fd), ffi.c_ulong(request), ffi.c_ulong(value)), op)


class _Rlimit(ffi.Structure):
    _fields_ = [("cur", ffi.c_uint64), ("max", ffi.c_uint64)]


def setrlimit(resource, soft, hard):
    """prlimit(2) on ourselves: the ``resource`` module would be one more shared object to
    load (~0.3 ms) on the container process's path, for this one call."""
    new = _Rlimit(soft, hard)
    _call(_libc.prlimit, (ffi.c_int(0), ffi.c_int(resource), ffi.byref(new), None),
          "setrlimit")


def setgroups(gids):
    arr = (ffi.c_uint32 * max(len(gids), 1))(*gids)
    _call(_libc.setgroups, (ffi.c_size_t(len(gids)), arr), "setgroups")


class _CloneArgs(ffi.Structure):
    _fields_ = [(name, ffi.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


CLONE_INTO_CGROUP = 0x200000000
SIGCHLD = 17


def clone3_into_cgroup(cgroup_fd):
    """fork(2) whose child starts in the cgroup2 directory ``cgroup_fd`` (clone3(2), Linux 5.7).

    Returns the child's pid in the parent and 0 in the child, like os.fork. Unlike os.fork it
    skips CPython's and glibc's after-fork handlers: the caller must be single-threaded and
    must not have imported ``threading`` or registered os.register_at_fork hooks (kago-oci's
    runtime falls back to os.fork when threading is loaded), and in the child glibc's cached TID is stale, so raise(3)
    must not be relied on. The gain: the child is born in its cgroup, with no migration and
    no RCU grace period (docs/latency.md).
    """
    return clone3(0, cgroup_fd)


def clone3(ns_flags, cgroup_fd=None):
    """clone3(2) as fork(2), the child born in the new namespaces ``ns_flags`` (CLONE_NEW*)
    and, with ``cgroup_fd``, in that cgroup2 directory. The same caveats as
    ``clone3_into_cgroup``."""
    flags = ns_flags | (CLONE_INTO_CGROUP if cgroup_fd is not None else 0)
    args = _CloneArgs(flags=flags, exit_signal=SIGCHLD,
                      cgroup=cgroup_fd if cgroup_fd is not None else 0)
    return _call(_syscall, (C.SYS_clone3, ffi.byref(args), ffi.c_size_t(ffi.sizeof(args))),
                 "clone3", detail=f"flags {flags:#x}" if ns_flags else "CLONE_INTO_CGROUP")


def join_session_keyring(name):
    """keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a new session keyring of that name."""
    return _call(_syscall, (C.SYS_keyctl, ffi.c_int(C.KEYCTL_JOIN_SESSION_KEYRING), _b(name)),
                 "keyctl(KEYCTL_JOIN_SESSION_KEYRING)", name)
