"""Small per-process settings: rlimits, oom_score_adj, hostname, domainname, sysctl.

sysctls are written through the container's own /proc/sys, resolved inside the rootfs, while
the process is already in the container's namespaces: net.*, kernel.shm* etc. are per
namespace, so they land in the container's (plan.validate refused the non-namespaced ones).
"""

import errno
import os

from kago.errors import KernelError
from kago.kernel import libc
from kago.linux import mounts
from kago.plan.tables import RLIMITS  # already loaded by plan.build: costs nothing here


def set_rlimits(rlimits):
    for res, soft, hard in rlimits or ():
        try:
            libc.setrlimit(res, soft, hard)
        except KernelError as e:
            hint = ("raising a hard limit needs CAP_SYS_RESOURCE"
                    if e.errno == errno.EPERM else None)
            raise KernelError("setrlimit", e.errno, _rlimit_name(res), hint) from None


def _rlimit_name(number):
    # from the spec's table, not dir(resource): that has aliases (RLIMIT_OFILE for NOFILE)
    return next((name for name, n in RLIMITS.items() if n == number), str(number))


def set_oom_score_adj(value):
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        hint = "lowering it needs CAP_SYS_RESOURCE" if e.errno in (errno.EPERM,
                                                                  errno.EACCES) else None
        raise KernelError("write", e.errno, "/proc/self/oom_score_adj", hint) from None


def set_names(hostname, domainname):
    if hostname is not None:
        libc.sethostname(hostname)
    if domainname is not None:
        libc.setdomainname(domainname)


def write_sysctls(rootfd, sysctl):
    for key, value in (sysctl or {}).items():
        path = "/proc/sys/" + key.replace(".", "/")
        fd = mounts.open_in_root(rootfd, path, os.O_WRONLY)
        try:
            os.write(fd, str(value).encode())
        except OSError as e:
            raise KernelError("write sysctl", e.errno, path, key) from None
        finally:
            os.close(fd)
