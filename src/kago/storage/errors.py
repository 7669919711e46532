"""Errors of the image store. Each message is one lower-case line naming the image, path or
value at fault and, where there is one, what to do next."""

from kago.errors import KagoError


class StoreError(KagoError):
    """Anything the store refuses or cannot do."""


class ImageNotFound(StoreError):
    def __init__(self, ref, hint="list the store's images, or import or pull it"):
        self.ref = ref
        super().__init__(f"image {ref} not found ({hint})")


class NameTaken(StoreError):
    def __init__(self, name, image_id):
        self.name = name
        self.image_id = image_id
        super().__init__(f"name {name} is taken by image {image_id[:12]} "
                         "(remove or untag it first, or choose another name)")


class ImageInUse(StoreError):
    def __init__(self, ref, containers):
        self.ref = ref
        self.containers = sorted(containers)
        super().__init__(f"image {ref} is used by container(s) {', '.join(self.containers)} "
                         "(remove them first, or use force)")


class RootfsExists(StoreError):
    def __init__(self, cid):
        self.cid = cid
        super().__init__(f"container {cid} already has a root filesystem (remove it first)")


class RootfsNotFound(StoreError):
    def __init__(self, cid):
        self.cid = cid
        super().__init__(f"container {cid} has no root filesystem in this store")


class BadArchive(StoreError):
    """A tar, gzip, xz or zstd stream is corrupt or truncated, or an OCI/docker layout is
    malformed."""


class UnsafeArchive(BadArchive):
    """A layer entry would be written outside its layer (``..``, a hard link out of it) or is
    a kind of file the store does not allow (a device node when devices are refused)."""

    def __init__(self, source, entry, why):
        self.source = source
        self.entry = entry
        super().__init__(f"{source}: entry {entry!r} {why}; refusing the archive")


class DigestMismatch(StoreError):
    def __init__(self, what, expected, actual):
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual} "
                         "(the content is corrupt or was changed; fetch it again)")


class PlatformNotFound(StoreError):
    def __init__(self, what, wanted, available):
        self.wanted = wanted
        self.available = list(available)
        have = ", ".join(self.available) or "none"
        super().__init__(f"{what} has no image for platform {wanted} (it has: {have})")


class RegistryError(StoreError):
    """The registry refused a request or answered something that is not the distribution API."""
