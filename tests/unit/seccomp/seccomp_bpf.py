"""A classic-BPF interpreter for seccomp programs, so tests can ask a compiled filter what it
would do with a system call, without loading it (no root, no risk to the test process).

``verdict(program_bytes, "mount")`` runs the filter on a ``struct seccomp_data`` the way the
kernel does and returns ``("ERRNO", 1)``, ``("ALLOW", 0)``, ``("KILL_PROCESS", 0)``...
The whole classic instruction set is implemented (libseccomp uses loads, ALU AND, jumps and
returns); an unknown opcode fails the test rather than guessing.
"""

import struct

from kago.kernel import libseccomp as S

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
X32_SYSCALL_BIT = 0x40000000

_ACTIONS = {0x80000000: "KILL_PROCESS", 0x00000000: "KILL_THREAD", 0x00030000: "TRAP",
            0x00050000: "ERRNO", 0x7FC00000: "NOTIFY", 0x7FF00000: "TRACE", 0x7FFC0000: "LOG",
            0x7FFF0000: "ALLOW"}
_MASK = 0xFFFFFFFF


def run(bpf, nr, arch=AUDIT_ARCH_X86_64, args=(), ip=0):
    """The 32-bit value the filter returns for this system call."""
    args = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, ip, *args)
    insns = [struct.unpack_from("<HBBI", bpf, i) for i in range(0, len(bpf), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(100000):
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls in (0, 1):  # LD, LDX
            mode, size = code & 0xE0, code & 0x18
            if mode == 0x00:
                value = k
            elif mode == 0x20:
                assert size == 0x00, f"only word loads from seccomp_data, got {code:#x}"
                value = struct.unpack_from("<I", data, k)[0]
            elif mode == 0x60:
                value = mem[k]
            elif mode == 0x80:
                value = len(data)
            else:
                raise AssertionError(f"unsupported load mode {code:#x}")
            if cls == 0:
                a = value
            else:
                x = value
        elif cls == 2:
            mem[k] = a
        elif cls == 3:
            mem[k] = x
        elif cls == 4:  # ALU
            a = _alu(code & 0xF0, a, x if code & 0x08 else k)
        elif cls == 5:  # JMP
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            v = x if code & 0x08 else k
            taken = {0x10: a == v, 0x20: a > v, 0x30: a >= v, 0x40: bool(a & v)}[op]
            pc += jt if taken else jf
        elif cls == 6:  # RET
            rval = code & 0x18
            return k if rval == 0x00 else a if rval == 0x10 else x
        else:  # MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
    raise AssertionError("filter did not return")


def _alu(op, a, v):
    if op == 0x80:
        return -a & _MASK
    result = {0x00: int.__add__, 0x10: int.__sub__, 0x20: int.__mul__, 0x30: int.__floordiv__,
              0x40: int.__or__, 0x50: int.__and__, 0x60: int.__lshift__, 0x70: int.__rshift__,
              0x90: int.__mod__, 0xA0: int.__xor__}[op](a, v)
    return result & _MASK


def decode(ret):
    """(action name, data) of a seccomp return value."""
    action = ret & 0xFFFF0000
    return _ACTIONS.get(action, hex(action)), ret & 0xFFFF


def nr_of(name, arch=AUDIT_ARCH_X86_64):
    nr = S.resolve_syscall_arch(arch, name)
    assert nr is not None and nr >= 0, f"{name} has no number on arch {arch:#x}"
    return nr


def verdict(bpf, name, args=(), arch=AUDIT_ARCH_X86_64):
    """What the filter does with system call ``name`` (on ``arch``) and these arguments."""
    nr = nr_of(name, arch)
    if arch == AUDIT_ARCH_X86_64 and nr & X32_SYSCALL_BIT:
        raise AssertionError("x32 numbers go with verdict_x32")
    return decode(run(bpf, nr, arch, args))


def verdict_x32(bpf, name, args=()):
    """An x32 system call: the x86_64 arch token and __X32_SYSCALL_BIT in the number."""
    nr = S.resolve_syscall_arch(0x4000003E, name)  # SCMP_ARCH_X32's token
    assert nr is not None and nr >= 0, name
    return decode(run(bpf, nr, AUDIT_ARCH_X86_64, args))
