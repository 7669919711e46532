"""Releasing ended containers: their rootfs mount and network attachment are given back
(``release.release``, docker's behaviour; a restart or ``kago start`` prepares them again).
That needs kago.network and pyroute2 (~18 MB, ~150 ms to import), which the supervisor never
loads: a forked releaser does it, for every container that ended meanwhile in one go, under
each record's lock. One releaser at a time; the containers that end while it works wait for
the next. A start worker takes the same lock and prepares what a release took.
"""

import os
import _signal as signal  # signal.py adds enums (and imports enum): not needed here
import time

from kago.manager.supervisor.settings import of
from kago.manager.supervisor.state import say

RELEASER_WAIT = 10.0        # at exit, how long to wait for a releaser still at work


class Releases:
    """The Supervisor's releasing half."""

    def _release_later(self, cid):
        if cid not in self.to_release:
            self.to_release.append(cid)
        if not self.adopting:
            self._run_releaser()

    def _run_releaser(self):
        """Fork a releaser for every container waiting, unless one is at work (it is then
        forked again when that one is reaped)."""
        if self.releaser is not None or not self.to_release:
            return
        cids, self.to_release = self.to_release, []
        fds = [key.fd for key in self.sel.get_map().values()]
        if self.lock_fd is not None:
            fds.append(self.lock_fd)
        try:
            self.releaser = (fork_releaser(self.paths, cids, fds), cids)
        except OSError as e:
            say(f"cannot fork a releaser: {e}")

    def _wait_releaser(self):
        """At exit: let a releaser at work finish (bounded), so that none outlives us."""
        deadline = time.monotonic() + RELEASER_WAIT
        while self.releaser is not None and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(self.releaser[0], os.WNOHANG)
            except ChildProcessError:
                pid = self.releaser[0]
            if pid:
                self.releaser = None
            else:
                time.sleep(0.01)


def fork_releaser(paths, cids, fds):
    """Fork a process that releases ``cids`` (``release.release``) and exits; its pid. It
    closes ``fds`` first (the supervisor's sockets, FIFOs and lock), so that a client sees
    the supervisor's end when it comes, and a new supervisor can take the lock."""
    pid = os.fork()
    if pid:
        return pid
    try:  # the releaser: never returns
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        from kago.manager import release
        from kago.manager.context import Context
        ctx = Context(paths.root, paths.runroot)
        for cid in cids:
            try:
                release.release(ctx, cid, by="supervisor")
            except Exception as e:  # noqa: BLE001 - logged; the next start prepares anyway
                say(f"{cid[:12]}: {e}")
    finally:
        os._exit(0)


def wants_release(record):
    """Whether an end of this container should be followed by a release at all (the
    releaser checks the rest under the record's lock)."""
    state = record.get("state") or {}
    # a checkpointed container keeps its rootfs and network (its address and published
    # ports) for its restore, as a paused one does; kago stop or rm gives them back
    return not (state.get("removing") or state.get("foreground")
                or of(record).auto_remove or state.get("status") == "checkpointed")
