"""Files that appear whole: a reader sees the old content or the new, never an empty or
half-written file, whatever the moment the writer dies.

The data goes to a temp file beside the target (same directory, so the same filesystem),
fsynced, then renamed over the target (``replace``) or linked to it (``create``: link(2) fails
with EEXIST, so of several creators exactly one wins). Mode 0600 by default: kago's state
holds containers' environments. The manager's records and kago.network's state use it.

While a ``Batch`` is open (``with Batch() as b``), writes skip their fsync and name their
directory in ``b.dirs`` instead: the opener makes them durable together at its end (the
manager: one syncfs(2) per filesystem). Against a killed process nothing changes (a rename is
atomic whether or not its data reached the disk); only a power loss inside the batch can take
its writes back, as it would take back the processes and mounts they describe.
"""

import os

_batch = None  # the open Batch of this process, if any


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
        if _batch is None:
            os.fsync(fd)
        else:
            _batch.dirs.add(os.path.dirname(path))
    except BaseException:
        os.close(fd)
        remove(tmp)
        raise
    os.close(fd)
    return tmp


class Batch:
    """Writes without a fsync each until the end of the ``with``; ``dirs``: where they went.
    Nested batches are one: only the outermost collects."""

    __slots__ = ("dirs", "outer")

    def __init__(self):
        self.dirs, self.outer = set(), False

    def __enter__(self):
        global _batch
        if _batch is None:
            _batch, self.outer = self, True
        return self

    def __exit__(self, *exc):
        global _batch
        if self.outer:
            _batch = None
