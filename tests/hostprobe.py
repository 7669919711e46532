"""What this host offers, probed from the host itself: cgroup hierarchies, the control files a
fresh child cgroup gets in each, LSMs, kernel features.

Tests ask here instead of assuming one kernel's files: the same ``./dev test`` runs on a kernel
whose blkio has CFQ (blkio.weight), BFQ (blkio.bfq.weight) or neither (only blkio.throttle.*
with mq-deadline/none), with or without swap accounting, RT group scheduling, hugetlb, rdma,
PSI, AppArmor or SELinux. What the host lacks is skipped with a reason naming it (``skip_unless``
and ``require``); what the product does on such a host is tested by the tests themselves.

The child cgroups are made once per session per hierarchy (``kago-tests-probe-<pid>``), listed
and removed at once: a fresh child's files are what a container's cgroup gets, which the root's
are not (the root has no memory.limit_in_bytes, cpu.cfs_quota_us, ...).
"""

import functools
import os
import uuid

import pytest

CG = "/sys/fs/cgroup"


@functools.cache
def cgroup_mounts():
    """{hierarchy name: (fstype, super options, mountpoint)} from mountinfo; the cgroup2 tree
    is "unified" (at /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup itself on v2)."""
    found = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mountpoint = fields[4]
        if os.path.dirname(mountpoint) == CG or mountpoint == CG:
            name = "unified" if mountpoint == CG else os.path.basename(mountpoint)
            found.setdefault(name, (tail[0], tuple(tail[2].split(",")), mountpoint))
    return found


def hierarchies():
    """Every hierarchy a container is placed in here: v1 ones (named like their directory,
    e.g. "cpu,cpuacct" or "name=systemd"'s "systemd") and the cgroup2 one, sorted."""
    return tuple(sorted(cgroup_mounts()))


def hierarchy_of(controller):
    """The directory name under /sys/fs/cgroup holding v1 ``controller``, or None."""
    for name, (fstype, options, _) in cgroup_mounts().items():
        if fstype == "cgroup" and controller in options:
            return name
    return None


def is_hybrid_or_v1():
    return any(fstype == "cgroup" for fstype, _, _ in cgroup_mounts().values())


@functools.cache
def child_files(controller):
    """The files of a fresh child cgroup of v1 ``controller`` ("unified": the cgroup2 tree)."""
    if os.geteuid() != 0:
        return frozenset()
    name = "unified" if controller == "unified" else hierarchy_of(controller)
    if name is None or name not in cgroup_mounts():
        return frozenset()
    probe = f"{cgroup_mounts()[name][2]}/kago-tests-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        os.mkdir(probe)
    except OSError:
        return frozenset()
    try:
        return frozenset(os.listdir(probe))
    finally:
        os.rmdir(probe)


def has_cgroup_file(controller, filename):
    return filename in child_files(controller)


def blkio_weight_file():
    """blkio.weight (CFQ), blkio.bfq.weight (BFQ) or None (neither: mq-deadline/none)."""
    for name in ("blkio.weight", "blkio.bfq.weight"):
        if has_cgroup_file("blkio", name):
            return name
    return None


@functools.cache
def lsms():
    """The LSMs this kernel runs, from securityfs or the modules' own traces."""
    from kago.host.facts import enabled_lsms
    return frozenset(enabled_lsms())


def missing_cgroup_files(pairs):
    """The (controller, file) pairs a fresh child cgroup here does not have, as "c/f" text."""
    return [f"{c} {f}" for c, f in pairs if not has_cgroup_file(c, f)]


def skip_unless_cgroup_files(*pairs):
    """pytest.skip naming every (controller, file) this host's child cgroups lack."""
    missing = missing_cgroup_files(pairs)
    if missing:
        pytest.skip("this host's cgroups have no " + ", ".join(missing))

