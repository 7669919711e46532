"""Spec -> SeccompPlan (runc's reading of a profile) -> BPF with libseccomp, and the cache."""

import errno
import os

import pytest
import seccomp_bpf as B

from kago.errors import SpecError
from kago.kernel import libseccomp as S
from kago.linux import seccomp
from kago.plan import build

x86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 numbers")


def plan(**kw):
    sec = {"defaultAction": "SCMP_ACT_ALLOW"}
    sec.update(kw)
    return build.seccomp(sec)


def compiled(**kw):
    return seccomp.compile(plan(**kw))


# ---------------------------------------------------------------- the plan

def test_actions_carry_their_errno_as_libseccomp_wants():
    assert S.action_value("SCMP_ACT_ERRNO") == 0x00050000 | errno.EPERM  # runc's default
    assert S.action_value("SCMP_ACT_ERRNO", 28) == 0x0005001C
    assert S.action_value("SCMP_ACT_TRACE", 7) == 0x7FF00007
    assert S.action_value("SCMP_ACT_KILL") == S.action_value("SCMP_ACT_KILL_THREAD") == 0
    assert S.action_value("SCMP_ACT_KILL_PROCESS") == 0x80000000
    assert S.action_value("SCMP_ACT_ALLOW", 5) == 0x7FFF0000  # errnoRet means nothing here


def test_each_name_is_a_rule_and_args_are_anded():
    sp = plan(syscalls=[{"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                  {"index": 1, "value": 2, "valueTwo": 3,
                                   "op": "SCMP_CMP_MASKED_EQ"}]}])
    conds = ((0, 4, 1, 0), (1, 7, 2, 3))
    assert sp.rules == [("linux.seccomp.syscalls[0]", "mkdir", 0x50001, conds),
                        ("linux.seccomp.syscalls[0]", "rmdir", 0x50001, conds)]


def test_an_argument_tested_twice_makes_one_rule_per_condition_as_runc_does():
    sp = plan(syscalls=[{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                                  {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}])
    assert [r[3] for r in sp.rules] == [((0, 4, 8, 0),), ((0, 4, 9, 0),)]


def test_a_rule_with_the_default_action_is_dropped():
    sp = plan(defaultAction="SCMP_ACT_ERRNO",
              syscalls=[{"names": ["a"], "action": "SCMP_ACT_ERRNO"},
                        {"names": ["b"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2},
                        {"names": ["c"], "action": "SCMP_ACT_ALLOW"}])
    assert [r[1] for r in sp.rules] == ["b", "c"]


def test_flags_arches_and_listener():
    sp = plan(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
              flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                     "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
              listenerPath="/run/agent.sock", listenerMetadata="m",
              syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}])
    assert sp.arches == [("linux.seccomp.architectures[0]", "x86_64"),
                         ("linux.seccomp.architectures[1]", "x86")]
    assert sp.flags == 1 | 2 | 4
    assert sp.notify and sp.listener_path == "/run/agent.sock" and sp.listener_metadata == "m"
    assert not plan().notify


def test_process_gets_the_plan_only_when_the_spec_has_a_section():
    assert build.process({"args": ["sh"]}).seccomp is None
    sp = build.process({"args": ["sh"]}, (), {"defaultAction": "SCMP_ACT_ALLOW"}).seccomp
    assert sp is not None and sp.rules == [] and sp.program is None


# ---------------------------------------------------------------- compiling

