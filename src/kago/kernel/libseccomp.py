"""libseccomp (Debian's ``libseccomp2``, dlopened through ``kernel.ffi``) and seccomp(2).

Two halves, used on the two sides of the fork:

- before the fork, in the runtime: ``Filter`` wraps a libseccomp filter context
  (seccomp_init, seccomp_arch_add, seccomp_rule_add_array, seccomp_export_bpf) and turns a
  profile into a classic BPF program, returned as a ``Program``: the raw ``sock_filter`` array
  plus a ready ``sock_fprog`` pointing at it;
- after the fork, in the container process: ``load(program)`` is one seccomp(2) system call
  (SECCOMP_SET_MODE_FILTER with the spec's flags). No libseccomp code runs there, and nothing
  is allocated or looked up between the call and the execve that follows it.

The library is opened on first use, never at import: the tables below are all the spec
validation and ``features`` need, and a spec without ``linux.seccomp`` never imports this
module at all. libseccomp functions return ``-errno``; they raise ``KernelError`` here.
Man pages: seccomp(2), seccomp_init(3), seccomp_rule_add(3), seccomp_export_bpf(3),
seccomp_arch_add(3), seccomp_attr_set(3).
"""

import errno as _errno
import os

from kago.errors import KernelError
from kago.kernel import ffi

LIBRARY = "libseccomp.so.2"

# --- the spec's vocabulary, with libseccomp's values (seccomp.h) ----------------------------

ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000  # | errno
ACT_NOTIFY = 0x7FC00000
ACT_TRACE = 0x7FF00000  # | message for the tracer
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_NOTIFY": ACT_NOTIFY,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
}
ACTIONS_WITH_DATA = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")  # the ones an errnoRet applies to
DEFAULT_ERRNO = _errno.EPERM  # runc's: ERRNO and TRACE without an errnoRet return EPERM

OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,  # (arg & value) == valueTwo
}
MAX_ARGS = 6  # a system call has at most six arguments

# spec name -> libseccomp's name for seccomp_arch_resolve_name (runc's list, plus riscv64 and
# parisc, which libseccomp 2.5 knows)
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
}

# seccomp(2) SECCOMP_SET_MODE_FILTER flags the spec may name (runc 1.2's known flags)
FILTER_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_LOG": 2,
}
FLAG_TSYNC = 1
FLAG_NEW_LISTENER = 8  # set by kago when the profile has SCMP_ACT_NOTIFY
FLAG_TSYNC_ESRCH = 16  # TSYNC and NEW_LISTENER together need it (Linux 5.7)

SECCOMP_SET_MODE_FILTER = 1

_NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name: no such system call
_ATTR_CTL_OPTIMIZE = 8  # seccomp_attr_set(3), libseccomp >= 2.5


def action_value(name, errno_ret=None):
    """The libseccomp action for a spec action name (and errnoRet, for ERRNO and TRACE)."""
    value = ACTIONS[name]
    if name in ACTIONS_WITH_DATA:
        value |= (DEFAULT_ERRNO if errno_ret is None else errno_ret) & 0xFFFF
    return value


# --- the library ------------------------------------------------------------------------------

class _Lib:
    """libseccomp's functions, resolved when the library is first needed."""

    def __init__(self):
        lib = ffi.library(LIBRARY)
        fn = ffi.library_function
        self.init = fn(lib, "seccomp_init", ffi.c_void_p)
        self.release = fn(lib, "seccomp_release", None)
        self.arch_add = fn(lib, "seccomp_arch_add")
        self.arch_resolve_name = fn(lib, "seccomp_arch_resolve_name", ffi.c_uint32)
        self.arch_native = fn(lib, "seccomp_arch_native", ffi.c_uint32)
        self.resolve_name = fn(lib, "seccomp_syscall_resolve_name")
        self.resolve_name_arch = fn(lib, "seccomp_syscall_resolve_name_arch")
        self.rule_add_array = fn(lib, "seccomp_rule_add_array")
        self.export_bpf = fn(lib, "seccomp_export_bpf")
        self.attr_set = fn(lib, "seccomp_attr_set")
        self.version = fn(lib, "seccomp_version", ffi.c_void_p)


_lib = None


def lib():
    global _lib
    if _lib is None:
        try:
            _lib = _Lib()
        except OSError as e:
            raise KernelError("dlopen", _errno.ENOENT, LIBRARY,
                              f"{e}; install libseccomp2 to use linux.seccomp") from None
    return _lib


def available():
    """True if libseccomp can be loaded on this host."""
    try:
        lib()
    except KernelError:
        return False
    return True


def version():
    """libseccomp's (major, minor, micro)."""
    ptr = lib().version()
    triple = (ffi.c_uint * 3).from_address(ptr)
    return tuple(triple)


class _ArgCmp(ffi.Structure):
    _fields_ = [("arg", ffi.c_uint), ("op", ffi.c_int), ("datum_a", ffi.c_uint64),
                ("datum_b", ffi.c_uint64)]


def _check(ret, op, detail=None):
    if ret < 0:
        raise KernelError(op, -ret, None, detail)
    return ret


