"""The default profile: docker's, as data, and what its compiled filter does.

The effect is checked on the compiled BPF itself (``seccomp_bpf`` runs the program as the
kernel would), for x86_64, i386 and x32 system calls: a profile is only as good as what it
denies on every architecture the kernel runs.
"""

import os

import pytest
import seccomp_bpf as B

from kago.linux import seccomp
from kago.oci.defaults import default_seccomp_profile, default_spec
from kago.oci.seccomp_profile import ALLOWED, DEFAULT_CAPABILITIES, default_profile
from kago.plan import build

x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 numbers")

# What docker's default denies to a container with docker's 14 default capabilities (and
# what the profile must deny), by name.
DENIED = ("mount", "umount2", "pivot_root", "unshare", "keyctl", "add_key", "request_key",
          "ptrace", "kexec_load", "kexec_file_load", "open_by_handle_at", "bpf",
          "perf_event_open", "init_module", "finit_module", "delete_module", "reboot",
          "swapon", "swapoff", "setns", "acct", "lookup_dcookie", "iopl", "ioperm",
          "clock_settime", "settimeofday", "userfaultfd", "fsopen", "fsmount", "fsconfig",
          "move_mount", "open_tree", "mount_setattr", "quotactl", "syslog", "sethostname",
          "setdomainname", "vhangup", "process_vm_readv", "process_vm_writev", "kcmp",
          "pidfd_getfd", "fanotify_init", "mbind", "set_mempolicy", "nfsservctl",
          "create_module", "get_kernel_syms", "query_module", "uselib", "sysfs", "_sysctl",
          "ustat", "vm86", "vm86old")
ALLOWED_COMMON = ("read", "write", "openat", "open", "close", "execve", "execveat", "clone",
                  "fork", "vfork", "wait4", "exit_group", "mmap", "mprotect", "brk", "futex",
                  "rt_sigaction", "getpid", "socket", "connect", "accept4", "chroot",
                  "setuid", "setgid", "capset", "prctl", "seccomp", "arch_prctl",
                  "io_uring_setup", "statx", "getdents64", "pipe2", "epoll_wait", "kill",
                  "chown", "mknod", "fchownat", "name_to_handle_at")


@pytest.fixture(scope="module")
def bpf():
    sp = build.seccomp(default_profile())
    return seccomp.compile(sp).bpf


def rules_for(profile, name):
    return [s for s in profile["syscalls"] if name in s["names"]]


# ---------------------------------------------------------------- the data

def test_shape_is_a_runtime_spec_section():
    p = default_profile(machine="x86_64")
    assert p["defaultAction"] == "SCMP_ACT_ERRNO"
    assert p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert p["syscalls"][0] == {"names": list(ALLOWED), "action": "SCMP_ACT_ALLOW"}
    assert 330 < len(ALLOWED) < 400 and len(set(ALLOWED)) == len(ALLOWED)


def test_none_means_dockers_default_capabilities():
    assert default_profile() == default_profile(DEFAULT_CAPABILITIES)
    assert len(DEFAULT_CAPABILITIES) == 14 and "CAP_SYS_ADMIN" not in DEFAULT_CAPABILITIES


def test_the_denied_calls_are_in_no_allow_rule_for_the_default_caps():
    p = default_profile()
    allowed = {n for s in p["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" and not s.get("args")
               for n in s["names"]}
    assert not allowed & set(DENIED), sorted(allowed & set(DENIED))


def test_common_calls_are_allowed():
    p = default_profile()
    allowed = {n for s in p["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" for n in s["names"]}
    assert set(ALLOWED_COMMON) - {"clone", "socket"} <= allowed


def test_clone_is_allowed_only_without_namespace_flags():
    p = default_profile()
    (clone,) = rules_for(p, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                              "op": "SCMP_CMP_MASKED_EQ"}]
    (clone3,) = rules_for(p, "clone3")
    assert clone3 == {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}


def test_cap_sys_admin_unlocks_the_admin_group_and_plain_clone():
    p = default_profile(list(DEFAULT_CAPABILITIES) + ["CAP_SYS_ADMIN"])
    admin = [s for s in p["syscalls"] if "mount" in s["names"]]
    assert len(admin) == 1 and {"unshare", "setns", "umount2", "clone", "clone3",
                                "bpf"} <= set(admin[0]["names"])
    assert not any(s.get("args") for s in rules_for(p, "clone"))  # no masked rule
    assert not rules_for(p, "clone3")[0].get("errnoRet")


@pytest.mark.parametrize("cap, names", [
    ("CAP_SYS_PTRACE", ("ptrace", "process_vm_readv", "kcmp", "pidfd_getfd")),
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_MODULE", ("init_module", "finit_module", "delete_module")),
    ("CAP_SYS_TIME", ("settimeofday", "clock_settime")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_DAC_READ_SEARCH", ("open_by_handle_at",)),
    ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)),
    ("CAP_SYSLOG", ("syslog",)),
    ("CAP_SYS_NICE", ("mbind", "set_mempolicy")),
    ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
])
def test_each_capability_group_follows_its_capability(cap, names):
    without = default_profile()
    with_cap = default_profile(list(DEFAULT_CAPABILITIES) + [cap])
    for name in names:
        assert not rules_for(without, name), name
        assert rules_for(with_cap, name)[0]["action"] == "SCMP_ACT_ALLOW", name


def test_chroot_follows_cap_sys_chroot_which_docker_grants():
    assert rules_for(default_profile(), "chroot")
    assert not rules_for(default_profile(["CAP_KILL"]), "chroot")


def test_ptrace_needs_cap_sys_ptrace_unlike_dockers_min_kernel_rule():
    """The one deliberate difference from docker (which allows ptrace on kernels >= 4.8)."""
    assert not rules_for(default_profile(), "ptrace")


