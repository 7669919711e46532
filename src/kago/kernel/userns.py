"""The user namespace holder: a process whose only job is to own a new user namespace.

An idmapped mount (mount_setattr(2) MOUNT_ATTR_IDMAP) needs a user namespace fd with the maps
to apply. ``UsernsHolder`` makes one without a Python fork; kago.kernel.idmap.make_userns
writes its maps and keeps the namespace as an fd. Used by the store (idmapped layers) and by
the runtime (idmapped bind mounts, spec ``idmap``/``ridmap``).
"""

import errno
import signal

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.kernel import ffi

CLONE_VM = 0x00000100
CLONE_VFORK = 0x00004000
CLONE_PARENT_SETTID = 0x00100000
_HOLDER_FLAGS = (CLONE_VM | CLONE_VFORK | C.CLONE_NEWUSER | CLONE_PARENT_SETTID
                 | signal.SIGCHLD)
_STACK_WORDS = 512          # 4 KiB: the holder pushes one return address
_clone = ffi.function("clone")
_getpid = ffi.function("getpid")  # the holder's whole life: getpid(2), then glibc's exit(2)
_ALL_SIGNALS = signal.valid_signals()


class UsernsHolder:
    """A process whose only job is to be the first member of a new user namespace.

    ``start`` makes it with clone(2) CLONE_VM | CLONE_VFORK | CLONE_NEWUSER | SIGCHLD, the way
    posix_spawn starts a child. CLONE_VM: it shares our memory, so no page table is copied (a
    Python fork copies those of the whole process and runs the interpreter's fork hooks: 1-3
    ms, most of an idmapped ``create_rootfs``). It runs libc's ``getpid`` (mov, syscall, ret)
    on ``stack``, a buffer this object owns, then glibc's clone wrapper (x86-64: pop fn and
    arg, call, exit syscall) ends it: no Python, no lock, no TLS and no errno are touched in
    the child. CLONE_VFORK: clone returns only once the child has let go of our memory in
    exit(2), so nothing runs on the stack after ``start``, and the child never waits for a
    CPU while we wait for it. Signals are blocked around the clone, so the child inherits a
    full mask and no signal handler of ours runs on its stack.

    The child is thus a zombie when the parent writes /proc/PID/uid_map and gid_map and opens
    /proc/PID/ns/user: a zombie keeps its credentials, hence its user namespace, until it is
    reaped, and the maps of a namespace can be written whoever is left in it. There is
    nothing to release, and nothing outlives a parent that dies (init reaps the zombie). The
    parent reaps it last: that succeeding proves that PID was our child the whole time (an
    unreaped PID is never reused), so the files opened were its.

    ``tid`` is written by the kernel (CLONE_PARENT_SETTID) before clone returns, so the PID is
    known even if a KeyboardInterrupt strikes right after.
    """

    __slots__ = ("stack", "tid")

    def __init__(self):
        self.stack = (ffi.c_uint64 * _STACK_WORDS)()  # calloc: 16-byte aligned
        self.tid = ffi.c_int(0)

    @property
    def pid(self):
        return self.tid.value

    def start(self):
        """Clone the holder; returns its PID. Raises KernelError (EPERM, ENOSPC: too many
        user namespaces, ...)."""
        # the top of the stack (it grows down), 64 bytes in, keeping 16-byte alignment
        top = ffi.byref(self.stack, ffi.sizeof(self.stack) - 64)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _ALL_SIGNALS)
        try:
            pid = _clone(_getpid, top, ffi.c_int(_HOLDER_FLAGS), None, ffi.byref(self.tid),
                         None, None)
            err = ffi.get_errno() if pid == -1 else 0
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if pid == -1:
            raise KernelError("clone", err or errno.EPERM,
                              detail="CLONE_NEWUSER for an idmapped mount")
        return pid
