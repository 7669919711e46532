"""Names the runtime spec and the kernel share: capabilities, rlimits, signals and sysctls.

Pure tables and one parser, no I/O. Numbers are the kernel's (include/uapi/linux/capability.h,
asm-generic/resource.h, asm/signal.h for x86_64 and the other generic-ABI architectures), so a
name maps straight to what a system call takes. The runtime's plan, the manager and both CLIs
read them from here.

Plain dicts and ints, not enums: this module is on ``kago-oci``'s start-up path.
"""

from kago.errors import KagoError

# ---------------------------------------------------------------- capabilities

_CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
# Insertion order is kernel-number order, which `features` relies on to list them like runc.
CAPABILITIES = {"CAP_" + name: number for number, name in enumerate(_CAP_NAMES)}
CAP_LAST_CAP = len(CAPABILITIES) - 1

# ---------------------------------------------------------------- rlimits

_RLIMIT_NAMES = (
    "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
    "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
)
RLIMITS = {"RLIMIT_" + name: number for number, name in enumerate(_RLIMIT_NAMES)}
RLIM_INFINITY = 2**64 - 1

# ---------------------------------------------------------------- signals

_SIGNAL_NAMES = (
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
)
SIGNALS = {"SIG" + name: number for number, name in enumerate(_SIGNAL_NAMES, 1)}
# Old names the kernel headers still define; accepted on input, never printed.
SIGNAL_ALIASES = {"SIGIOT": 6, "SIGCLD": 17, "SIGPOLL": 29}
# glibc keeps 32 and 33 for its threads, so the first signal a program can use is 34.
SIGRTMIN = 34
SIGRTMAX = 64


def _parse_rt_signal(name: str) -> int | None:
    """``SIGRTMIN``, ``SIGRTMIN+3``, ``SIGRTMAX-1`` -> number, or None if not of that form."""
    for base, number, sign in (("SIGRTMIN", SIGRTMIN, "+"), ("SIGRTMAX", SIGRTMAX, "-")):
        if not name.startswith(base):
            continue
        rest = name[len(base):]
        if not rest:
            return number
        offset = rest[1:]
        if rest[0] != sign or not (offset.isascii() and offset.isdigit()):
            return None
        number = number + int(offset) if sign == "+" else number - int(offset)
        return number if SIGRTMIN <= number <= SIGRTMAX else None
    return None


def parse_signal(text: str) -> int:
    """A signal as ``kill`` takes it: ``9``, ``KILL``, ``SIGKILL``, ``sigkill``, ``RTMIN+3``.

    runc upper-cases the name and adds a missing ``SIG``; numbers must name a real signal
    (1 to 64). Anything else is ``unknown signal "FOO"``, runc's words.
    """
    if text.isascii() and text.isdigit():
        number = int(text)
        if 1 <= number <= SIGRTMAX:
            return number
        raise KagoError(f"unknown signal {_quote(text)}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = SIGNALS.get(name) or SIGNAL_ALIASES.get(name) or _parse_rt_signal(name)
    if number is None:
        raise KagoError(f"unknown signal {_quote(text)}")
    return number


def _quote(text):
    # kago.oci.schema's (Go's %q), loaded only for this error: ``kill``'s path skips schema
    from kago.oci.schema import quote
    return quote(text)


# ---------------------------------------------------------------- sysctls

# Sysctls the kernel keeps per namespace, by the namespace that owns them (runc's list).
# Exact names first, then prefixes; anything else is global to the host.
SYSCTL_EXACT = {
    "kernel.sem": "ipc",
    "kernel.hostname": "uts",
    "kernel.domainname": "uts",
}
SYSCTL_PREFIXES = (
    ("kernel.shm", "ipc"),
    ("kernel.msg", "ipc"),
    ("kernel.sem_", "ipc"),
    ("fs.mqueue.", "ipc"),
    ("net.", "network"),
)


def sysctl_namespace(name: str) -> str | None:
    """The namespace type that owns sysctl ``name`` (``/`` or ``.`` separated), or None."""
    name = name.replace("/", ".")
    if name in SYSCTL_EXACT:
        return SYSCTL_EXACT[name]
    for prefix, ns in SYSCTL_PREFIXES:
        if name.startswith(prefix):
            return ns
    return None
