"""`kago-oci features` says what seccomp support this host really has, as runc says it."""

import os

from kago.kernel import libseccomp as S
from kago.plan.features import features, seccomp_features


def test_seccomp_block_is_runcs():
    sc = features()["linux"]["seccomp"]
    assert sc["enabled"] is True
    assert sc["actions"] == ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                             "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                             "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
    assert sc["operators"] == ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                               "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"]
    assert sc["knownFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                "SECCOMP_FILTER_FLAG_LOG"]


def test_archs_are_those_libseccomp_resolves():
    archs = seccomp_features()["archs"]
    assert archs == sorted(archs)
    # runc 1.1's list (libseccomp 2.5 knows them all), plus what 2.5 adds
    for name in ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                 "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
                 "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
                 "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32",
                 "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"):
        assert name in archs
    assert set(archs) <= set(S.ARCHES)


def test_supported_flags_are_asked_of_the_kernel():
    # Linux >= 4.17 knows all three; this host runs a far newer kernel
    assert seccomp_features()["supportedFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC",
                                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                                    "SECCOMP_FILTER_FLAG_LOG"]
    nr = S.resolve_syscall("seccomp")
    assert not S.flag_supported(1 << 20, nr)  # no such flag: EINVAL, not EFAULT


def test_asking_installs_nothing():
    seccomp_features()
    with open(f"/proc/{os.getpid()}/status") as f:
        assert "Seccomp:\t0" in f.read()


def test_without_libseccomp_the_block_says_disabled(monkeypatch):
    monkeypatch.setattr(S, "available", lambda: False)
    assert seccomp_features() == {"enabled": False}
