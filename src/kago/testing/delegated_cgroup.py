"""A cgroup v2 subtree delegated to a user as systemd's ``Delegate=yes`` makes one, for tests
of what a user's kago does with it (made and removed as root).

The directory and its cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's,
the controllers asked for are enabled for its children, and a ``runner`` leaf (also the
user's) is where the user's commands start: the subtree's top then holds no process (cgroup
v2's no-internal-processes rule) and its children can be given controllers.
"""

import contextlib
import os
import time
import uuid

V2 = "/sys/fs/cgroup"


def unavailable(controllers, root=V2):
    """Why such a subtree cannot be made here (a reason to skip), or None."""
    try:
        with open(f"{root}/cgroup.subtree_control") as f:
            enabled = f.read().split()
    except OSError:
        return "not a pure cgroup v2 host"
    lacking = sorted(set(controllers) - set(enabled))
    if lacking:
        return f"the cgroup v2 root does not enable {' '.join(lacking)}"
    return None


@contextlib.contextmanager
def delegated(uid, gid, controllers=("memory", "pids"), root=V2, handed=None):
    """The subtree's path, removed afterwards with everything under it (processes left in
    it killed). ``handed``: the subtree is made below a cgroup of root's that hands it only
    these controllers (a host delegating fewer than its root has). Call unavailable()
    first."""
    top = f"{root}/kago-rltest-{uuid.uuid4().hex[:8]}"
    os.mkdir(top)
    try:
        sub = top
        if handed is not None:
            _enable(top, handed)
            sub = f"{top}/user"
            os.mkdir(sub)
        _enable(sub, controllers)
        os.mkdir(f"{sub}/runner")
        for path in (sub, f"{sub}/cgroup.procs", f"{sub}/cgroup.subtree_control",
                     f"{sub}/cgroup.threads", f"{sub}/runner", f"{sub}/runner/cgroup.procs"):
            os.chown(path, uid, gid)
        yield sub
    finally:
        remove_tree(top)


def _enable(d, controllers):
    with open(f"{d}/cgroup.subtree_control", "w") as f:
        f.write(" ".join(f"+{c}" for c in controllers))


def remove_tree(top, tries=50):
    """rmdir ``top`` and its cgroups, deepest first, killing what is left in them; bounded
    (exiting tasks leave late). An AssertionError if it is still there."""
    for _ in range(tries):
        dirs = sorted((d for d, _s, _f in os.walk(top)), key=len, reverse=True)
        if not dirs:
            return
        for d in dirs:
            try:
                with open(f"{d}/cgroup.procs") as f:
                    for pid in f.read().split():
                        os.kill(int(pid), 9)
                os.rmdir(d)
            except OSError:
                pass
        time.sleep(0.1)
    assert not os.path.exists(top), f"cgroup {top} left"
