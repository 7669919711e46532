"""The parent cgroups kago made (``--cgroup-parent /web``, a definition's group), host-wide.

A parent is made by the first container that needs it, but the last one to leave it is often
another: each container's own record cannot say that the parent is kago's to remove. So the
directory is noted here when it is made, and whichever container leaves it empty removes it
(a parent that was there before kago is never noted, so it stays).

    ROOT/<sha256 of the directory, 32 hex>   one empty file per parent directory kago made

Best effort: where ROOT cannot be written (a user's runtime), nothing is noted and a parent
goes only with the container that made it, as before.
"""

import hashlib
import os

ROOT = "/run/kago/host/cgroup-parents"


def _entry(directory):
    return os.path.join(ROOT, hashlib.sha256(directory.encode()).hexdigest()[:32])


def note(directory):
    """``directory`` (an absolute cgroup directory) was made by kago."""
    try:
        os.makedirs(ROOT, mode=0o700, exist_ok=True)
        os.close(os.open(_entry(directory), os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        pass


def made(directory):
    return os.path.exists(_entry(directory))


def forget(directory):
    """``directory`` was removed. Made again meanwhile (a container starting in the group
    mkdirs it between our rmdir and here), it stays noted."""
    try:
        os.unlink(_entry(directory))
    except OSError:
        return
    if os.path.isdir(directory):
        note(directory)


def ancestors(leaf, levels):
    """The ``levels`` directories above ``leaf``, deepest first."""
    out = []
    for _ in range(levels):
        leaf = os.path.dirname(leaf)
        out.append(leaf)
    return out
