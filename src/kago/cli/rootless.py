"""``kago`` as an unprivileged user: join the user's holder before any verb runs.

The holder (kago.runtime.holder) owns a user namespace mapping the user's own ID to 0 and its
subordinate IDs to 1..N, a mount namespace and a network namespace. ``enter`` makes it when
there is none (or its record is stale), then setns(2)es this still single-threaded process
into it: the verb runs as uid 0 of that namespace, with the manager's per-user paths, and the
supervisor it starts is inside too. ``leave`` ends the holder as the command ends when no
container or supervisor needs it any more.
"""

import os
import sys

_HOLDER = None  # this command's Holder (its shared lock stays held until the process ends)


def enter(glob):
    """Join (or make, then join) the user's holder for the runroot ``glob`` names; an exit
    status and one line on stderr when that cannot be done, else None."""
    global _HOLDER
    from kago.errors import KagoError
    from kago.manager.paths import Paths
    try:
        paths = Paths(glob.get("root"), glob.get("runroot"))
        from kago.runtime import holder
        sub = None
        if holder.alive(paths.runroot) is None:
            sub = _subids()
            from kago.host.holder import maps
            maps(sub)  # no subordinate IDs: one line, before anything is made
        _HOLDER = holder.ensure(paths.runroot, sub or _subids)
        holder.join(_HOLDER.pid)
        from kago.host import rootless
        rootless.forget()  # this process is in another user namespace now
        if _HOLDER.made:
            from kago.manager import rootless as manager_rootless
            manager_rootless.retire_stale_supervisor(paths)
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        return 125
    except OSError as e:
        from kago.errors import describe
        print(f"kago: rootless: {describe(e)}", file=sys.stderr)
        return 125
    return None


def _subids():
    import pwd
    from kago.host import subids
    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return subids.read(name, uid, gid)


def leave(glob):
    """As the command ends: stop the holder if nothing needs it any more."""
    if _HOLDER is None:
        return
    from kago.manager import rootless
    from kago.manager.paths import Paths
    try:
        rootless.release(Paths(glob.get("root"), glob.get("runroot")), _HOLDER)
    except OSError:
        pass  # the next command finds it, or a stale record
