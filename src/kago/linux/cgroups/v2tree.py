"""cgroup v2 directories: the freezer (cgroup.freeze, cgroup.events) and delegation
(cgroup.subtree_control up the path), as functions of a directory; V2Manager (v2.py) and the
hybrid manager's cgroup2 half use them, and limits.py enables what a plan needs with them.
The rules are in v2.py's docstring.
"""

import errno
import os
import time

from kago.errors import CgroupError

from .files import read_text, write_text


def events(d):
    """cgroup.events as a dict: {"populated": "1", "frozen": "0"}."""
    pairs = (line.split(None, 1) for line in read_text(d + "/cgroup.events").splitlines())
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2}


def is_frozen(d):
    return events(d).get("frozen") == "1"


def freeze_dir(d, timeout=2.0):
    """Write 1 to cgroup.freeze and wait for cgroup.events to say ``frozen 1``.

    The write returns at once; tasks stop as they next leave the kernel, so the state is polled.
    """
    write_text(d + "/cgroup.freeze", "1")
    deadline = time.monotonic() + timeout
    while not is_frozen(d):
        if time.monotonic() >= deadline:
            thaw_dir(d)
            raise CgroupError(d + "/cgroup.events", f"not frozen after {timeout}s, thawed again",
                              errno.EBUSY)
        time.sleep(0.001)


def thaw_dir(d):
    write_text(d + "/cgroup.freeze", "0")


# --- delegation -------------------------------------------------------------------------------

def ancestors_below_root(d):
    """[first cgroup below the cgroup2 root, ..., d]: the root has no cgroup.type file."""
    chain = [d]
    parent = os.path.dirname(d)
    while parent != chain[-1] and os.path.exists(parent + "/cgroup.type"):
        chain.append(parent)
        parent = os.path.dirname(parent)
    return chain[::-1]


def usable_controllers(d):
    """The v2 controllers the container may use: what the mount root hands its children.

    That is the top cgroup's cgroup.controllers (the root's subtree_control), read from the
    first of ``d``'s ancestors that exists; on a hybrid host it is usually empty.
    """
    for top in ancestors_below_root(d):
        try:
            return read_text(top + "/cgroup.controllers").split()
        except CgroupError as e:
            if e.errno != errno.ENOENT:
                raise
    return []


def check_domain(d):
    """A CgroupError if ``d`` is "domain invalid": below a thread root (a cgroup that holds
    processes and hands threaded controllers down, or has threaded children), where no process
    can join (the start then failed with a bare "cannot allocate memory"). runc refuses it
    too."""
    try:
        kind = read_text(d + "/cgroup.type").strip()
    except CgroupError:
        return  # no cgroup.type: a kernel before threaded cgroups (4.14), or a fake tree
    if kind == "domain invalid":
        raise CgroupError(d, "cgroup type is domain invalid: a parent holds processes and "
                          "hands threaded controllers down (a thread root); no process can "
                          "join it: use a cgroups path elsewhere", errno.EOPNOTSUPP)


# Why "+name" cannot go in a cgroup.subtree_control.
_ENABLE_HINTS = {
    errno.EBUSY: "it holds processes, and cgroup v2 hands controllers only to the children of "
                 "a cgroup without processes of its own: use a cgroups path beside them",
    errno.ENOENT: "its parent does not hand it that controller",
    errno.EOPNOTSUPP: "it is a threaded cgroup: only thread-aware controllers",
}


def enable_controllers(d, controllers, strict=True):
    """"+name" in the subtree_control of each ancestor of ``d`` below the root, top down.

    ``controllers`` None: all the root hands down (create, as runc). A parent that holds
    processes is never written: the kernel refuses it domain controllers (EBUSY) but takes the
    threaded ones (cpu, cpuset, pids), which makes it a thread root and every child cgroup
    "domain invalid", where no process can go (EOPNOTSUPP). ``strict`` (apply): such a parent,
    or any refusal, is a CgroupError naming the file and why; else (create) the controllers it
    cannot have are left off, each tried alone (the kernel takes all of a write or none).
    Returns whether anything was written; None right below the root (nothing to enable).
    """
    parents = ancestors_below_root(d)[:-1]
    if not parents:
        return None  # right below the root: the host's subtree_control decides
    if controllers is None:
        controllers = usable_controllers(d)
    wrote = False
    for parent in parents:
        control = parent + "/cgroup.subtree_control"
        missing = list(controllers)
        try:
            have = read_text(control).split()
            missing = [c for c in controllers if c not in have]
            if missing and read_text(parent + "/cgroup.procs").split():
                raise CgroupError(control, "holds processes", errno.EBUSY)
            if not strict:  # what its own parent does not hand it cannot be enabled
                offered = read_text(parent + "/cgroup.controllers").split()
                missing = [c for c in missing if c in offered]
            if missing:
                wrote |= _enable(control, missing, strict)
        except CgroupError as e:
            if strict:
                hint = _ENABLE_HINTS.get(e.errno)
                raise CgroupError(control, f"cannot enable {' '.join(missing)}: "
                                  f"{os.strerror(e.errno).lower()}" + (f" ({hint})" if hint
                                                                       else ""),
                                  e.errno) from e
    return wrote


def _enable(control, missing, strict):
    try:
        write_text(control, " ".join("+" + c for c in missing))
        return True
    except CgroupError:
        if strict or len(missing) == 1:
            raise
    wrote = False
    for c in missing:
        try:
            write_text(control, "+" + c)
            wrote = True
        except CgroupError:
            pass
    return wrote
