"""The manager run by an unprivileged user, inside its holder (kago.runtime.holder): the ID
space its containers' ranges come from, and when the holder may end.

Inside the holder the manager is uid 0 of a user namespace whose IDs 1..N are the user's
subordinate IDs; ``id_space`` reads N from the namespace's own maps. The holder is needed while
a container exists (a record under ROOT/containers, or one being made) or a supervisor serves
the root; ``release`` ends it otherwise (called as a command ends and as a supervisor exits).
"""

import errno
import fcntl
import os

from kago.host import holder as H
from kago.host import rootless as R


def active():
    """True when this process is the manager inside a holder (root of a user namespace that
    is not the host's, with a holder record in its runroot is what ``release`` checks)."""
    return R.rootless()


def id_space():
    """The IdSpace of this process's user namespace, or None for host root."""
    if not active():
        return None
    with open("/proc/self/uid_map") as f:
        uids = H.id_space(f.read())
    with open("/proc/self/gid_map") as f:
        gids = H.id_space(f.read())
    from kago.host import subids
    user = _user_name()
    uid = R.host_uid()
    mine = subids.read(user, uid, -1)
    return H.IdSpace(uids, gids, user, mine.uids, mine.gids)


def _user_name():
    import pwd
    try:
        return pwd.getpwuid(R.host_uid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(R.host_uid())


def in_use(paths, supervisor=True):
    """A container record (or one being made) under ROOT/containers, or (``supervisor``) a
    live supervisor."""
    try:
        if os.listdir(paths.containers()):
            return True
    except FileNotFoundError:
        pass
    return supervisor and supervisor_alive(paths)


def supervisor_alive(paths):
    """True while a supervisor serves the root (it holds RUNROOT/supervisor.lock)."""
    try:
        fd = os.open(os.path.join(paths.runroot, "supervisor.lock"), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)


def release(paths, holder=None):
    """As the caller leaves: end the holder of ``paths.runroot`` if nothing needs it (see
    kago.runtime.holder); ``holder``: the caller's own Holder (its lock, given up here), else
    one is opened. An exiting supervisor calls this after closing its supervisor.lock, so a
    command ending at the same moment does not count it as a user, nor it the command."""
    from kago.runtime import holder as L
    if not os.path.exists(os.path.join(paths.runroot, H.PID_FILE)):
        return False
    own = holder is None
    if own:
        holder = L.Holder(paths.runroot, L.lock(paths.runroot), None)
    try:
        stopped = L.stop_if_unused(holder, lambda: in_use(paths))
    finally:
        if own:
            os.close(holder.lock_fd)
    if stopped:  # its slirp4netns ends with it (its exit fd): waited for, its files removed
        from kago.network.rootless import outside
        outside.disconnect(paths.runroot)
    return stopped


def delegation():
    """The cgroup v2 subtree delegated to this rootless manager's user (kago.manager.delegation),
    read once per process; None for host root."""
    global _DELEGATION
    if not active():
        return None
    if _DELEGATION is None:
        from kago.manager import delegation as D
        _DELEGATION = D.find()
    return _DELEGATION


_DELEGATION = None


def cgroups_path(path):
    """A container's cgroups path: for a rootless manager in a delegated subtree, ``path``
    placed inside it (beside the command's own cgroup); otherwise ``path`` unchanged (a
    rootless runtime then skips the cgroup it may not make)."""
    found = delegation()
    if found is None or found.path is None:
        return path
    from kago.manager import delegation as D
    return D.place(found, path)


def fit_limits(spec):
    """A user's container asking for resource limits: where no cgroup v2 subtree is delegated,
    one warning line (it runs without them: kago-oci skips the cgroup it may not create, as
    runc --rootless auto does); where one is, limits needing a controller the subtree is not
    handed are dropped from ``spec`` with one warning naming them."""
    found = delegation()
    if found is None:
        return
    resources = (spec.get("linux") or {}).get("resources")
    from kago import log
    if found.path is None:
        from kago.runtime.rootless import asks_for_limits
        if asks_for_limits(resources):
            log.warning(f"rootless: {found.why}: the container runs without its resource "
                        f"limits")
        return
    from kago.manager import delegation as D
    kept, missing = D.drop_unavailable(resources or {}, found.controllers)
    if missing:
        spec["linux"]["resources"] = kept
        log.warning(f"rootless: the delegated cgroup subtree {found.dir} has no "
                    f"{' '.join(missing)} controller: those limits are not applied "
                    f"(it has: {' '.join(found.controllers) or 'none'})")


def cgroups_delegated(root="/sys/fs/cgroup"):
    """True on a pure cgroup v2 host where the parent of this process's cgroup is writable by
    the user (a delegated subtree: kago.manager.delegation)."""
    from kago.manager import delegation as D
    return D.find(root).path is not None


def retire_stale_supervisor(paths, timeout=5.0):
    """A holder was just made: a supervisor still serving the root lives in the namespaces of
    the one before (it died, or was killed), where nothing this command makes is seen. Ask it
    to quit (its containers stay; the next command starts a supervisor inside the new
    holder). Containers started in the old namespaces keep running, and can be removed, but
    not joined (exec) from the new ones."""
    import time
    from kago.manager import supervisor
    conn = supervisor.connect(paths, spawn=False)
    if conn is None:
        return
    try:
        conn.request("quit", timeout=timeout)
    except (OSError, ValueError):
        pass  # on its way out already
    finally:
        conn.close()
    deadline = time.monotonic() + timeout
    while supervisor_alive(paths) and time.monotonic() < deadline:
        time.sleep(0.02)


def holder_pid(paths):
    """The live holder's PID for the root's runroot, or None."""
    from kago.runtime import holder as L
    return L.alive(paths.runroot)
