"""A small eBPF assembler: the few instructions a cgroup device filter needs, as bytes. Pure.

Kernel docs: Documentation/bpf/standardization/instruction-set.rst (or bpf/instruction-set.rst,
older kernels). An instruction is 8 bytes, little-endian on x86_64::

    u8 opcode | u8 dst_reg:4, src_reg:4 | s16 offset | s32 imm

The opcode is class | operation | source (``BPF_K``: the immediate, ``BPF_X``: the source
register). Jumps are relative to the next instruction. A program is a list of items: the
instructions below, and ``label(name)`` markers that a jump may name as its target;
``assemble()`` resolves the names and returns the bytes for BPF_PROG_LOAD, ``listing()``
prints the symbolic program in the notation of cilium/ebpf's ``asm.Instructions.String()``
(what runc's devicefilter tests compare), so the two can be checked against each other.

Registers are numbered 0-10 (r0: return value, r1: the context pointer, r10: frame pointer).
"""

# instruction classes
BPF_LDX = 0x01
BPF_ALU = 0x04  # 32-bit ALU: the result is zero-extended into the 64-bit register
BPF_JMP = 0x05  # 64-bit compares
# operations
BPF_AND = 0x50
BPF_RSH = 0x70
BPF_MOV = 0xB0
BPF_JNE = 0x50
BPF_EXIT = 0x90
# source, memory mode, size
BPF_K = 0x00
BPF_X = 0x08
BPF_MEM = 0x60
BPF_W = 0x00  # 32-bit load

INSN_SIZE = 8
_S32 = (-(1 << 31), (1 << 31) - 1)
_S16 = (-(1 << 15), (1 << 15) - 1)


class Insn(tuple):
    """(name, opcode, dst, src, off, imm, target): ``target`` is a label name or None."""

    __slots__ = ()

    def __new__(cls, name, opcode, dst=0, src=0, off=0, imm=0, target=None):
        for reg in (dst, src):
            if type(reg) is not int or not 0 <= reg <= 10:
                raise ValueError(f"{name}: no register r{reg}")
        if type(imm) is not int:
            raise ValueError(f"{name}: immediate {imm!r} is not an integer")
        if _S32[1] < imm <= 0xFFFFFFFF:
            imm -= 1 << 32  # a u32 written as the s32 with the same bits
        if not _S32[0] <= imm <= _S32[1]:
            raise ValueError(f"{name}: immediate {imm} does not fit 32 bits")
        if not _S16[0] <= off <= _S16[1]:
            raise ValueError(f"{name}: offset {off} does not fit 16 bits")
        return super().__new__(cls, (name, opcode, dst, src, off, imm, target))

    name = property(lambda self: self[0])
    opcode = property(lambda self: self[1])
    target = property(lambda self: self[6])


class Label(str):
    """A position in the program, named for jumps (``block-1``)."""

    __slots__ = ()


def label(name):
    return Label(name)


# --- the instructions (named as cilium/ebpf's String() names them) ----------------------------

def load_word(dst, src, off):
    """dst = *(u32 *)(src + off)."""
    return Insn("LdXMemW", BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)


def and_imm32(dst, imm):
    return Insn("AndImm32", BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm)


def rsh_imm32(dst, imm):
    return Insn("RShImm32", BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm)


def mov_imm32(dst, imm):
    return Insn("MovImm32", BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm)


def mov_reg32(dst, src):
    return Insn("MovReg32", BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)


def jne_imm(dst, imm, target):
    """if dst != imm (64-bit compare, imm sign-extended) goto target."""
    return Insn("JNEImm", BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm, target)


def jne_reg(dst, src, target):
    return Insn("JNEReg", BPF_JMP | BPF_JNE | BPF_X, dst, src, 0, 0, target)


def exit_():
    return Insn("Exit", BPF_JMP | BPF_EXIT)


# --- assembling -------------------------------------------------------------------------------

def _positions(items):
    """label name -> index of the instruction it stands before."""
    where = {}
    n = 0
    for item in items:
        if isinstance(item, Label):
            if item in where:
                raise ValueError(f"label {item} defined twice")
            where[item] = n
        else:
            n += 1
    return where


def instructions(items):
    """The instructions with every jump's offset resolved (labels dropped)."""
    where = _positions(items)
    out = []
    for item in items:
        if isinstance(item, Label):
            continue
        if item.target is not None:
            if item.target not in where:
                raise ValueError(f"{item.name}: no label {item.target}")
            off = where[item.target] - (len(out) + 1)
            if off < 0:
                raise ValueError(f"{item.name}: jump back to {item.target} (loops are refused)")
            item = Insn(item[0], item[1], item[2], item[3], off, item[5])
        out.append(item)
    return out


def assemble(items):
    """The program as the bytes BPF_PROG_LOAD takes (``insn_cnt`` = len // INSN_SIZE)."""
    return b"".join(_encode(i) for i in instructions(items))


def _encode(insn):
    return (bytes((insn[1], insn[2] | (insn[3] << 4))) + insn[4].to_bytes(2, "little", signed=True)
            + insn[5].to_bytes(4, "little", signed=True))


def listing(items):
    """One line per instruction and label, in cilium/ebpf's notation (jumps show ``off: -1``
    and ``<label>``, as cilium lists a program before its references are resolved)."""
    lines = []
    n = 0
    for item in items:
        if isinstance(item, Label):
            lines.append(f"{item}:")
            continue
        lines.append(f"{n}: {_show(item)}")
        n += 1
    return "\n".join(lines)


def _show(insn):
    name, opcode, dst, src, off, imm, target = insn
    if name == "Exit":
        return name
    if name == "LdXMemW":
        return f"{name} dst: r{dst} src: r{src} off: {off} imm: {imm}"
    if name == "MovReg32":
        return f"{name} dst: r{dst} src: r{src}"
    if target is not None:
        if opcode & BPF_X:
            return f"{name} dst: r{dst} off: -1 src: r{src} <{target}>"
        return f"{name} dst: r{dst} off: -1 imm: {imm} <{target}>"
    return f"{name} dst: r{dst} imm: {imm}"
