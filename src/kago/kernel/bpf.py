"""bpf(2) for cgroup device programs: load, attach, detach, query. The kernel seam of the v2
device filter (kago.linux.cgroups.devices_v2 is its user).

Man page: bpf(2); kernel: include/uapi/linux/bpf.h (``union bpf_attr``, one struct per command,
zero beyond what the caller knows), kernel/bpf/syscall.c, kernel/bpf/cgroup.c. Each call takes
the attr by pointer and its size; the structs below are those commands' members of the union.
Errors are ``KernelError`` naming the command and the cgroup or program; a program the verifier
refuses gets its log's last lines in the error, on one line.

Needs CAP_SYS_ADMIN (CAP_BPF + CAP_NET_ADMIN for loading on newer kernels). Kernels before 5.11
charge programs to RLIMIT_MEMLOCK: on EPERM the load raises that limit (this process only, as
runc does) and tries once more.
"""

import errno as _errno
import os

from kago.errors import KernelError
from kago.kernel import ffi

SYS_bpf = 321  # x86_64

# commands
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
# program and attach types
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
# attach flags
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2
BPF_F_REPLACE = 4  # Linux 5.6: attach in place of replace_bpf_fd, in one step

RLIMIT_MEMLOCK = 8
RLIM_INFINITY = (1 << 64) - 1
LOG_SIZE = 1 << 16
MAX_PROGS = 64  # the kernel's limit of programs on one cgroup and attach type

_LOG_STATS = ("processed ", "verification time", "stack depth")  # the log's summary lines

_syscall = ffi.function("syscall", ffi.c_long)


class _ProgLoad(ffi.Structure):
    _fields_ = [("prog_type", ffi.c_uint32), ("insn_cnt", ffi.c_uint32),
                ("insns", ffi.c_uint64), ("license", ffi.c_uint64),
                ("log_level", ffi.c_uint32), ("log_size", ffi.c_uint32),
                ("log_buf", ffi.c_uint64), ("kern_version", ffi.c_uint32),
                ("prog_flags", ffi.c_uint32), ("prog_name", ffi.c_char * 16),
                ("prog_ifindex", ffi.c_uint32), ("expected_attach_type", ffi.c_uint32)]


class _Attach(ffi.Structure):
    _fields_ = [("target_fd", ffi.c_uint32), ("attach_bpf_fd", ffi.c_uint32),
                ("attach_type", ffi.c_uint32), ("attach_flags", ffi.c_uint32),
                ("replace_bpf_fd", ffi.c_uint32)]


class _Query(ffi.Structure):
    _fields_ = [("target_fd", ffi.c_uint32), ("attach_type", ffi.c_uint32),
                ("query_flags", ffi.c_uint32), ("attach_flags", ffi.c_uint32),
                ("prog_ids", ffi.c_uint64), ("prog_cnt", ffi.c_uint32)]


class _GetId(ffi.Structure):
    _fields_ = [("prog_id", ffi.c_uint32), ("next_id", ffi.c_uint32),
                ("open_flags", ffi.c_uint32)]


class _Rlimit(ffi.Structure):
    _fields_ = [("cur", ffi.c_uint64), ("max", ffi.c_uint64)]


def _bpf(cmd, attr):
    """bpf(cmd, &attr, sizeof attr) -> its return value, or -errno (EINTR retried)."""
    while True:
        ret = _syscall(ffi.c_long(SYS_bpf), ffi.c_int(cmd), ffi.byref(attr),
                       ffi.c_uint(ffi.sizeof(attr)))
        if ret >= 0:
            return ret
        err = ffi.get_errno()
        if err != _errno.EINTR:
            return -err


def _buffer(data):
    buf = (ffi.c_char * max(len(data), 1)).from_buffer_copy(data or b"\0")
    return buf, ffi.addressof(buf)


def prog_load(insns, license, name=b"", prog_type=BPF_PROG_TYPE_CGROUP_DEVICE):
    """Load a program (``insns``: the instruction bytes); -> its fd (close-on-exec)."""
    if not insns or len(insns) % 8:
        raise ValueError("bpf: the instructions must be a non-empty multiple of 8 bytes")
    code, code_at = _buffer(insns)
    lic, lic_at = _buffer(license.encode() + b"\0")
    attr = _ProgLoad(prog_type=prog_type, insn_cnt=len(insns) // 8, insns=code_at,
                     license=lic_at, prog_name=name[:15])
    ret = _bpf(BPF_PROG_LOAD, attr)
    if ret == -_errno.EPERM and _raise_memlock():
        ret = _bpf(BPF_PROG_LOAD, attr)
    if ret >= 0:
        return ret
    err = -ret
    detail = f"{len(insns) // 8} instructions"
    log = _verifier_log(attr)
    if log:
        detail += "; verifier: " + log
    raise KernelError("bpf(BPF_PROG_LOAD)", err, detail=detail)


