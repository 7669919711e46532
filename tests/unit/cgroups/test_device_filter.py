"""The v2 device filter, pure: runc's emulation of the rule list, the program compiled from it
(compared with runc's devicefilter_test.go listings), and what the program decides, run here by
a small interpreter of the instructions it uses (the kernel runs the same bytes in
tests/integration/test_device_filter_kernel.py)."""

import pytest

from kago.errors import SpecError
from kago.linux.cgroups import bpf_asm as A
from kago.linux.cgroups import device_filter as F
from kago.linux.cgroups.resources import DEVICE_FILTER, UNIFIED, plan_writes

BLOCK, CHAR = 1, 2
R, W, M = 2, 4, 1


def planned(rules):
    """The rule text plan_writes makes for a v2 host."""
    writes = plan_writes({"devices": rules}, "v2", set())
    assert [(w[0], w[1]) for w in writes] == [(UNIFIED, DEVICE_FILTER)]
    return writes[0][2]


def rule(allow, kind=None, major=None, minor=None, access="rwm"):
    r = {"allow": allow, "access": access}
    for key, value in (("type", kind), ("major", major), ("minor", minor)):
        if value is not None:
            r[key] = value
    return r


def run(code, kind, access, major, minor):
    """Interpret the program on one bpf_cgroup_dev_ctx; -> r0 (1 allow, 0 deny)."""
    ctx = [kind | (access << 16), major, minor]
    regs = [0] * 11
    pc = 0
    for _ in range(4096):
        op, regbyte = code[pc * 8], code[pc * 8 + 1]
        dst, src = regbyte & 0xF, regbyte >> 4
        off = int.from_bytes(code[pc * 8 + 2:pc * 8 + 4], "little", signed=True)
        imm = int.from_bytes(code[pc * 8 + 4:pc * 8 + 8], "little", signed=True)
        pc += 1
        if op == 0x61:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = ctx[off // 4]
        elif op == 0x54:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif op == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == 0xB4:
            regs[dst] = imm & 0xFFFFFFFF
        elif op == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif op == 0x55:
            if regs[dst] != imm & 0xFFFFFFFFFFFFFFFF:
                pc += off
        elif op == 0x5D:
            if regs[dst] != regs[src]:
                pc += off
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("no exit")


def decide(rules, kind, access, major, minor):
    return run(F.compile_filter(planned(rules)), kind, access, major, minor)


def _listing(text):
    """A listing without comments and blank lines, each line stripped (runc's hash())."""
    return "\n".join(line.strip() for line in text.splitlines()
                     if line.strip() and not line.strip().startswith("//"))


# --- runc's devicefilter_test.go expectations --------------------------------------------------

PROLOGUE = """
0: LdXMemW dst: r2 src: r1 off: 0 imm: 0
1: AndImm32 dst: r2 imm: 65535
2: LdXMemW dst: r3 src: r1 off: 0 imm: 0
3: RShImm32 dst: r3 imm: 16
4: LdXMemW dst: r4 src: r1 off: 4 imm: 0
5: LdXMemW dst: r5 src: r1 off: 8 imm: 0
"""

RUNC_NIL = PROLOGUE + """
block-0:
6: MovImm32 dst: r0 imm: 0
7: Exit
"""

RUNC_PRIVILEGED = PROLOGUE + """
block-0:
6: MovImm32 dst: r0 imm: 1
7: Exit
"""

RUNC_PRIVILEGED_EXCEPT_SINGLE = PROLOGUE + """
block-0:
6: JNEImm dst: r2 off: -1 imm: 1 <block-1>
7: JNEImm dst: r4 off: -1 imm: 8 <block-1>
8: JNEImm dst: r5 off: -1 imm: 0 <block-1>
9: MovImm32 dst: r0 imm: 0
10: Exit
block-1:
11: MovImm32 dst: r0 imm: 1
12: Exit
"""

RUNC_WEIRD = RUNC_PRIVILEGED_EXCEPT_SINGLE.replace("imm: 0 <block-1>", "imm: 2 <block-1>")


def _allowed_block(n, kind, major, minor, first):
    lines = [f"block-{n}:", f"{first}: JNEImm dst: r2 off: -1 imm: {kind} <block-{n + 1}>"]
    i = first + 1
    for reg, value in ((4, major), (5, minor)):
        if value is not None:
            lines.append(f"{i}: JNEImm dst: r{reg} off: -1 imm: {value} <block-{n + 1}>")
            i += 1
    return lines + [f"{i}: MovImm32 dst: r0 imm: 1", f"{i + 1}: Exit"], i + 2


def _runc_builtin():
    lines = [PROLOGUE.strip()]
    i = 6
    for n, kind in enumerate((1, 2)):  # b *:* m, c *:* m
        lines += [f"block-{n}:", f"{i}: JNEImm dst: r2 off: -1 imm: {kind} <block-{n + 1}>",
                  f"{i + 1}: MovReg32 dst: r1 src: r3", f"{i + 2}: AndImm32 dst: r1 imm: 1",
                  f"{i + 3}: JNEReg dst: r1 off: -1 src: r3 <block-{n + 1}>",
                  f"{i + 4}: MovImm32 dst: r0 imm: 1", f"{i + 5}: Exit"]
        i += 6
    for n, (major, minor) in enumerate(((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2),
                                        (10, 200), (136, None)), start=2):
        block, i = _allowed_block(n, 2, major, minor, i)
        lines += block
    return "\n".join(lines + ["block-11:", f"{i}: MovImm32 dst: r0 imm: 0", f"{i + 1}: Exit"])


# runc's specconv.AllowedDevices (kago.plan.build.DEFAULT_DEVICE_RULES), in runc's order
BUILTIN = [rule(True, "c", access="m"), rule(True, "b", access="m"),
           rule(True, "c", 1, 3), rule(True, "c", 1, 8), rule(True, "c", 1, 7),
           rule(True, "c", 5, 0), rule(True, "c", 1, 5), rule(True, "c", 1, 9),
           rule(True, "c", 136), rule(True, "c", 5, 2), rule(True, "c", 10, 200)]


@pytest.mark.parametrize("rules, expected", [
    ([], RUNC_NIL),
    ([rule(True, "a")], RUNC_PRIVILEGED),
    ([rule(True, "a"), rule(False, "b", 8, 0)], RUNC_PRIVILEGED_EXCEPT_SINGLE),
    ([rule(False, "b", 8, 1), rule(True, "a"), rule(False, "b", 8, 2)], RUNC_WEIRD),
    (BUILTIN, _runc_builtin()),
], ids=["nil", "privileged", "privileged-except-single", "weird", "builtin-allow-list"])
def test_listing_is_runcs(rules, expected):
    text = planned(rules) if rules else "deny a"
    assert F.listing(text) == _listing(expected)


def test_runcs_builtin_listing_has_64_instructions():
    assert len(F.compile_filter(planned(BUILTIN))) == 64 * A.INSN_SIZE


# --- the emulated list ------------------------------------------------------------------------

def test_plan_is_the_default_then_sorted_exceptions():
    assert planned(BUILTIN).splitlines() == [
        "deny a", "allow b *:* m", "allow c *:* m", "allow c 1:3 rwm", "allow c 1:5 rwm",
        "allow c 1:7 rwm", "allow c 1:8 rwm", "allow c 1:9 rwm", "allow c 5:0 rwm",
        "allow c 5:2 rwm", "allow c 10:200 rwm", "allow c 136:* rwm"]


def test_a_leading_deny_all_changes_nothing():
    assert planned([rule(False)] + BUILTIN) == planned(BUILTIN)


def test_access_of_the_same_device_merges_and_is_taken_away():
    assert planned([rule(True, "c", 1, 3, "r"), rule(True, "c", 1, 3, "mw")]) == \
        "deny a\nallow c 1:3 rwm"
    assert planned([rule(True, "c", 1, 3), rule(False, "c", 1, 3, "w")]) == \
        "deny a\nallow c 1:3 rm"
    assert planned([rule(True, "c", 1, 3), rule(False, "c", 1, 3)]) == "deny a"


def test_allow_all_resets_and_denies_become_the_exceptions():
    assert planned([rule(True, "c", 1, 3), rule(True, "a")]) == "allow a"
    assert planned([rule(True, "a"), rule(False, "c", 1, 5, "rw")]) == "allow a\ndeny c 1:5 rw"
    assert planned([rule(True, "a"), rule(False, "c", 1, 5), rule(True, "c", 1, 5)]) == \
        "allow a"


def test_type_a_means_every_device_whatever_its_access_or_numbers():
    assert planned([rule(True, "a", 1, 3, "r")]) == "allow a"
    assert planned([rule(True, "a"), rule(False, "a", access="m")]) == "deny a"


@pytest.mark.parametrize("rules, field", [
    ([rule(True, "c"), rule(False, "c", 1, 3)], "linux.resources.devices[1]"),
    ([rule(True, "c", 1), rule(False, "c", 1, 3, "r")], "linux.resources.devices[1]"),
    ([rule(True, "c", None, 3), rule(True, "b"), rule(False, "c", 1, 3, "m")],
     "linux.resources.devices[2]"),
    ([rule(True, "a"), rule(False, "b"), rule(True, "b", 8, 0, "w")],
     "linux.resources.devices[2]"),
])
def test_a_hole_in_a_wildcard_rule_is_an_error_naming_the_rule(rules, field):
    with pytest.raises(SpecError) as info:
        planned(rules)
    assert info.value.field == field
    assert "cannot punch a hole in a wildcard rule" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_hole_outside_the_wildcards_access_is_fine():
    assert planned([rule(True, "c", access="m"), rule(False, "c", 1, 3, "rw")]) == \
        "deny a\nallow c *:* m"


@pytest.mark.parametrize("bad, field", [
    ({"allow": "yes"}, "linux.resources.devices[0].allow"),
    ({"allow": True, "type": "p"}, "linux.resources.devices[0].type"),
    ({"allow": True, "access": "rx"}, "linux.resources.devices[0].access"),
    ({"allow": True, "access": "rr"}, "linux.resources.devices[0].access"),
    ({"allow": True, "type": "c", "major": -2}, "linux.resources.devices[0].major"),
    ({"allow": True, "type": "c", "minor": 1 << 32}, "linux.resources.devices[0].minor"),
    ("c 1:3 rwm", "linux.resources.devices[0]"),
])
def test_bad_rules_are_spec_errors_naming_the_field(bad, field):
    with pytest.raises(SpecError) as info:
        plan_writes({"devices": [bad]}, "v2", set())
    assert info.value.field == field


def test_hybrid_without_a_v1_devices_controller_uses_the_filter():
    writes = plan_writes({"devices": [rule(False)]}, "hybrid", {"v1": {"memory"}, UNIFIED: set()})
    assert [tuple(w) for w in writes] == [(UNIFIED, DEVICE_FILTER, "deny a")]
    writes = plan_writes({"devices": [rule(False)]}, "hybrid", {"v1": {"devices"}, UNIFIED: set()})
    assert [tuple(w) for w in writes] == [("devices", "devices.deny", "a")]


def test_the_filter_needs_no_controller_and_raw_devices_keys_stay_refused():
    from kago.linux.cgroups.resources import controllers_needed
    assert controllers_needed(plan_writes({"devices": [rule(False)], "pids": {"limit": 5}}, "v2",
                                          {"pids"})) == ["pids"]
    with pytest.raises(SpecError, match="the devices controller is not available"):
        plan_writes({"unified": {"devices.allow": "a"}}, "v2", {"pids"})


# --- what the program decides -----------------------------------------------------------------

def test_default_deny():
    for kind in (BLOCK, CHAR):
        for access in (R, W, M, R | W | M):
            assert decide([rule(False)], kind, access, 1, 3) == 0


def test_the_allow_all_shortcut_allows_everything():
    assert planned([rule(True, "a")]) == "allow a"
    assert len(F.compile_filter("allow a")) == 8 * A.INSN_SIZE
    assert decide([rule(True, "a")], BLOCK, R | W | M, 8, 0) == 1


def test_later_rules_override_earlier_ones():
    rules = [rule(True, "c", 1, 3), rule(False, "c", 1, 3, "w")]
    assert decide(rules, CHAR, R, 1, 3) == 1
    assert decide(rules, CHAR, W, 1, 3) == 0
    assert decide(rules, CHAR, R | W, 1, 3) == 0  # asks for more than is left
    rules = [rule(True, "a"), rule(False, "c", 1, 5)]
    assert decide(rules, CHAR, R, 1, 5) == 0
    assert decide(rules + [rule(True, "c", 1, 5)], CHAR, R, 1, 5) == 1
    assert decide(rules + [rule(False, "a")], CHAR, R, 1, 3) == 0


def test_type_and_wildcard_numbers():
    rules = [rule(True, "c", 136), rule(True, "b", None, 0, "r")]
    assert decide(rules, CHAR, R | W, 136, 7) == 1
    assert decide(rules, BLOCK, R | W, 136, 7) == 0  # a char rule does not match a block device
    assert decide(rules, BLOCK, R, 8, 0) == 1
    assert decide(rules, BLOCK, R, 8, 1) == 0
    assert decide(rules, CHAR, R, 8, 0) == 0


def test_access_subsets():
    rules = [rule(True, "c", 1, 3, "rw"), rule(True, "c", None, None, "m")]
    assert decide(rules, CHAR, R, 1, 3) == 1
    assert decide(rules, CHAR, W, 1, 3) == 1
    assert decide(rules, CHAR, R | W, 1, 3) == 1
    assert decide(rules, CHAR, M, 1, 3) == 1  # from c *:* m
    assert decide(rules, CHAR, M, 4, 4) == 1
    assert decide(rules, CHAR, R, 4, 4) == 0
    assert decide(rules, BLOCK, M, 4, 4) == 0


def test_numbers_no_device_can_have_never_match():
    text = planned([rule(True, "c", 0xFFFFFFFF, 0x80000000)])
    assert decide([rule(True, "c", 0xFFFFFFFF, 0x80000000)], CHAR, R, 0xFFF, 0xFFFFF) == 0
    assert "imm: -1" in F.listing(text)


def test_the_builtin_list_allows_the_default_nodes_only():
    for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2), (10, 200),
                         (136, 0), (136, 99)):
        assert decide(BUILTIN, CHAR, R | W, major, minor) == 1
    assert decide(BUILTIN, CHAR, R, 1, 1) == 0  # /dev/mem
    assert decide(BUILTIN, BLOCK, R, 8, 0) == 0
    assert decide(BUILTIN, BLOCK, M, 8, 0) == 1


