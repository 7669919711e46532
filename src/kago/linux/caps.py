"""Credentials: the capability sets and the user the program runs as.

Order matters (capabilities(7), runc's finalizeNamespace):
1. drop from the bounding set everything the spec does not list (needs CAP_SETPCAP, so first);
2. PR_SET_KEEPCAPS, then setgroups/setresgid/setresuid: without keepcaps, a switch away from
   uid 0 would empty the permitted set;
3. capset(effective, permitted, inheritable) to exactly the spec's sets;
4. raise the ambient set (each must be in permitted and inheritable), which is what lets a
   non-root program keep capabilities across execve(2).
"""

import os

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.kernel import libc


from kago.host.facts import last_cap  # noqa: E402,F401 - re-exported for the init steps


def _bits(mask, top):
    return [cap for cap in range(top + 1) if mask >> cap & 1]


def drop_bounding(keep_mask, top):
    for cap in range(top + 1):
        if not keep_mask >> cap & 1:
            libc.prctl(C.PR_CAPBSET_DROP, cap, op=f"drop capability {cap} from bounding set")


def switch_user(uid, gid, additional_gids, userns_setgroups=True):
    """Become uid:gid with the supplementary groups, keeping the permitted capabilities."""
    libc.prctl(C.PR_SET_KEEPCAPS, 1)
    try:
        if userns_setgroups:
            os.setgroups(list(additional_gids or ()))
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise KernelError("set user", e.errno, None, f"uid {uid} gid {gid}") from None
    libc.prctl(C.PR_SET_KEEPCAPS, 0)


def set_caps(effective, permitted, inheritable, ambient, top):
    full = (1 << (top + 1)) - 1
    libc.capset(effective & full, permitted & full, inheritable & full)
    # the kernel only lets a capability be ambient if it is permitted and inheritable; runc's
    # default spec lists ambient caps without inheritable ones, and runc warns and goes on
    allowed = ambient & permitted & inheritable
    if ambient & ~allowed & full:
        from kago import log
        log.debug("ambient capabilities not in both permitted and inheritable sets are "
                    "skipped", caps=",".join(str(c) for c in _bits(ambient & ~allowed, top)))
    for cap in _bits(allowed, top):
        libc.prctl(C.PR_CAP_AMBIENT, C.PR_CAP_AMBIENT_RAISE, cap,
                   op=f"raise ambient capability {cap}")


def apply(proc, top, setgroups_allowed=True):
    """Steps 1-4 for a ProcessPlan."""
    drop_bounding(proc.bounding, top)
    switch_user(proc.uid, proc.gid, proc.additional_gids, setgroups_allowed)
    set_caps(proc.effective, proc.permitted, proc.inheritable, proc.ambient, top)