def _verifier_log(attr):
    """Load again with the verifier's log on; its last lines, on one line ('' if none)."""
    buf = (ffi.c_char * LOG_SIZE)()
    attr.log_level, attr.log_size, attr.log_buf = 1, LOG_SIZE, ffi.addressof(buf)
    ret = _bpf(BPF_PROG_LOAD, attr)
    if ret >= 0:  # loaded this time after all: nothing to report from it
        _close(ret)
        return ""
    lines = [line.strip() for line in buf.value.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith(_LOG_STATS)]
    return "; ".join(lines[-3:])


def _raise_memlock():
    limit = _Rlimit(RLIM_INFINITY, RLIM_INFINITY)
    prlimit = ffi.function("prlimit")
    return prlimit(ffi.c_int(0), ffi.c_int(RLIMIT_MEMLOCK), ffi.byref(limit), None) == 0


def prog_attach(target_fd, prog_fd, attach_type=BPF_CGROUP_DEVICE, flags=BPF_F_ALLOW_MULTI,
                replace_fd=None, path=None):
    """Attach ``prog_fd`` to the cgroup ``target_fd``; with ``replace_fd``, in its place."""
    if replace_fd is not None:
        flags |= BPF_F_REPLACE
    attr = _Attach(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                   attach_flags=flags, replace_bpf_fd=replace_fd or 0)
    ret = _bpf(BPF_PROG_ATTACH, attr)
    if ret < 0:
        raise KernelError("bpf(BPF_PROG_ATTACH)", -ret, path,
                          "replacing the attached program" if replace_fd is not None else None)


def prog_detach(target_fd, prog_fd, attach_type=BPF_CGROUP_DEVICE, path=None):
    attr = _Attach(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type)
    ret = _bpf(BPF_PROG_DETACH, attr)
    if ret < 0:
        raise KernelError("bpf(BPF_PROG_DETACH)", -ret, path)


def prog_query(target_fd, attach_type=BPF_CGROUP_DEVICE, path=None):
    """The ids of the programs attached to the cgroup ``target_fd`` (not its ancestors')."""
    count = MAX_PROGS
    for _ in range(4):
        ids = (ffi.c_uint32 * count)()
        attr = _Query(target_fd=target_fd, attach_type=attach_type,
                      prog_ids=ffi.addressof(ids), prog_cnt=count)
        ret = _bpf(BPF_PROG_QUERY, attr)
        if ret == -_errno.ENOSPC:  # more than we had room for: the kernel says how many
            count = max(attr.prog_cnt, count * 2)
            continue
        if ret < 0:
            raise KernelError("bpf(BPF_PROG_QUERY)", -ret, path)
        return list(ids[:attr.prog_cnt])
    raise KernelError("bpf(BPF_PROG_QUERY)", _errno.ENOSPC, path, "the list kept growing")


def prog_fd_by_id(prog_id):
    """An fd of the loaded program ``prog_id`` (close-on-exec)."""
    ret = _bpf(BPF_PROG_GET_FD_BY_ID, _GetId(prog_id=prog_id))
    if ret < 0:
        raise KernelError("bpf(BPF_PROG_GET_FD_BY_ID)", -ret, detail=f"program {prog_id}")
    return ret


_replace = []  # [bool] once probed


def replace_supported():
    """Whether BPF_F_REPLACE is known (Linux 5.6), probed as runc probes it: attach a trivial
    program "in place of" a bad fd to /dev/null; EINVAL means the flag is unknown, anything
    else (EBADF: not a cgroup) that it was accepted."""
    if not _replace:
        prog = prog_load(bytes((0xB4, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)), "Apache")
        target = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            attr = _Attach(target_fd=target, attach_bpf_fd=prog, attach_type=BPF_CGROUP_DEVICE,
                           attach_flags=BPF_F_ALLOW_MULTI | BPF_F_REPLACE,
                           replace_bpf_fd=0xFFFFFFFF)
            _replace.append(_bpf(BPF_PROG_ATTACH, attr) != -_errno.EINVAL)
        finally:
            os.close(target)
            _close(prog)
    return _replace[0]


def _close(fd):
    os.close(fd)