def test_programs_are_cached_by_rule_text():
    text = planned(BUILTIN)
    assert F.compile_filter(text) is F.compile_filter(text)


@pytest.mark.parametrize("text", ["", "allow c 1:3 rwm", "deny a\ndeny c 1:3 rwm",
                                  "deny a\nallow x 1:3 rwm", "deny a\nallow c 1:3 rwx",
                                  "deny a\nallow c 1-3 rwm", "deny a\nallow c 1:99999999999 r"])
def test_text_the_planner_cannot_make_is_refused(text):
    with pytest.raises(ValueError, match="device filter"):
        F.compile_filter(text)


def test_may_skip_only_lists_that_allow_everything_they_name():
    assert F.only_full_allows("allow a")
    assert F.only_full_allows("deny a\nallow c 1:3 rwm")
    assert not F.only_full_allows("deny a\nallow c 1:3 rw")
    assert not F.only_full_allows("allow a\ndeny c 1:3 rwm")


# --- the assembler ----------------------------------------------------------------------------

def test_encoding_of_each_instruction():
    assert A.assemble([A.load_word(2, 1, 4)]) == bytes.fromhex("6112040000000000")
    assert A.assemble([A.and_imm32(2, 0xFFFF)]) == bytes((0x54, 0x02, 0, 0, 0xFF, 0xFF, 0, 0))
    assert A.assemble([A.rsh_imm32(3, 16)]) == bytes((0x74, 3, 0, 0, 16, 0, 0, 0))
    assert A.assemble([A.mov_imm32(0, 1)]) == bytes((0xB4, 0, 0, 0, 1, 0, 0, 0))
    assert A.assemble([A.mov_reg32(1, 3)]) == bytes((0xBC, 0x31, 0, 0, 0, 0, 0, 0))
    assert A.assemble([A.exit_()]) == bytes((0x95, 0, 0, 0, 0, 0, 0, 0))


def test_jumps_are_relative_to_the_next_instruction():
    code = A.assemble([A.jne_imm(2, 1, "end"), A.jne_reg(1, 3, "end"), A.mov_imm32(0, 1),
                       A.label("end"), A.exit_()])
    assert code[:8] == bytes((0x55, 0x02, 2, 0, 1, 0, 0, 0))
    assert code[8:16] == bytes((0x5D, 0x31, 1, 0, 0, 0, 0, 0))


@pytest.mark.parametrize("items, message", [
    ([A.jne_imm(2, 1, "nowhere"), A.exit_()], "no label nowhere"),
    ([A.label("x"), A.jne_imm(2, 1, "x"), A.exit_()], "loops are refused"),
    ([A.label("x"), A.label("x"), A.exit_()], "defined twice"),
])
def test_assembler_errors(items, message):
    with pytest.raises(ValueError, match=message):
        A.assemble(items)


def test_bad_operands_are_refused():
    with pytest.raises(ValueError, match="no register r11"):
        A.mov_imm32(11, 0)
    with pytest.raises(ValueError, match="does not fit 32 bits"):
        A.mov_imm32(0, 1 << 32)
