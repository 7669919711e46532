"""The v2 device filter on a cgroup: load, attach in place of the old one, query, detach.

As runc (libcontainer/cgroups/ebpf/ebpf_linux.go, LoadAttachCgroupDeviceFilter): the program is
attached with BPF_F_ALLOW_MULTI to the container's cgroup2 directory. A cgroup that already has
exactly one device program (a cgroup reused from an earlier container, or a filter set again)
gets the new one in its place in a single BPF_PROG_ATTACH with BPF_F_REPLACE (Linux 5.6), so
no access is ever decided by neither or both; with several old programs, or on an older
kernel, the new one is attached first and the old ones detached after, so the cgroup is never
without a filter (for that moment both apply: the stricter wins). Programs the kernel will not
show us (EPERM or EACCES from an LSM) are left, as runc leaves them: a device program can only
take access away. If another runtime swaps the program between our query and our attach, the
query is made again, as crun does (src/libcrun/ebpf.c), a bounded number of times.

The cgroup holds the programs: they go when the cgroup is removed, nothing to clean up. Imports
the bpf(2) seam only when called (``kago.kernel.bpf``, not on the start path of a v1 host).
"""

import errno
import os

from kago.errors import CgroupError, KernelError

from .device_filter import LICENSE, compile_filter, only_full_allows

PROGRAM_NAME = b"kago_devices"


def set_filter(d, text):
    """Attach the filter of a planned rule text to cgroup directory ``d``, replacing the one
    there. -> True, or False when bpf(2) failed where runc lets it (see may_skip)."""
    from kago.kernel import bpf
    code = compile_filter(text)
    fd = _open(d)
    try:
        prog = bpf.prog_load(code, LICENSE, PROGRAM_NAME)
        try:
            _attach(bpf, fd, prog, d)
        finally:
            os.close(prog)
    except KernelError as e:
        if may_skip(text, e.errno):
            return False
        raise CgroupError(d, f"cannot set the eBPF device filter: {e}", e.errno) from e
    finally:
        os.close(fd)
    return True


def _attach(bpf, fd, prog, d, attempts=8):
    """Attach ``prog`` in place of the one device program there, or beside the old ones and
    then detach them. Another runtime racing us on the same cgroup can make the old program
    vanish between the query and the attach (ENOENT): then the query is made again (as crun)."""
    for _ in range(attempts):
        old = bpf.prog_query(fd, path=d)
        if len(old) == 1 and bpf.replace_supported():
            try:
                old_fd = bpf.prog_fd_by_id(old[0])
            except KernelError as e:
                if e.errno == errno.ENOENT:
                    continue  # gone since the query
                if e.errno not in (errno.EPERM, errno.EACCES):
                    raise
                bpf.prog_attach(fd, prog, path=d)  # an LSM hides it: it stays, as with runc
                return
            try:
                bpf.prog_attach(fd, prog, replace_fd=old_fd, path=d)
                return
            except KernelError as e:
                if e.errno != errno.ENOENT:
                    raise
            finally:
                os.close(old_fd)
            continue  # replaced by someone else meanwhile
        bpf.prog_attach(fd, prog, path=d)
        _detach_ids(bpf, fd, old, d)
        return
    raise KernelError("bpf(BPF_PROG_ATTACH)", errno.ENOENT, d,
                      f"the attached program kept changing, {attempts} tries")


def _detach_ids(bpf, fd, ids, d):
    for prog_id in ids:
        try:
            old_fd = bpf.prog_fd_by_id(prog_id)
        except KernelError as e:
            if e.errno in (errno.EPERM, errno.EACCES, errno.ENOENT):
                continue  # an LSM hides it (runc ignores those too), or it is gone already
            raise
        try:
            bpf.prog_detach(fd, old_fd, path=d)
        except KernelError as e:
            if e.errno != errno.ENOENT:  # detached by someone else meanwhile
                raise
        finally:
            os.close(old_fd)


def attached(d):
    """The ids of the device programs attached to cgroup directory ``d``."""
    from kago.kernel import bpf
    fd = _open(d)
    try:
        return bpf.prog_query(fd, path=d)
    except KernelError as e:
        raise CgroupError(d, f"cannot list its eBPF device programs: {e}", e.errno) from e
    finally:
        os.close(fd)


def detach_all(d):
    """Detach every device program from ``d`` (those we may see)."""
    from kago.kernel import bpf
    fd = _open(d)
    try:
        _detach_ids(bpf, fd, bpf.prog_query(fd, path=d), d)
    except KernelError as e:
        raise CgroupError(d, f"cannot detach its eBPF device programs: {e}", e.errno) from e
    finally:
        os.close(fd)


def may_skip(text, err):
    """runc's canSkipEBPFError: in a user namespace bpf(2) is not ours to call; and a list
    that only allows, each rule every access, restricts nothing a failure could open up."""
    return err in (errno.EPERM, errno.EACCES) and (in_user_namespace() or only_full_allows(text))


def in_user_namespace():
    """Not the initial user namespace: its uid_map is not the whole range onto itself."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def _open(d):
    try:
        return os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(d, f"cannot open: {os.strerror(e.errno).lower()}", e.errno) from e
