"""The parent cgroups kago made (``--cgroup-parent /web``, a definition's group), host-wide.

A parent is made by the first container that needs it, but the last one to leave it is often
another: each container's own record cannot say that the parent is kago's to remove. So the
directory is noted here when it is made, and whichever container leaves it empty removes it
(a parent that was there before kago is never noted, so it stays).

    ROOT/<sha256 of the directory, 32 hex>   "INODE DIRECTORY\n", one per parent kago made

The inode tells the directory kago made from one made again at the same path by someone else
after it went (kernfs does not reuse them): such an entry is stale, and dropped.

Best effort: where ROOT cannot be written (a user's runtime), nothing is noted and a parent
goes only with the container that made it, as before.
"""

import os

ROOT = "/run/kago/host/cgroup-parents"


def _entry(directory):
    # _sha256, not hashlib: hashlib loads OpenSSL (~4 ms), on every kago-oci call's path
    import _sha256
    return os.path.join(ROOT, _sha256.sha256(directory.encode()).hexdigest()[:32])


def note(directory):
    """``directory`` (an absolute cgroup directory) was made by kago."""
    try:
        text = f"{os.stat(directory).st_ino} {directory}\n"
        os.makedirs(ROOT, mode=0o700, exist_ok=True)
        fd = os.open(_entry(directory), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def made(directory):
    """Whether kago made ``directory`` (the one there now)."""
    try:
        with open(_entry(directory)) as f:
            ino, _, _path = f.read().partition(" ")
        if int(ino) == os.stat(directory).st_ino:
            return True
    except (OSError, ValueError):
        return False
    _unlink(_entry(directory))  # made again by someone else since: not ours
    return False


def forget(directory):
    """``directory`` was removed. Made again meanwhile (a container starting in the group
    mkdirs it between our rmdir and here), it stays noted."""
    if _unlink(_entry(directory)) and os.path.isdir(directory):
        note(directory)


def _unlink(path):
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


def ancestors(leaf, levels):
    """The ``levels`` directories above ``leaf``, deepest first."""
    out = []
    for _ in range(levels):
        leaf = os.path.dirname(leaf)
        out.append(leaf)
    return out
