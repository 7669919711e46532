"""The seccomp profile of the OCI runtime-tools validation suite, as its generator writes it.

A copy of ``DefaultProfile`` in runtime-tools' generate/seccomp/seccomp_default.go (commit
260e151) for amd64 and the given capabilities: an allow list with SCMP_ACT_ERRNO (EPERM) as the
default action. It lists neither close_range nor clone3, so a runtime that needs either after
loading the filter fails every validation test that sets noNewPrivileges false.
"""

ALLOWED = """
accept accept4 access alarm bind brk capget capset chdir chmod chown chown32 clock_getres
clock_gettime clock_nanosleep close connect copy_file_range creat dup dup2 dup3 epoll_create
epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_wait epoll_wait_old eventfd eventfd2
execve execveat exit exit_group faccessat fadvise64 fadvise64_64 fallocate fanotify_mark fchdir
fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
futex futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr
inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
io_getevents ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen
listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise memfd_create
mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr
mq_notify mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv msgsnd
msync munlock munlockall munmap nanosleep newfstatat _newselect open openat pause pipe pipe2
poll ppoll prctl pread64 preadv prlimit64 pselect6 pwrite64 pwritev read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat
renameat2 restart_syscall rmdir rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo sched_getaffinity sched_getattr
sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_setaffinity sched_setattr sched_setparam sched_setscheduler
sched_yield seccomp select semctl semget semop semtimedop send sendfile sendfile64 sendmmsg
sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32
setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4
sigreturn socket socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
symlinkat sync sync_file_range syncfs sysinfo syslog tee tgkill time timer_create timer_delete
timerfd_create timerfd_gettime timerfd_settime timer_getoverrun timer_gettime timer_settime
times tkill truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat utimes
vfork vmsplice wait4 waitid waitpid write writev
""".split()

# what each capability adds (the generator's switch), a few of them
_BY_CAP = {
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
    "CAP_SYS_ADMIN": ["bpf", "clone", "fanotify_init", "lookup_dcookie", "mount",
                      "name_to_handle_at", "perf_event_open", "setdomainname", "sethostname",
                      "setns", "umount", "umount2", "unshare"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_PTRACE": ["kcmp", "process_vm_readv", "process_vm_writev", "ptrace"],
}

_CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP


def _allow(*names, args=None):
    return {"names": list(names), "action": "SCMP_ACT_ALLOW", "args": args or []}


def profile(caps=()):
    syscalls = [_allow(*ALLOWED)]
    syscalls += [_allow("personality", args=[{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}])
                 for v in (0x0, 0x0008, 0xFFFFFFFF)]
    for cap in sorted(set(caps)):
        if cap in _BY_CAP:
            syscalls.append(_allow(*_BY_CAP[cap]))
    if "CAP_SYS_ADMIN" not in caps:
        syscalls.append(_allow("clone", args=[{"index": 0, "value": _CLONE_NS_FLAGS,
                                               "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]))
    syscalls += [_allow("arch_prctl"), _allow("modify_ldt")]
    return {"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": syscalls}