@x86_64
def test_a_small_profile_compiles_to_what_it_says():
    p = compiled(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
                           {"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS"},
                           {"names": ["unlink"], "action": "SCMP_ACT_LOG"},
                           {"names": ["link"], "action": "SCMP_ACT_TRAP"},
                           {"names": ["chdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
                           {"names": ["fchdir"], "action": "SCMP_ACT_KILL"}])
    assert p.flags == 0 and p.instructions == len(p.bpf) // 8
    assert B.verdict(p.bpf, "mkdir") == ("ERRNO", 28)
    assert B.verdict(p.bpf, "rmdir") == ("KILL_PROCESS", 0)
    assert B.verdict(p.bpf, "unlink") == ("LOG", 0)
    assert B.verdict(p.bpf, "link") == ("TRAP", 0)
    assert B.verdict(p.bpf, "chdir") == ("TRACE", 5)
    assert B.verdict(p.bpf, "fchdir") == ("KILL_THREAD", 0)
    assert B.verdict(p.bpf, "getpid") == ("ALLOW", 0)
    assert B.verdict(p.bpf, "mkdir", arch=B.AUDIT_ARCH_I386) == ("KILL_THREAD", 0)  # bad arch


@x86_64
@pytest.mark.parametrize("op, value, two, allowed, denied", [
    ("SCMP_CMP_EQ", 0, 0, [0], [1, 8]),
    ("SCMP_CMP_NE", 0, 0, [1, 8], [0]),
    ("SCMP_CMP_LT", 8, 0, [0, 7], [8, 9]),
    ("SCMP_CMP_LE", 8, 0, [0, 8], [9]),
    ("SCMP_CMP_GE", 8, 0, [8, 2**40], [7]),
    ("SCMP_CMP_GT", 8, 0, [9], [8, 0]),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x20, [0x20, 0x2F, 0x120], [0x30, 0x10, 0]),
])
def test_argument_operators(op, value, two, allowed, denied):
    """personality is allowed when the condition holds (default ERRNO 1)."""
    p = seccomp.compile(build.seccomp({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": value, "valueTwo": two, "op": op}]}]}))
    for arg in allowed:
        assert B.verdict(p.bpf, "personality", (arg,)) == ("ALLOW", 0), (op, arg)
    for arg in denied:
        assert B.verdict(p.bpf, "personality", (arg,)) == ("ERRNO", 1), (op, arg)


@x86_64
def test_and_versus_or_of_conditions():
    and_ = compiled(syscalls=[{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                               "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                        {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}])
    assert B.verdict(and_.bpf, "kill", (1, 9)) == ("ERRNO", 1)
    assert B.verdict(and_.bpf, "kill", (1, 15)) == ("ALLOW", 0)
    or_ = compiled(syscalls=[{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                              "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                                       {"index": 1, "value": 19, "op": "SCMP_CMP_EQ"}]}])
    assert B.verdict(or_.bpf, "kill", (1, 9)) == ("ERRNO", 1)
    assert B.verdict(or_.bpf, "kill", (1, 19)) == ("ERRNO", 1)
    assert B.verdict(or_.bpf, "kill", (1, 15)) == ("ALLOW", 0)


@x86_64
def test_extra_architectures_are_filtered_with_their_own_numbers():
    p = compiled(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                 syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    assert B.verdict(p.bpf, "mkdir") == ("ERRNO", 1)
    assert B.verdict(p.bpf, "mkdir", arch=B.AUDIT_ARCH_I386) == ("ERRNO", 1)
    assert B.verdict_x32(p.bpf, "mkdir") == ("ERRNO", 1)
    assert B.verdict(p.bpf, "rmdir", arch=B.AUDIT_ARCH_I386) == ("ALLOW", 0)


def test_unknown_names_are_skipped_and_remembered():
    sp = plan(syscalls=[{"names": ["mkdir", "no_such_call_xyz", "other_bogus"],
                         "action": "SCMP_ACT_ERRNO"}])
    p = seccomp.compile(sp)
    assert sp.skipped == ["no_such_call_xyz", "other_bogus"]
    assert p.instructions > 0


def test_a_name_only_another_architecture_has_is_not_skipped():
    """chown32 is i386's; libseccomp knows it (a pseudo-number here) and places it right."""
    sp = plan(architectures=["SCMP_ARCH_X86"],
              syscalls=[{"names": ["chown32"], "action": "SCMP_ACT_ERRNO"}])
    p = seccomp.compile(sp)
    assert sp.skipped == []
    if os.uname().machine == "x86_64":
        assert B.verdict(p.bpf, "chown32", arch=B.AUDIT_ARCH_I386) == ("ERRNO", 1)


def test_compile_is_done_once():
    sp = plan()
    assert seccomp.compile(sp) is seccomp.compile(sp)


def test_notify_asks_the_kernel_for_a_listener():
    sp = plan(listenerPath="/a.sock", syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}])
    assert seccomp.compile(sp).flags == S.FLAG_NEW_LISTENER
    sp = plan(listenerPath="/a.sock", flags=["SECCOMP_FILTER_FLAG_TSYNC"],
              syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}])
    assert seccomp.compile(sp).flags == S.FLAG_TSYNC | S.FLAG_NEW_LISTENER | S.FLAG_TSYNC_ESRCH
    sp = plan(flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    assert seccomp.compile(sp).flags == 2 | 4


def test_an_architecture_libseccomp_cannot_resolve_names_the_field(monkeypatch):
    sp = plan(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_RISCV64"])
    real = S.resolve_arch
    monkeypatch.setattr(S, "resolve_arch", lambda name: None if name == "riscv64" else real(name))
    with pytest.raises(SpecError) as e:
        seccomp.compile(sp)
    assert e.value.field == "linux.seccomp.architectures[1]"
    assert 'does not know the architecture "riscv64"' in str(e.value)


def test_a_rule_libseccomp_refuses_names_its_entry(monkeypatch):
    sp = plan(syscalls=[{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                        {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}])
    real = S.Filter.add_rule
    monkeypatch.setattr(S.Filter, "add_rule", lambda self, action, nr, conds=():
                        -errno.EINVAL if action == 0 else real(self, action, nr, conds))
    with pytest.raises(SpecError) as e:
        seccomp.compile(sp)
    assert e.value.field == "linux.seccomp.syscalls[1]"
    assert str(e.value).endswith('libseccomp refused the rule for "mkdir": invalid argument')


@x86_64
def test_conflicting_rules_keep_libseccomps_choice_as_runc_does():
    """libseccomp keeps the first unconditional rule for a call (runc uses the same library,
    so a profile means the same thing to both)."""
    p = compiled(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                           {"names": ["mkdir"], "action": "SCMP_ACT_KILL"}])
    assert B.verdict(p.bpf, "mkdir") == ("ERRNO", 1)


def test_program_keeps_a_ready_fprog():
    p = compiled(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    assert p._fprog.len == p.instructions
    with pytest.raises(ValueError):
        S.Program(b"1234", 0, p.nr_seccomp)


def test_libseccomp_version_and_native_arch():
    assert S.version() >= (2, 5, 0)
    if os.uname().machine == "x86_64":
        assert S.native_arch() == B.AUDIT_ARCH_X86_64
        assert S.resolve_syscall("seccomp") == 317


# ---------------------------------------------------------------- the cache

def test_cache_hit_skips_libseccomp(tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    first = seccomp.compile(plan(syscalls=[{"names": ["mkdir", "nope_xyz"],
                                            "action": "SCMP_ACT_ERRNO"}]), cache)
    assert len(os.listdir(cache)) == 1
    assert os.stat(cache).st_mode & 0o777 == 0o700
    monkeypatch.setattr(seccomp, "_build", lambda sp: pytest.fail("compiled again"))
    sp = plan(syscalls=[{"names": ["mkdir", "nope_xyz"], "action": "SCMP_ACT_ERRNO"}])
    again = seccomp.compile(sp, cache)
    assert again.bpf == first.bpf and again.nr_seccomp == first.nr_seccomp
    assert sp.skipped == ["nope_xyz"]


def test_cache_keeps_different_profiles_apart(tmp_path):
    cache = str(tmp_path)
    a = seccomp.compile(plan(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]), cache)
    b = seccomp.compile(plan(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                        "errnoRet": 2}]), cache)
    c = seccomp.compile(plan(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]), cache)
    assert a.bpf != b.bpf and a.bpf == c.bpf
    assert len(os.listdir(cache)) == 2


def test_cache_file_not_private_or_corrupt_is_ignored(tmp_path, monkeypatch):
    cache = str(tmp_path)
    sec = [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    good = seccomp.compile(plan(syscalls=sec), cache).bpf
    (name,) = os.listdir(cache)
    path = os.path.join(cache, name)
    calls = []
    real = seccomp._build
    monkeypatch.setattr(seccomp, "_build", lambda sp: calls.append(1) or real(sp))
    os.chmod(path, 0o666)  # someone else could have written it
    assert seccomp.compile(plan(syscalls=sec), cache).bpf == good and len(calls) == 1
    with open(path, "wb") as f:
        f.write(b"garbage")
    os.chmod(path, 0o600)
    assert seccomp.compile(plan(syscalls=sec), cache).bpf == good and len(calls) == 2
    os.chmod(cache, 0o777)
    assert seccomp.compile(plan(syscalls=sec), cache).bpf == good and len(calls) == 3


def test_cache_entry_with_another_key_is_a_miss(tmp_path, monkeypatch):
    import marshal
    cache = str(tmp_path)
    sp = plan(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    key = seccomp._cache_key(sp)
    with open(os.path.join(cache, seccomp._cache_name(key)), "wb") as f:
        f.write(marshal.dumps((key + b"x", (b"\0" * 8, 317, ()))))
    os.chmod(os.path.join(cache, seccomp._cache_name(key)), 0o600)
    assert seccomp.compile(sp, cache).instructions > 1


def test_cache_failure_only_costs_a_compile(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    p = seccomp.compile(plan(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]),
                        str(blocker / "cache"))
    assert p.instructions > 0


def test_cache_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(seccomp, "MAX_CACHED", 3)
    cache = str(tmp_path)
    for n in range(5):
        seccomp.compile(plan(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                        "errnoRet": n + 2}]), cache)
    assert 1 <= len(os.listdir(cache)) <= 3
