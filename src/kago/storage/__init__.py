"""Images and layered storage: a content-addressed store of images and layers,
layer drivers (overlay, btrfs, vfs), cheap ID shifting, commit, OCI/docker archives and a
registry client (``kago.storage.registry``).

    from kago.storage import Store, IdMap
    store = Store("/var/lib/kago/storage")            # driver: btrfs, overlay or vfs, found
    img = store.import_archive("rootfs.tar.gz", name="debian:12")
    rootfs = store.create_rootfs("c1", "debian:12", idmap=IdMap([(0, 100000, 65536)]))
    rootfs.path, rootfs.shift                          # mounted; "idmapped" | "chown" | "none"
    store.remove_rootfs("c1")

See docs/storage.md.
"""

from kago.storage.errors import (
                                 BadArchive,
                                 DigestMismatch,
                                 ImageInUse,
                                 ImageNotFound,
                                 NameTaken,
                                 PlatformNotFound,
                                 RegistryError,
                                 RootfsExists,
                                 RootfsNotFound,
                                 StoreError,
                                 UnsafeArchive,
)
from kago.storage.model import IdMap, ImageInfo, RootfsInfo
from kago.storage.store import DEFAULT_ROOT, HOST_ROOT, Store

__all__ = [
                                 "DEFAULT_ROOT",
                                 "HOST_ROOT",
                                 "BadArchive",
                                 "DigestMismatch",
                                 "IdMap",
                                 "ImageInUse",
                                 "ImageInfo",
                                 "ImageNotFound",
                                 "NameTaken",
                                 "PlatformNotFound",
                                 "RegistryError",
                                 "RootfsExists",
                                 "RootfsInfo",
                                 "RootfsNotFound",
                                 "Store",
                                 "StoreError",
                                 "UnsafeArchive",
]
