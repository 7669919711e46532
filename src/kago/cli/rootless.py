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

from kago.host import procfs

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
        _HOLDER = holder.ensure(paths.runroot, sub or _subids, attach=_connect)
        reconnected = not _HOLDER.made and _reconnect(_HOLDER.pid, paths.runroot)
        holder.join(_HOLDER.pid)
        from kago.host import rootless
        rootless.forget()  # this process is in another user namespace now
        if _HOLDER.made:
            from kago.manager import rootless as manager_rootless
            manager_rootless.retire_stale_supervisor(paths)
        if reconnected:
            _restore_forwards(glob)
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        return 125
    except OSError as e:
        from kago.errors import describe
        print(f"kago: rootless: {describe(e)}", file=sys.stderr)
        return 125
    return None


def _connect(pid, runroot):
    """slirp4netns for a new holder's network namespace (outside it, as the user): outbound
    traffic, and ports published on the host. Without it the holder still runs containers,
    reachable from each other only: one warning, and ``-p`` refuses with one line."""
    from kago.errors import KagoError
    from kago.network.rootless import outside
    try:
        outside.connect(pid, runroot)
    except (KagoError, OSError) as e:
        print(f"kago: warning: rootless: containers get no network beyond the user's own "
              f"namespace and no published ports: {e}", file=sys.stderr)


def _reconnect(pid, runroot):
    """A live holder whose slirp4netns was connected and has ended (killed): connected again.
    Cheap when nothing ended: one pid file and one /proc read, no import."""
    try:
        with open(os.path.join(runroot, "slirp4netns.pid")) as f:
            slirp = int(f.read().strip())
        words = procfs.argv(slirp)
        if words and words[0].endswith(b"slirp4netns"):
            return False
    except FileNotFoundError:
        if not os.path.exists(os.path.join(runroot, "slirp4netns.pid")):
            return False  # never connected (no slirp4netns): the warning was given once
    except (OSError, ValueError):
        pass
    _connect(pid, runroot)
    return True


def _restore_forwards(glob):
    """After a reconnect, inside the holder: every container's published ports forwarded by
    the new slirp4netns (the old one took its forwards along)."""
    from kago.errors import KagoError
    try:
        from kago.manager.context import Context
        Context(glob.get("root"), glob.get("runroot")).nets.restore_forwards()
    except (KagoError, OSError) as e:
        print(f"kago: warning: rootless: published ports not forwarded again: {e}",
              file=sys.stderr)


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
