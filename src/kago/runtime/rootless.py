"""Cgroups for a rootless runtime (runc's ``--rootless auto``): use what the caller may write.

An unprivileged user (or root of a rootless podman's user namespace) may create cgroups only
where the host delegated a subtree to it: a cgroup2 directory it owns (systemd's
``Delegate=yes`` user service). Elsewhere, v1 hierarchies and an undelegated cgroup2 tree,
mkdir fails with EACCES/EPERM/EROFS: the container then gets no cgroup of its own and stays in
the caller's, as with runc, and if the spec asks for limits one warning line says they are not
applied. A delegated subtree that lacks a controller the spec needs is the same: the limits it
cannot write are skipped with a warning; the rest apply.
"""

import errno

from kago import log
from kago.errors import CgroupError

# a cgroup the caller may not make or write: skipped, not an error
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
_FIX = "delegate a cgroup v2 subtree to the user (systemd Delegate=yes) for limits"


def asks_for_limits(resources):
    """True if ``linux.resources`` holds anything but device rules (a rootless container
    gets the user namespace's own device limits, whatever its cgroup)."""
    return any(value not in (None, {}, []) for key, value in (resources or {}).items()
               if key != "devices")


def create_cgroup(mgr, resources):
    """``mgr.create()``; None, with a warning if limits were asked for, when the caller may
    not create it."""
    try:
        mgr.create()
        return mgr
    except CgroupError as e:
        if e.errno not in _DENIED:
            raise
        if asks_for_limits(resources):
            log.warning(f"rootless: no cgroup for the container ({e}): its resource limits "
                        f"are not applied; {_FIX}")
        return None


def apply_limits(mgr, resources):
    """``mgr.apply(resources)``, a limit the caller may not write skipped with a warning."""
    try:
        mgr.apply(resources)
    except CgroupError as e:
        if e.errno not in _DENIED and e.errno != errno.ENOENT:
            raise
        log.warning(f"rootless: resource limits not applied ({e}); {_FIX}")


def own_cgroup_dirs(layout):
    """The caller's own cgroup in each hierarchy: what a container without a cgroup of its
    own sees under /sys/fs/cgroup (bound read-only, as runc does)."""
    from kago.linux.cgroups import read_proc_cgroup
    try:
        return layout.own_dirs(read_proc_cgroup())
    except (CgroupError, OSError):
        return {}


# --- user namespace maps --------------------------------------------------------------------

def check_maps(plan, euid, egid):
    """Before any fork, for an unprivileged caller: a user namespace is required, and every
    host ID its maps name must be the caller's own or in its /etc/subuid / subgid ranges
    (what newuidmap/newgidmap will allow). One line naming the fix otherwise."""
    from kago.errors import SpecError
    if not plan.has_ns("user"):
        raise SpecError("linux.namespaces", "a rootless container needs a user namespace: "
                        "add {\"type\": \"user\"} and ID maps (kago-oci spec --rootless)")
    if not plan.new_ns("user"):
        return  # joined: its maps are already there
    if not plan.uid_maps or not plan.gid_maps:
        raise SpecError("linux.uidMappings", "a rootless user namespace needs uidMappings and "
                        "gidMappings (kago-oci spec --rootless maps your own IDs)")
    if _own_single(plan.uid_maps, euid) and _own_single(plan.gid_maps, egid):
        return
    import pwd
    from kago.host import subids
    try:
        name = pwd.getpwuid(euid).pw_name
    except KeyError:
        name = str(euid)
    mine = subids.read(name, euid, egid)
    for field, maps, own, ranges, kind in (
            ("linux.uidMappings", plan.uid_maps, euid, mine.uids, "subuid"),
            ("linux.gidMappings", plan.gid_maps, egid, mine.gids, "subgid")):
        _check_ranges(field, maps, own, ranges, kind, name)


def _own_single(maps, own):
    return len(maps) == 1 and maps[0][1] == own and maps[0][2] == 1


def _check_ranges(field, maps, own, ranges, kind, name):
    from kago.errors import SpecError
    allowed = list(ranges) + [(own, 1)]
    for _cid, host, size in maps:
        if any(start <= host and host + size <= start + count for start, count in allowed):
            continue
        last = host + size - 1
        if not ranges:
            raise SpecError(field, f"host IDs {host}-{last} need a range in /etc/{kind} and "
                                   f"user {name} has none: add one (usermod --add-{kind}s "
                                   f"{host}-{last} {name}) or map only your own ID")
        have = ", ".join(f"{s}-{s + c - 1}" for s, c in ranges)
        raise SpecError(field, f"host IDs {host}-{last} are outside user {name}'s /etc/{kind} "
                               f"ranges ({have}): map IDs within them")