def resolve_syscall(name):
    """The native number of system call ``name``; a libseccomp pseudo-number (< -1) for a
    call only other architectures have (chown32 on x86_64: a filter with SCMP_ARCH_X86 still
    gets the rule); None if libseccomp knows no such call anywhere."""
    nr = lib().resolve_name(name.encode())
    return None if nr == _NR_SCMP_ERROR else nr


def resolve_syscall_arch(arch_token, name):
    """The number of system call ``name`` on architecture ``arch_token``, or None."""
    nr = lib().resolve_name_arch(ffi.c_uint32(arch_token), name.encode())
    return None if nr == _NR_SCMP_ERROR else nr


def native_arch():
    """This host's architecture token (AUDIT_ARCH_X86_64 here)."""
    return lib().arch_native()


def resolve_arch(name):
    """libseccomp's token (AUDIT_ARCH_*) for its arch name ("x86_64"), or None."""
    token = lib().arch_resolve_name(name.encode())
    return token or None


class Filter:
    """A libseccomp filter context; ``export()`` compiles it to BPF. Use as a context manager
    (the context is released on exit)."""

    __slots__ = ("ctx",)

    def __init__(self, default_action):
        ctx = lib().init(ffi.c_uint32(default_action))
        if not ctx:
            raise KernelError("seccomp_init", _errno.EINVAL, None,
                              f"default action {default_action:#x}")
        self.ctx = ffi.c_void_p(ctx)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        if self.ctx is not None:
            lib().release(self.ctx)
            self.ctx = None

    def add_arch(self, token):
        ret = lib().arch_add(self.ctx, ffi.c_uint32(token))
        if ret != -_errno.EEXIST:  # the native arch is always there
            _check(ret, "seccomp_arch_add", f"arch {token:#x}")

    def optimize(self):
        """Find the syscall by binary search rather than down a list (optimization level 2).
        The program is longer, but the kernel loads it in half the time (it runs the filter
        for every syscall number to build its action cache) and each call not in that cache
        takes log(n) comparisons. False if this libseccomp cannot (before 2.5)."""
        return lib().attr_set(self.ctx, ffi.c_int(_ATTR_CTL_OPTIMIZE), ffi.c_uint32(2)) == 0

    def add_rule(self, action, nr, conditions=()):
        """seccomp_rule_add_array; ``conditions``: (arg index, operator, value, value two)."""
        n = len(conditions)
        array = (_ArgCmp * max(n, 1))()
        for i, (index, op, a, b) in enumerate(conditions):
            array[i].arg, array[i].op, array[i].datum_a, array[i].datum_b = index, op, a, b
        return lib().rule_add_array(self.ctx, ffi.c_uint32(action), ffi.c_int(nr),
                                    ffi.c_uint(n), array)

    def export(self):
        """The filter as a classic BPF program: the raw bytes of its sock_filter array."""
        fd = os.memfd_create("kago-seccomp", os.MFD_CLOEXEC)
        try:
            _check(lib().export_bpf(self.ctx, ffi.c_int(fd)), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)


# --- loading: seccomp(2), in the container process ----------------------------------------------

class _SockFprog(ffi.Structure):
    _fields_ = [("len", ffi.c_ushort), ("filter", ffi.c_char_p)]


_syscall = ffi.function("syscall", ffi.c_long)


class Program:
    """A compiled filter: BPF bytes, the seccomp(2) flags, and the sock_fprog, built now so
    that loading it is a single system call."""

    __slots__ = ("bpf", "flags", "nr_seccomp", "_fprog")

    def __init__(self, bpf, flags, nr_seccomp):
        if len(bpf) % 8 or not bpf:
            raise ValueError(f"a BPF program is a non-empty array of 8-byte instructions, "
                             f"got {len(bpf)} bytes")
        self.bpf = bpf
        self.flags = flags
        self.nr_seccomp = nr_seccomp
        self._fprog = _SockFprog(len(bpf) // 8, bpf)  # keeps a reference to ``bpf``

    @property
    def instructions(self):
        return len(self.bpf) // 8


def load(program):
    """Install ``program`` on the calling thread: returns the listener fd when the flags ask
    for one (SECCOMP_FILTER_FLAG_NEW_LISTENER), else 0.

    Without no_new_privs the caller needs CAP_SYS_ADMIN in its user namespace (EACCES else).
    """
    while True:
        ret = _syscall(ffi.c_long(program.nr_seccomp), ffi.c_uint(SECCOMP_SET_MODE_FILTER),
                       ffi.c_uint(program.flags), ffi.byref(program._fprog))
        if ret != -1:
            return ret
        err = ffi.get_errno()
        if err != _errno.EINTR:
            raise KernelError("seccomp(SECCOMP_SET_MODE_FILTER)", err, None,
                              f"flags {program.flags:#x}")


def flag_supported(flag, nr_seccomp):
    """Does this kernel know seccomp filter flag ``flag``? Asked as runc does: with a NULL
    program the kernel says EFAULT for a flag it knows and EINVAL for one it does not
    (nothing is installed either way)."""
    ret = _syscall(ffi.c_long(nr_seccomp), ffi.c_uint(SECCOMP_SET_MODE_FILTER),
                   ffi.c_uint(flag), ffi.c_void_p(0))
    return ret == -1 and ffi.get_errno() == _errno.EFAULT
