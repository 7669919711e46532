"""kago's default seccomp profile: docker's default.json (moby profiles/seccomp), as data.

``default_profile(capabilities)`` returns a runtime-spec ``linux.seccomp`` object, made the way
docker makes one for a container: an allow-list with everything else failing with EPERM, the
entries for the host's architecture, and the capability-conditional groups resolved against
the container's bounding set (a container given CAP_SYS_ADMIN may mount, one given
CAP_SYS_PTRACE may ptrace, ...). The result can go straight into config.json.

One deliberate difference from docker: docker allows ``ptrace``, ``process_vm_readv`` and
``process_vm_writev`` to every container on kernels >= 4.8 (its "minKernel" group); here, as
in podman's profile, they need CAP_SYS_PTRACE. Everything else is docker's, entry for entry
(kept in docker's order, so the two are easy to compare).

Data only, built on each call; imports nothing (it may be used on kago-oci's start path).
"""

# docker's default capabilities (moby oci/caps/defaults.go): what ``capabilities=None`` means
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

EPERM = 1
ENOSYS = 38

# the unconditional allow-list
ALLOWED = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
)

# clone without any of CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
CLONE_NAMESPACE_FLAGS = 0x7E020000  # 2114060288

# docker's conditional entries, in its order. Keys: names, action (default ALLOW), args,
# errnoRet, arches / caps (included only when the host arch is one of them / the container
# has all of these caps), not_arches / not_caps (left out when it is one / has any of them).
CONDITIONAL = (
    {"names": ("socket",), "args": ((0, 40, 0, "SCMP_CMP_NE"),)},  # no AF_VSOCK
    *({"names": ("personality",), "args": ((0, persona, 0, "SCMP_CMP_EQ"),)}
      # PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (a query)
      for persona in (0, 8, 131072, 131080, 4294967295)),
    {"names": ("sync_file_range2", "swapcontext"), "arches": ("ppc64le",)},
    {"names": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
               "cacheflush", "set_tls"), "arches": ("arm", "arm64")},
    {"names": ("arch_prctl",), "arches": ("amd64", "x32")},
    {"names": ("modify_ldt",), "arches": ("amd64", "x32", "x86")},
    {"names": ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
     "arches": ("s390", "s390x")},
    {"names": ("riscv_flush_icache",), "arches": ("riscv64",)},
    {"names": ("open_by_handle_at",), "caps": ("CAP_DAC_READ_SEARCH",)},
    {"names": ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
               "fspick", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
               "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
               "setns", "syslog", "umount", "umount2", "unshare"),
     "caps": ("CAP_SYS_ADMIN",)},
    {"names": ("clone",), "args": ((0, CLONE_NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),
     "not_caps": ("CAP_SYS_ADMIN",), "not_arches": ("s390", "s390x")},
    {"names": ("clone",), "args": ((1, CLONE_NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),),
     "arches": ("s390", "s390x"), "not_caps": ("CAP_SYS_ADMIN",),
     "comment": "s390 parameter ordering for clone is different"},
    # glibc falls back to clone when clone3 says ENOSYS; clone's flags can be checked,
    # clone3's (in memory) cannot
    {"names": ("clone3",), "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
     "not_caps": ("CAP_SYS_ADMIN",)},
    {"names": ("reboot",), "caps": ("CAP_SYS_BOOT",)},
    {"names": ("chroot",), "caps": ("CAP_SYS_CHROOT",)},
    {"names": ("delete_module", "init_module", "finit_module"), "caps": ("CAP_SYS_MODULE",)},
    {"names": ("acct",), "caps": ("CAP_SYS_PACCT",)},
    {"names": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
               "process_vm_writev", "ptrace"), "caps": ("CAP_SYS_PTRACE",)},
    {"names": ("iopl", "ioperm"), "caps": ("CAP_SYS_RAWIO",)},
    {"names": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
     "caps": ("CAP_SYS_TIME",)},
    {"names": ("vhangup",), "caps": ("CAP_SYS_TTY_CONFIG",)},
    {"names": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
     "caps": ("CAP_SYS_NICE",)},
    {"names": ("syslog",), "caps": ("CAP_SYSLOG",)},
    {"names": ("bpf",), "caps": ("CAP_BPF",)},
    {"names": ("perf_event_open",), "caps": ("CAP_PERFMON",)},
)

# docker's archMap: the host's architecture and the ones its kernel also runs
ARCH_MAP = {
    "SCMP_ARCH_X86_64": ("SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "SCMP_ARCH_AARCH64": ("SCMP_ARCH_ARM",),
    "SCMP_ARCH_MIPS64": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "SCMP_ARCH_MIPS64N32": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "SCMP_ARCH_MIPSEL64": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "SCMP_ARCH_MIPSEL64N32": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "SCMP_ARCH_S390X": ("SCMP_ARCH_S390",),
    "SCMP_ARCH_RISCV64": (),
}

# uname -m -> (docker's GOARCH-style name used by "arches", the SCMP_ARCH_ of the host)
MACHINES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "i686": ("x86", "SCMP_ARCH_X86"),
    "i386": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
}


def host_machine():
    import os
    return os.uname().machine


def default_profile(capabilities=None, machine=None):
    """The ``linux.seccomp`` object for a container with these capabilities.

    ``capabilities``: the container's bounding set (names); None means docker's default set
    (``DEFAULT_CAPABILITIES``). ``machine``: ``uname -m`` of the host, by default this one.
    """
    caps = set(DEFAULT_CAPABILITIES if capabilities is None else capabilities)
    goarch, native = MACHINES.get(machine or host_machine(), (None, None))
    arches = [native, *ARCH_MAP.get(native, ())] if native else []
    syscalls = [{"names": list(ALLOWED), "action": "SCMP_ACT_ALLOW"}]
    for entry in CONDITIONAL:
        if not _applies(entry, caps, goarch):
            continue
        rule = {"names": list(entry["names"]), "action": entry.get("action", "SCMP_ACT_ALLOW")}
        if "args" in entry:
            rule["args"] = [{"index": i, "value": v, "valueTwo": v2, "op": op}
                            for i, v, v2, op in entry["args"]]
        if "errnoRet" in entry:
            rule["errnoRet"] = entry["errnoRet"]
        syscalls.append(rule)
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM}
    if arches:
        profile["architectures"] = arches
    profile["syscalls"] = syscalls
    return profile


def _applies(entry, caps, goarch):
    if "arches" in entry and goarch not in entry["arches"]:
        return False
    if goarch in entry.get("not_arches", ()):
        return False
    if not all(c in caps for c in entry.get("caps", ())):
        return False
    return not any(c in caps for c in entry.get("not_caps", ()))
