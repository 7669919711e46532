"""Files that appear whole: a reader sees the old content or the new, never an empty or
half-written file, whatever the moment the writer dies.

The data goes to a temp file beside the target (same directory, so the same filesystem),
fsynced, then renamed over the target (``replace``) or linked to it (``create``: link(2) fails
with EEXIST, so of several creators exactly one wins). Mode 0600 by default: kago's state
holds containers' environments. The manager's records and kago.network's state use it.
"""

import os


def replace(path, data, mode=0o600):
    """Replace ``path`` with ``data`` (bytes)."""
    tmp = _write_tmp(path, data, mode)
    try:
        os.rename(tmp, path)
    except BaseException:
        remove(tmp)
        raise


def create(path, data, mode=0o600):
    """Create ``path`` holding ``data``; FileExistsError if it exists."""
    tmp = _write_tmp(path, data, mode)
    try:
        os.link(tmp, path)
    finally:
        remove(tmp)


def remove(path):
    """unlink(2); a file already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_tmp(path, data, mode):
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        remove(tmp)
        raise
    os.close(fd)
    return tmp
