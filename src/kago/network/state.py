"""kago.network's files: JSON records written by tmp+rename, and flock-based locks.

Layout under ``state_dir``::

    lock                    shared by attach/detach, exclusive for network create/remove
    networks/<name>.json    a network's settings (subnet, bridge, gateway...)
    leases/<name>.json      its IPAM leases: address -> container id, MAC -> container id
    leases/<name>.lock      held while leases/<name>.json is read, changed and written
    attachments/<cid>.json  what a container got (an Attachment), written before the first
                            host object is made so a crashed attach can still be undone
    ports.json (+ .lock)    published host ports -> container id, across all networks

(What all state dirs of the host share, published ports and ip_forward, is in hostwide.py.)
"""

import contextlib
import fcntl
import json
import os

from kago import atomicfile
from kago.network.errors import NetworkError


def read_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as err:
        raise NetworkError(f"{path}: unreadable network state ({err}): remove the file if it "
                           "is stale") from None


def _encode(data):
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def write_json(path, data):
    """Atomic replace: readers see the old or the new record, never half of one."""
    atomicfile.replace(path, _encode(data), mode=0o644)


def create_json(path, data):
    """Create ``path`` complete from its first moment (link(2) of a written temp file);
    FileExistsError if it exists: of racing creators exactly one wins."""
    atomicfile.create(path, _encode(data), mode=0o644)


remove_file = atomicfile.remove


@contextlib.contextmanager
def locked(path, exclusive=True):
    """flock(2) on ``path`` (created if needed): works across processes, released on exit/crash."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class StateDir:
    """Paths of one state directory; creates its subdirectories on first use."""

    __slots__ = ("root",)

    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o700, exist_ok=True)  # addresses, ports: root's only
        for sub in ("networks", "leases", "attachments"):
            os.makedirs(os.path.join(self.root, sub), mode=0o700, exist_ok=True)

    def lock(self, exclusive=False):
        return locked(os.path.join(self.root, "lock"), exclusive)

    def network(self, name):
        return os.path.join(self.root, "networks", f"{name}.json")

    def leases(self, name):
        return os.path.join(self.root, "leases", f"{name}.json")

    def lease_lock_path(self, name):
        return os.path.join(self.root, "leases", f"{name}.lock")

    def lease_lock(self, name):
        return locked(self.lease_lock_path(name))

    def attachment(self, cid):
        return os.path.join(self.root, "attachments", f"{cid}.json")

    def ports(self):
        return os.path.join(self.root, "ports.json")

    def ports_lock(self):
        return locked(os.path.join(self.root, "ports.lock"))

    def network_names(self):
        return sorted(n[:-5] for n in os.listdir(os.path.join(self.root, "networks"))
                      if n.endswith(".json"))

    def attachment_ids(self):
        return sorted(n[:-5] for n in os.listdir(os.path.join(self.root, "attachments"))
                      if n.endswith(".json"))
