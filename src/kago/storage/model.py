"""The store's value types: IdMap, ImageInfo, RootfsInfo, Layer; chain IDs and the host's platform."""

import datetime
import hashlib
import platform

from kago.storage.errors import StoreError

MAX_ID = 2**32 - 2  # (uid_t)-1 is "no change" to chown(2)


class IdMap:
    """User-namespace ID maps: lists of (inside, outside, size) for uids and gids.

    ``gids`` defaults to ``uids``. ``to_host``/``to_container`` translate one ID and return None
    for an ID the map does not cover (as the kernel does, which shows it as the overflow ID).
    """

    __slots__ = ("gids", "uids")

    def __init__(self, uids, gids=None):
        self.uids = _ranges("uids", uids)
        self.gids = _ranges("gids", uids if gids is None else gids)

    @classmethod
    def shifted(cls, host_root, size=65536):
        """The usual map: container IDs 0..size-1 are host IDs host_root.. ."""
        return cls([(0, host_root, size)])

    def key(self):
        """A stable text for caches and records: 'u0:100000:65536,g0:100000:65536'."""
        return ",".join([f"u{i}:{o}:{s}" for i, o, s in self.uids]
                        + [f"g{i}:{o}:{s}" for i, o, s in self.gids])

    def to_json(self):
        return {"uids": [list(r) for r in self.uids], "gids": [list(r) for r in self.gids]}

    @classmethod
    def from_json(cls, data):
        return None if data is None else cls(data["uids"], data["gids"])

    def root(self):
        """The host (uid, gid) of the container's root; None where root is not mapped."""
        return _translate(self.uids, 0, 0, 1), _translate(self.gids, 0, 0, 1)

    def uid_to_host(self, uid):
        return _translate(self.uids, uid, 0, 1)

    def gid_to_host(self, gid):
        return _translate(self.gids, gid, 0, 1)

    def uid_to_container(self, uid):
        return _translate(self.uids, uid, 1, 0)

    def gid_to_container(self, gid):
        return _translate(self.gids, gid, 1, 0)

    def __eq__(self, other):
        return isinstance(other, IdMap) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        return f"IdMap(uids={self.uids!r}, gids={self.gids!r})"


def _ranges(what, ranges):
    out = []
    try:
        for inside, outside, size in ranges:
            r = (int(inside), int(outside), int(size))
            if min(r) < 0 or r[2] == 0 or max(r[0], r[1]) + r[2] - 1 > MAX_ID:
                raise ValueError
            out.append(r)
    except (TypeError, ValueError):
        raise StoreError(f"idmap {what}: {ranges!r} is not a list of (inside, outside, size) "
                         "with sizes > 0 and IDs below 2^32-1") from None
    if not out:
        raise StoreError(f"idmap {what}: at least one (inside, outside, size) range is needed")
    for col in (0, 1):
        spans = sorted((r[col], r[col] + r[2]) for r in out)
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            raise StoreError(f"idmap {what}: ranges {out!r} overlap")
    return out


def _translate(ranges, value, src, dst):
    for r in ranges:
        if r[src] <= value < r[src] + r[2]:
            return r[dst] + value - r[src]
    return None


def now_rfc3339():
    """UTC now as RFC 3339 with seconds: 2024-05-01T12:00:00Z (what OCI configs carry)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(timestamp):
    """A unix time as RFC 3339 in UTC, whole seconds (a file's mtime as an image's date)."""
    return datetime.datetime.fromtimestamp(int(timestamp), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


class ImageInfo:
    """An image as callers see it.

    ``id`` is the sha256 hex of its config blob; ``layers`` the digests of its layers'
    uncompressed tars (the config's rootfs.diff_ids), bottom first; ``config`` the OCI image
    config's ``config`` object (Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, ...);
    ``size`` the bytes of file content in its layers; ``given`` (from an import, load or
    pull) the names that command gave it, of ``names``; ``digest`` (from a pull) the digest
    of the manifest it was pulled by.
    """

    __slots__ = ("architecture", "author", "config", "created", "digest", "given", "history",
                 "id", "layers", "names", "os", "size")

    def __init__(self, id, names, created, size, layers, config, author=None, history=(),
                 architecture=None, os=None, given=()):
        self.id = id
        self.names = list(names)
        self.given = list(given)  # the names the import or pull that returned it gave it
        self.digest = None  # a pull's: the manifest's digest, "sha256:..."
        self.created = created
        self.size = size
        self.layers = list(layers)
        self.config = config
        self.author = author
        self.history = list(history)
        self.architecture = architecture
        self.os = os

    def to_json(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self):
        return f"ImageInfo(id={self.id[:12]!r}, names={self.names!r}, size={self.size})"


class RootfsInfo:
    """A container's root filesystem: where it is mounted, by which driver, and how its files
    were shifted to the container's IDs: "idmapped" (an idmapped mount, nothing copied),
    "chown" (its own copy re-owned) or "none" (no idmap)."""

    __slots__ = ("cid", "driver", "idmap", "image_id", "mounted", "path", "shift")

    def __init__(self, cid, path, driver, shift, image_id=None, idmap=None, mounted=False):
        self.cid = cid
        self.path = path
        self.driver = driver
        self.shift = shift
        self.image_id = image_id
        self.idmap = idmap
        self.mounted = mounted

    def __repr__(self):
        return (f"RootfsInfo(cid={self.cid!r}, path={self.path!r}, driver={self.driver!r}, "
                f"shift={self.shift!r})")


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform():
    """The host's OCI platform: ("linux", "amd64") and so on."""
    machine = platform.machine()
    return "linux", _ARCH.get(machine, machine)


def chain_id(parent, diff_id):
    """OCI ChainID: a layer's identity given everything under it."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


class Layer:
    """A layer to stack: its blob (digest, size, media type) and, once read, its diff_id."""

    __slots__ = ("chain", "content_size", "diff_id", "digest", "media_type", "newest", "path",
                 "size", "split", "tar_size")

    def __init__(self, digest, size, media_type, diff_id=None, path=None):
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self.diff_id = diff_id
        self.path = path            # where the blob's bytes are (staged or in the store)
        self.chain = None
        self.content_size = 0
        self.newest = None          # the newest mtime in its tar, once applied
        self.split = None           # its tar-split file, once applied, if it plays back
        self.tar_size = None        # bytes of its uncompressed tar

    def to_json(self):
        return {"digest": self.digest, "size": self.size, "media_type": self.media_type,
                "diff_id": self.diff_id}
