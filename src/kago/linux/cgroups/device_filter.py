"""The cgroup v2 device filter: the emulated rule list -> a BPF_PROG_TYPE_CGROUP_DEVICE program.

Pure. The input is the text ``resources.devices`` plans for v2 (its docstring): the default
(``allow a`` / ``deny a``) then the exceptions, each the opposite of the default, in runc's
order. The program is runc's (libcontainer/cgroups/devices/devicefilter.go, itself from crun's
ebpf.c), so its listing can be compared with runc's tests instruction by instruction.

The kernel calls it for every open(2) of a device node and every mknod(2) of one by a task of
the cgroup, with ``struct bpf_cgroup_dev_ctx`` (include/uapi/linux/bpf.h) in r1::

    u32 access_type   device type (BPF_DEVCG_DEV_BLOCK 1, _CHAR 2) in the low 16 bits,
                      access (BPF_DEVCG_ACC_MKNOD 1, _READ 2, _WRITE 4) in the high 16
    u32 major
    u32 minor

and allows the access when it returns 1 (0: EPERM). The program loads type, access, major and
minor into r2-r5, then has one block per exception: a block jumps to the next one unless the
type matches, the access asked is within the rule's (skipped for rwm), the major matches
(skipped for a wildcard) and the minor matches (idem); if all match it returns the exception's
verdict. After the last block, it returns the default. Exceptions never overlap in verdict, so
their order does not change the result, only the instructions.
"""

from kago.linux.cgroups import bpf_asm as A

LICENSE = "Apache"  # as runc's: its filter is Apache-2.0 code; kago is Apache-2.0 as well

BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2
BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4

_TYPES = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
_ACCESS = {"r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE, "m": BPF_DEVCG_ACC_MKNOD}
_RWM = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD

_cache = {}  # rule text -> program bytes; a runtime process compiles one or two lists


def parse(text):
    """(default_allow, [(allow, type, major, minor, access)]) of a planned rule text.

    Raises ValueError for text the planner cannot have made (a bug, not a spec error).
    """
    lines = text.split("\n")
    if lines[0] not in ("allow a", "deny a"):
        raise ValueError(f"device filter: the first rule must be allow a or deny a, not "
                         f"{lines[0]!r}")
    default_allow = lines[0] == "allow a"
    rules = []
    for line in lines[1:]:
        words = line.split(" ")
        if (len(words) != 4 or words[0] not in ("allow", "deny") or words[1] not in _TYPES
                or words[2].count(":") != 1 or not words[3] or words[3].strip("rwm")):
            raise ValueError(f"device filter: bad rule {line!r}")
        allow = words[0] == "allow"
        if allow == default_allow:
            raise ValueError(f"device filter: rule {line!r} repeats the default")
        major, minor = (-1 if n == "*" else _u32(n, line) for n in words[2].split(":"))
        rules.append((allow, words[1], major, minor, words[3]))
    return default_allow, rules


def _u32(text, line):
    if not (text.isascii() and text.isdigit()) or int(text) > 0xFFFFFFFF:
        raise ValueError(f"device filter: bad device number in {line!r}")
    return int(text)


def program(text):
    """The program's items (instructions and labels, bpf_asm) for a planned rule text."""
    default_allow, rules = parse(text)
    items = [
        A.load_word(2, 1, 0), A.and_imm32(2, 0xFFFF),  # r2 = type
        A.load_word(3, 1, 0), A.rsh_imm32(3, 16),  # r3 = access
        A.load_word(4, 1, 4),  # r4 = major
        A.load_word(5, 1, 8),  # r5 = minor
    ]
    for n, (allow, kind, major, minor, access) in enumerate(rules):
        items += _block(n, allow, kind, major, minor, access)
    items += [A.label(f"block-{len(rules)}"), A.mov_imm32(0, int(default_allow)), A.exit_()]
    return items


def _block(n, allow, kind, major, minor, access):
    nxt = f"block-{n + 1}"
    items = [A.label(f"block-{n}"), A.jne_imm(2, _TYPES[kind], nxt)]
    bits = 0
    for c in access:
        bits |= _ACCESS[c]
    if bits != _RWM:  # the access asked must lie within the rule's: (r3 & bits) == r3
        items += [A.mov_reg32(1, 3), A.and_imm32(1, bits), A.jne_reg(1, 3, nxt)]
    if major != -1:
        items.append(A.jne_imm(4, major, nxt))
    if minor != -1:
        items.append(A.jne_imm(5, minor, nxt))
    return items + [A.mov_imm32(0, int(allow)), A.exit_()]


def compile_filter(text):
    """The program as BPF_PROG_LOAD's instruction bytes, cached by rule text."""
    code = _cache.get(text)
    if code is None:
        code = _cache[text] = A.assemble(program(text))
    return code


def listing(text):
    """The program in cilium/ebpf's notation (what runc's devicefilter tests compare)."""
    return A.listing(program(text))


def only_full_allows(text):
    """No deny and no partial access: runc's test for a load error it may skip
    (libcontainer/cgroups/devices/v2.go canSkipEBPFError)."""
    default_allow, rules = parse(text)
    if default_allow:
        return not rules
    return all(r[4] == "rwm" for r in rules)