def test_arch_specific_entries_follow_the_machine():
    amd = default_profile(machine="x86_64")
    arm = default_profile(machine="aarch64")
    assert rules_for(amd, "arch_prctl") and not rules_for(arm, "arch_prctl")
    assert rules_for(arm, "set_tls") and not rules_for(amd, "set_tls")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    s390 = default_profile(machine="s390x")
    (clone,) = rules_for(s390, "clone")
    assert clone["args"][0]["index"] == 1  # s390's clone takes the flags second


def test_results_are_fresh_copies():
    a = default_seccomp_profile()
    a["syscalls"][0]["names"].append("mount")
    assert "mount" not in default_seccomp_profile()["syscalls"][0]["names"]


def test_default_spec_offers_the_profile_only_when_asked():
    assert "seccomp" not in default_spec()["linux"]  # `kago-oci spec` stays runc's
    spec = default_spec(seccomp=True)
    # for the spec's own (runc's three) capabilities: no CAP_SYS_CHROOT, so no chroot
    assert spec["linux"]["seccomp"] == default_profile(["CAP_AUDIT_WRITE", "CAP_KILL",
                                                        "CAP_NET_BIND_SERVICE"])
    assert "seccomp" in default_spec(rootless=True, seccomp=True)["linux"]


# ---------------------------------------------------------------- the compiled filter

@x86_64
@pytest.mark.parametrize("name", DENIED)
def test_compiled_filter_denies_with_eperm(bpf, name):
    from kago.kernel import libseccomp as S
    nr = S.resolve_syscall_arch(B.AUDIT_ARCH_X86_64, name)
    if nr is None or nr < 0:
        pytest.skip(f"{name} does not exist on x86_64")
    assert B.verdict(bpf, name) == ("ERRNO", 1)


@x86_64
@pytest.mark.parametrize("name", ("mount", "umount2", "unshare", "setns", "ptrace", "keyctl",
                                  "kexec_load", "bpf", "reboot", "init_module"))
def test_compiled_filter_denies_the_32_bit_and_x32_calls_too(bpf, name):
    assert B.verdict(bpf, name, arch=B.AUDIT_ARCH_I386) == ("ERRNO", 1)
    assert B.verdict_x32(bpf, name) == ("ERRNO", 1)


@x86_64
@pytest.mark.parametrize("name", [n for n in ALLOWED_COMMON if n not in ("clone", "socket")])
def test_compiled_filter_allows_common_calls(bpf, name):
    assert B.verdict(bpf, name) == ("ALLOW", 0)


@x86_64
def test_compiled_clone_rules(bpf):
    fork_flags = 0x01200011  # CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD, as fork()
    thread_flags = 0x003D0F00  # what pthread_create passes
    assert B.verdict(bpf, "clone", (fork_flags,)) == ("ALLOW", 0)
    assert B.verdict(bpf, "clone", (thread_flags,)) == ("ALLOW", 0)
    for ns in (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
               0x40000000):
        assert B.verdict(bpf, "clone", (fork_flags | ns,)) == ("ERRNO", 1), hex(ns)
    assert B.verdict(bpf, "clone3") == ("ERRNO", 38)  # ENOSYS: glibc falls back to clone


@x86_64
def test_compiled_personality_and_socket_rules(bpf):
    for persona in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert B.verdict(bpf, "personality", (persona,)) == ("ALLOW", 0), persona
    assert B.verdict(bpf, "personality", (0x0040000,)) == ("ERRNO", 1)  # READ_IMPLIES_EXEC
    assert B.verdict(bpf, "socket", (2, 1, 0)) == ("ALLOW", 0)  # AF_INET
    assert B.verdict(bpf, "socket", (40, 1, 0)) == ("ERRNO", 1)  # AF_VSOCK


@x86_64
def test_with_cap_sys_admin_the_filter_allows_mount_and_namespaced_clone():
    sp = build.seccomp(default_profile(list(DEFAULT_CAPABILITIES) + ["CAP_SYS_ADMIN"]))
    bpf = seccomp.compile(sp).bpf
    assert B.verdict(bpf, "mount") == ("ALLOW", 0)
    assert B.verdict(bpf, "clone", (0x10000000 | 17,)) == ("ALLOW", 0)
    assert B.verdict(bpf, "clone3") == ("ALLOW", 0)
    assert B.verdict(bpf, "ptrace") == ("ERRNO", 1)


def test_the_default_profile_compiles_within_the_kernels_limit(bpf):
    assert 0 < len(bpf) // 8 <= seccomp.BPF_MAXINSNS


@x86_64
def test_the_binary_tree_filter_agrees_with_a_linear_one_on_every_number(bpf):
    """kago asks libseccomp for a binary-search filter (faster to load and to run); it must
    decide every system call number exactly as the plain linear filter does."""
    from kago.kernel import libseccomp as S
    sp = build.seccomp(default_profile())
    with S.Filter(sp.default_action) as f:
        for _field, arch in sp.arches:
            f.add_arch(S.resolve_arch(arch))
        for _field, name, action, conds in sp.rules:
            nr = S.resolve_syscall(name)
            if nr is not None:
                assert f.add_rule(action, nr, conds) == 0
        linear = f.export()
    assert linear != bpf
    args = [(), (0x10000000 | 17, 0, 0), (40, 1, 0), (8,), (0x40000,)]
    for arch, base in ((B.AUDIT_ARCH_X86_64, 0), (B.AUDIT_ARCH_I386, 0),
                       (B.AUDIT_ARCH_X86_64, B.X32_SYSCALL_BIT)):
        for nr in range(0, 600):
            for a in args:
                assert B.run(bpf, base + nr, arch, a) == B.run(linear, base + nr, arch, a), \
                    (hex(arch), nr, a)
