"""The store's files and its lock.

    <root>/driver                     the layer driver, fixed when the store is made
    <root>/lock                       flock(2): every change holds it exclusively
    <root>/blobs/sha256/<hex>         content-addressed blobs: layer tars, configs
    <root>/layers/<chain hex>/        a layer's files (driver-specific form)
    <root>/layers/<chain hex>.json    its record: diff_id, parent, size
    <root>/images/<id>.json           an image: names, config digest, layers (blob + diff_id)
    <root>/containers/<cid>/          a container's own layer; rootfs/ is where it is mounted
    <root>/containers/<cid>/rootfs.json   its record (written last: no record = half made)
    <root>/tmp/<pid>-<random>/        staging of one command; gc removes it once <pid> is gone

Nothing is visible until it is renamed into place under the lock, so a command that fails or
dies (a full disk, a corrupt layer, a kill) leaves only staging behind, which no reader looks at.
Records are JSON written to a temporary file and renamed; all but containers' are fsynced
first (see read_container_record).
"""

import fcntl
import json
import os
import threading
import time

from kago.storage.errors import StoreError
from kago.storage.stream import fsync_dir

LOCK_TIMEOUT = 600.0


class StoreLock:
    """An exclusive flock on <root>/lock, re-entrant within a process (and thread-safe)."""

    def __init__(self, path, timeout=LOCK_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._mutex = threading.RLock()
        self._fd = None
        self._depth = 0

    def __enter__(self):
        self._mutex.acquire()
        try:
            if self._depth == 0:
                self._fd = self._acquire()
        except BaseException:
            self._mutex.release()
            raise
        self._depth += 1
        return self

    def _acquire(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreError(f"store lock {self.path} is held by another command for "
                                     f"over {self.timeout:.0f} s (is one stuck?)") from None
                time.sleep(0.02)

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            os.close(self._fd)  # releases the flock
            self._fd = None
        self._mutex.release()


def write_json(path, data, sync=True):
    """Replace ``path`` atomically with ``data`` as JSON. ``sync``: durable before return
    (fsync of the file, then of its directory); without it a rename still never exposes a
    partial file to a reader or after a process crash, but a power loss may keep the rename
    and not the data: an empty file (see read_container_record)."""
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync:
        fsync_dir(os.path.dirname(path))


def read_json(path):
    """The JSON in ``path``; None if it does not exist."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise StoreError(f"store record {path} is corrupt ({e}); remove it or run gc") from None


def read_container_record(path):
    """A container's rootfs.json; None if there is none, or if it is empty.

    Container records are not fsynced (the file and directory fsyncs cost ``create_rootfs``
    0.5-0.8 ms, more on a busy disk). A power loss within the filesystem's writeback delay
    (ext4: a journal commit every 5 s, file data up to 30 s) can lose the record or leave it
    empty: that container counts as half made, as if the crash had come before its record
    (gc removes its layer, whose own writes were no more durable). A non-empty unreadable
    record is still an error. See docs/storage.md, Durability.
    """
    try:
        if os.stat(path).st_size == 0:
            return None
    except FileNotFoundError:
        return None
    return read_json(path)


def container_half_made(path):
    """No record, or an empty one (a power loss before its data reached the disk)."""
    try:
        return os.stat(path).st_size == 0
    except FileNotFoundError:
        return True


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
