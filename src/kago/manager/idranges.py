"""ROOT/idranges.json, the root's reserved user-namespace ID ranges, read and written under
ROOT/idranges.lock (an flock), so that two creates never take the same block. What a request
gets is decided by ids.py (pure); this module only keeps the table.
"""

import json
import os

from kago.manager import ids


def reserve(paths, cid, mapping, name_of):
    """The container's (uid_map, gid_map) for its IdMapping, reserved in the table; (None,
    None) if it asks for no user namespace (then nothing is locked or read)."""
    if not ids.wanted(mapping):
        return None, None
    from kago.manager import rootless
    space = rootless.id_space()
    with FileLock(_lock_path(paths)):
        table = read(paths)
        uid_map, gid_map = ids.allocate(table, mapping, name_of, space)
        table[cid] = {"uids": uid_map, "gids": gid_map}
        _write(paths, table)
    return uid_map, gid_map


def release(paths, cid):
    release_many(paths, [cid])


def release_many(paths, cids):
    """The ranges of ``cids`` given back in one write of the table."""
    with FileLock(_lock_path(paths)):
        table = read(paths)
        if [table.pop(cid) for cid in cids if cid in table]:
            _write(paths, table)


def read(paths):
    try:
        with open(os.path.join(paths.root, "idranges.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _write(paths, table):
    path = os.path.join(paths.root, "idranges.json")
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps(table))
    os.rename(path + ".tmp", path)


def _lock_path(paths):
    return os.path.join(paths.root, "idranges.lock")


class FileLock:
    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        import fcntl
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
