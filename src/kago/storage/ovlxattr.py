"""overlayfs's own xattrs: which namespace of names this process's overlay mounts use.

Mounted by host root, overlayfs keeps its opaque, redirect and metacopy marks in
``trusted.overlay.*``. Mounted in a user namespace (the rootless manager's holder) it may not
write trusted xattrs and is mounted with ``userxattr``: the same marks are then
``user.overlay.*``. Layers extracted and uppers read by such a manager use those names.
fuse-overlayfs (fuseovl.py) marks its uppers with ``user.fuseoverlayfs.*``. All are the
overlay's private state: never archived, never taken from an archive.
"""

from kago.host.rootless import in_user_namespace

PRIVATE = ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs.")  # the last: fuseovl.py


def prefix():
    """``user.overlay.`` inside a user namespace (overlay mounted with userxattr), else
    ``trusted.overlay.``."""
    return PRIVATE[1] if in_user_namespace() else PRIVATE[0]


def mount_option():
    """The overlay mount option this process needs: ``userxattr`` in a user namespace (the
    kernel refuses trusted xattrs there: opaque directories would fail with EIO), else none."""
    return "userxattr" if in_user_namespace() else ""


def private(name):
    return name.startswith(PRIVATE)
