"""linux.seccomp validation: every bad value is a SpecError naming its JSON path."""

import pytest

from kago.errors import SpecError
from kago.oci.defaults import default_spec
from kago.oci.seccomp_profile import default_profile
from kago.plan.validate import check_seccomp, validate


def section(**kw):
    sec = {"defaultAction": "SCMP_ACT_ERRNO",
           "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
    sec.update(kw)
    return sec


def error_of(sec):
    with pytest.raises(SpecError) as e:
        check_seccomp(sec)
    return e.value


def test_a_good_section_passes_without_warnings():
    assert check_seccomp(section()) == []
    assert check_seccomp({"defaultAction": "SCMP_ACT_ALLOW"}) == []


def test_the_default_profile_is_valid_for_any_capability_set():
    assert check_seccomp(default_profile()) == []
    assert check_seccomp(default_profile(["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"])) == []
    assert check_seccomp(default_profile([])) == []


def test_validate_checks_the_section_of_a_whole_config():
    cfg = default_spec(seccomp=True)
    assert validate(cfg) == []
    cfg["linux"]["seccomp"]["syscalls"][3]["action"] = "SCMP_ACT_FOO"
    with pytest.raises(SpecError) as e:
        validate(cfg)
    assert str(e.value) == 'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"'


@pytest.mark.parametrize("sec, field, text", [
    ({}, "linux.seccomp.defaultAction", "is required"),
    ({"defaultAction": 3}, "linux.seccomp.defaultAction", "must be a string"),
    ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction",
     'unknown action "SCMP_ACT_NOPE"'),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction",
     "SCMP_ACT_NOTIFY cannot be the default action"),
    (section(defaultErrnoRet=-1), "linux.seccomp.defaultErrnoRet", "between 0 and 65535"),
    (section(defaultErrnoRet="1"), "linux.seccomp.defaultErrnoRet", "must be an integer"),
    (section(architectures="SCMP_ARCH_X86"), "linux.seccomp.architectures", "must be an array"),
    (section(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]),
     "linux.seccomp.architectures[1]", 'unknown architecture "SCMP_ARCH_VAX"'),
    (section(flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_BOGUS"]),
     "linux.seccomp.flags[1]", 'unknown seccomp filter flag "SECCOMP_FILTER_FLAG_BOGUS"'),
    (section(listenerPath="relative.sock"), "linux.seccomp.listenerPath",
     "must be an absolute path"),
    (section(listenerMetadata=1), "linux.seccomp.listenerMetadata", "must be a string"),
    (section(syscalls={}), "linux.seccomp.syscalls", "must be an array"),
    (section(syscalls=["read"]), "linux.seccomp.syscalls[0]", "must be an object"),
    (section(syscalls=[{"action": "SCMP_ACT_ALLOW"}]), "linux.seccomp.syscalls[0].names",
     "is required"),
    (section(syscalls=[{"names": ["read"]}]), "linux.seccomp.syscalls[0].action",
     "is required"),
    (section(syscalls=[{"names": [], "action": "SCMP_ACT_ALLOW"}]),
     "linux.seccomp.syscalls[0].names", "at least one"),
    (section(syscalls=[{"names": ["read", ""], "action": "SCMP_ACT_ALLOW"}]),
     "linux.seccomp.syscalls[0].names[1]", "empty string is not a valid syscall"),
    (section(syscalls=[{"names": [7], "action": "SCMP_ACT_ALLOW"}]),
     "linux.seccomp.syscalls[0].names[0]", "must be a string"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]),
     "linux.seccomp.syscalls[1].errnoRet", "between 0 and 65535"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": {}}]),
     "linux.seccomp.syscalls[0].args", "must be an array"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].index", "is required"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].value", "is required"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1}]}]),
     "linux.seccomp.syscalls[0].args[0].op", "is required"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].index", "6 arguments (0 to 5), got 6"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].value", "between 0 and"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "valueTwo": 2**64,
                                  "op": "SCMP_CMP_EQ"}]}]),
     "linux.seccomp.syscalls[0].args[0].valueTwo", "between 0 and"),
    (section(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]),
     "linux.seccomp.syscalls[1].args[0].op", 'unknown operator "SCMP_CMP_ALMOST"'),
    (section(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]),
     "linux.seccomp.listenerPath", "is required: linux.seccomp.syscalls[0] uses SCMP_ACT_NOTIFY"),
    (section(listenerPath="/run/agent.sock",
             syscalls=[{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]),
     "linux.seccomp.syscalls[0].names[1]", 'SCMP_ACT_NOTIFY cannot be used for "write"'),
])
def test_bad_values_name_their_field(sec, field, text):
    err = error_of(sec)
    assert err.field == field
    assert text in str(err)
    assert str(err).startswith(field + ": ")


def test_the_error_for_an_unknown_action_reads_like_runc():
    sec = section(syscalls=[{"names": ["a"], "action": "SCMP_ACT_ALLOW"}] * 3
                  + [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}])
    assert str(error_of(sec)) == 'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"'


def test_every_documented_action_operator_arch_and_flag_is_accepted():
    from kago.kernel import libseccomp as S
    for action in S.ACTIONS:
        if action != "SCMP_ACT_NOTIFY":
            check_seccomp({"defaultAction": action})
        check_seccomp(section(listenerPath="/a.sock",
                              syscalls=[{"names": ["mkdir"], "action": action}]))
    for op in ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE",
               "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ"):
        check_seccomp(section(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
                                         "args": [{"index": 0, "value": 1, "op": op}]}]))
    check_seccomp(section(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                                         "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM",
                                         "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"]))
    check_seccomp(section(flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                 "SECCOMP_FILTER_FLAG_LOG"]))


def test_unknown_syscall_names_are_not_an_error():
    """runc skips a name this architecture lacks; so does kago (when compiling)."""
    assert check_seccomp(section(syscalls=[{"names": ["no_such_call_anywhere"],
                                            "action": "SCMP_ACT_ALLOW"}])) == []


def test_errno_ret_with_an_action_that_returns_nothing_is_a_warning():
    warnings = check_seccomp(section(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_KILL",
                                                "errnoRet": 1}]))
    assert warnings == [("linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and "
                         "SCMP_ACT_TRACE return a value; ignored with SCMP_ACT_KILL")]
    warnings = check_seccomp({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5})
    assert warnings[0].startswith("linux.seccomp.defaultErrnoRet:")
