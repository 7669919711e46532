"""Layer drivers: how layers are kept on disk and stacked into a container's root filesystem.

Every driver keeps a layer in its own directory (``layers/<chain id>``) and mounts a
container's root at ``containers/<cid>/rootfs``:

- ``overlay``: a layer holds only its own changes (whiteouts as overlayfs's); a container is an
  overlay of its image's layers (read-only lowers, any depth) plus its own upper directory.
  Making one is O(1) in the image's size.
- ``btrfs``: a layer is a read-only subvolume, a snapshot of its parent with its changes
  applied; a container is a writable snapshot of the top layer, bind-mounted. O(1) too.
- ``vfs``: like btrfs with plain copies (``cp -a --reflink=auto``): works on any filesystem,
  costs a copy of the image per container. The last resort.

ID shifting (see idshift.py): overlay idmaps each lower layer and stacks the overlay on top
(idmapping the overlay mount itself is refused by the kernel, EINVAL), with the upper directory
owned by the container's root; btrfs and vfs idmap the bind mount of the container's copy. Where
the kernel or filesystem refuses an idmapped mount, the container's own layer is re-owned
(``chown``): for overlay with ``metacopy=on``, so only metadata is copied up.
"""

import errno
import os
import shutil
import stat
import subprocess
import sys

from kago.errors import KernelError
from kago.host.rootless import in_user_namespace
from kago.kernel import consts as C
from kago.kernel import libc
from kago.storage import fuseovl, idshift, ovlxattr, syscalls
from kago.storage.errors import StoreError

SHIFTS = ("idmapped", "chown")
# errnos with which the kernel or a filesystem refuses an idmapped mount
_NO_IDMAP = (errno.EINVAL, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS)


def _fd_path(fd):
    return f"/proc/self/fd/{fd}"


class Driver:
    name = None
    apply_mode = "merge"

    def __init__(self, root):
        self.root = root
        self._on_btrfs = None

    # layers
    def stage_layer(self, staged, parent):
        """Make ``staged`` ready to receive a layer applied on top of ``parent`` (a layer path
        or None)."""
        raise NotImplementedError

    def publish_layer(self, staged, final):
        os.rename(staged, final)

    def remove_layer(self, path):
        _rmtree(path)

    # containers
    def create(self, cdir, layers, idmap, shift, userns):
        """Make the container's own layer in ``cdir`` and mount its root; return (shift,
        options) for its record. ``layers``: layer paths, bottom first."""
        raise NotImplementedError

    def mount(self, cdir, layers, record, userns):
        raise NotImplementedError

    def remove(self, cdir):
        _rmtree(cdir, self.on_btrfs())

    def unmounted(self, cdir):
        """After the container's root was unmounted (or found not mounted) here."""

    def on_btrfs(self):
        """Whether the store is on btrfs (read once: a mount table read per removal was a
        third of ``kago down``'s time with a hundred containers)."""
        if self._on_btrfs is None:
            self._on_btrfs = syscalls.fstype_of(self.root) == "btrfs"
        return self._on_btrfs

    def own_tree(self, cdir):
        """The directory that holds the container's files (its diff for overlay)."""
        raise NotImplementedError


class Overlay(Driver):
    name = "overlay"
    apply_mode = "overlay"
    # how a container's root is mounted: fuseovl.NATIVE (overlayfs) or fuseovl.NAME
    # (fuse-overlayfs, in a user namespace whose kernel refuses overlayfs); the store sets it
    mounter = fuseovl.NATIVE

    def stage_layer(self, staged, parent):
        os.mkdir(staged, 0o755)

    def own_tree(self, cdir):
        return os.path.join(cdir, "upper")

    def create(self, cdir, layers, idmap, shift, userns, hide=()):
        """``hide``: paths (relative to /) of the lower layers to whiteout in the container,
        such as the store itself when the base is the host's root."""
        upper, work = os.path.join(cdir, "upper"), os.path.join(cdir, "work")
        os.mkdir(upper)
        os.mkdir(work, 0o700)
        top = os.lstat(layers[-1])
        os.chmod(upper, stat.S_IMODE(top.st_mode))
        if idmap is None:
            os.chown(upper, top.st_uid, top.st_gid)
            _whiteouts(upper, layers[-1], hide, None)
            self._mount(cdir, layers, None, None, "none")
            return "none", ""
        refused = None
        if shift in (None, "idmapped"):
            uid, gid = idshift.shift_owner(top, idmap, layers[-1])
            os.chown(upper, uid, gid)  # the container's root owns its writable root
            _whiteouts(upper, layers[-1], hide, idmap)
            try:
                self._mount(cdir, layers, idmap, userns, "idmapped")
                return "idmapped", ""
            except KernelError as e:
                if shift == "idmapped" or e.errno not in _NO_IDMAP:
                    raise
                refused = e
        os.chown(upper, top.st_uid, top.st_gid)  # chown_tree shifts it with the rest
        _whiteouts(upper, layers[-1], hide, None)
        # metacopy needs trusted.* xattrs: refused to an overlay mounted in a user namespace
        # (the rootless manager's), where chown_tree then copies up whole files
        options = "" if in_user_namespace() else "metacopy=on"
        self._mount(cdir, layers, None, None, "chown", options)
        _chown_after(os.path.join(cdir, "rootfs"), idmap, refused)
        return "chown", options

    def mount(self, cdir, layers, record, userns):
        self._mount(cdir, layers, record.idmap, userns, record.shift, record.options)

    # Older kernels (6.1 does) take no detached mount as an overlay lower layer: overlayfs's
    # clone_private_mount() refuses one ("failed to clone lowerpath", EINVAL). There each
    # idmapped lower is attached under the container's directory for the length of the
    # mount(2) and detached again (overlayfs keeps its own private clones). Learned once.
    attach_lowers = False

    def _mount(self, cdir, layers, idmap, userns, shift, options=""):
        if self.mounter == fuseovl.NAME and shift != "idmapped":
            return self._mount_fuse(cdir, layers)
        try:
            return self._mount_native(cdir, layers, idmap, userns, shift, options)
        except KernelError as e:
            if not fuseovl.falls_back(e.errno, in_user_namespace(), shift):
                raise
            fuseovl.binary(e.errno)  # missing: one line, the refusal and the package
            print(fuseovl.fallback_warning(e.errno), file=sys.stderr)
            self.mounter = fuseovl.NAME
            fuseovl.remember(self.root)
        return self._mount_fuse(cdir, layers)

    def unmounted(self, cdir):
        if self.mounter == fuseovl.NAME:
            fuseovl.stop_daemons(cdir)

    @staticmethod
    def _mount_fuse(cdir, layers):
        fuseovl.stop_daemons(cdir)  # a dead holder's, still writing the same upper
        fuseovl.mount(layers, os.path.join(cdir, "upper"), os.path.join(cdir, "work"),
                      os.path.join(cdir, "rootfs"))

    def _mount_native(self, cdir, layers, idmap, userns, shift, options):
        if shift != "idmapped" or not Overlay.attach_lowers:
            try:
                return self._mount_overlay(cdir, layers, idmap, userns, shift, options)
            except KernelError as e:
                if shift != "idmapped" or e.errno != errno.EINVAL:
                    raise
        self._mount_overlay(cdir, layers, idmap, userns, shift, options, attach=True)
        Overlay.attach_lowers = True

    def _mount_overlay(self, cdir, layers, idmap, userns, shift, options, attach=False):
        """overlay(5) with every path passed as /proc/self/fd/N: short (any depth fits in one
        page of options) and free of the ',' and ':' a store path might contain."""
        fds, attached = [], []
        try:
            for path in reversed(layers):  # overlay lists the top layer first
                if shift == "idmapped":
                    tree = idshift.idmapped_clone(path, userns.get(idmap))
                    fds.append(self._attach_lower(cdir, tree, attached) if attach else tree)
                else:
                    fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
            upper = os.open(os.path.join(cdir, "upper"), os.O_PATH | os.O_CLOEXEC)
            fds.append(upper)
            work = os.open(os.path.join(cdir, "work"), os.O_PATH | os.O_CLOEXEC)
            fds.append(work)
            lower = ":".join(_fd_path(fd) for fd in fds[:-2])
            data = f"lowerdir={lower},upperdir={_fd_path(upper)},workdir={_fd_path(work)}"
            for option in (options, ovlxattr.mount_option()):
                if option:
                    data += "," + option
            target = os.path.join(cdir, "rootfs")
            libc.mount("overlay", target, "overlay", 0, data, shown=target)
        finally:
            for fd in fds:
                os.close(fd)
            if attach:
                _detach_lowers(cdir, attached)

    @staticmethod
    def _attach_lower(cdir, tree_fd, attached):
        """Attach the detached idmapped tree at ``cdir/lowers/N``; an O_PATH fd of it.
        ``tree_fd`` is closed either way."""
        point = os.path.join(cdir, "lowers", str(len(attached)))
        try:
            os.makedirs(point, 0o700)
            try:
                idshift.attach(tree_fd, point)
            except BaseException:
                os.rmdir(point)
                raise
        finally:
            os.close(tree_fd)
        attached.append(point)
        return os.open(point, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _chown_after(root, idmap, refused):
    """The chown fallback; where it cannot map an owner, say why idmapped layers (which map
    such an owner to nobody) were not used."""
    try:
        idshift.chown_tree(root, idmap)
    except StoreError as e:
        if refused is None:
            raise
        raise StoreError(f"{e}; the kernel refused idmapped layers, which would show that "
                         f"owner as nobody: {refused}") from None


def _detach_lowers(cdir, attached):
    """Undo Overlay._attach_lower: detach each lower, remove the mount points."""
    for point in reversed(attached):
        libc.umount2(point, C.MNT_DETACH)
        os.rmdir(point)
    try:
        os.rmdir(os.path.join(cdir, "lowers"))
    except FileNotFoundError:
        pass


def _whiteouts(upper, lower, paths, idmap):
    """Hide ``paths`` of ``lower`` in an overlay: a whiteout at each, under copies of its
    parent directories (same mode and owner, shifted by ``idmap``: an upper directory's
    attributes are what the container sees)."""
    for rel in paths:
        parts = [p for p in rel.split("/") if p]
        if not parts:
            continue
        for depth in range(1, len(parts)):
            here = os.path.join(upper, *parts[:depth])
            if os.path.isdir(here):
                continue
            st = os.lstat(os.path.join(lower, *parts[:depth]))
            os.mkdir(here, stat.S_IMODE(st.st_mode))
            os.chmod(here, stat.S_IMODE(st.st_mode))
            owner = idshift.shift_owner(st, idmap, here) if idmap else (st.st_uid, st.st_gid)
            os.chown(here, *owner)
        os.mknod(os.path.join(upper, *parts), stat.S_IFCHR | 0o600, os.makedev(0, 0))


class _Copying(Driver):
    """btrfs and vfs: the container owns a full tree, bind-mounted (idmapped) at rootfs."""

    def own_tree(self, cdir):
        return os.path.join(cdir, "fs")

    def stage_layer(self, staged, parent):
        self.copy_tree(parent, staged)  # a layer is its parent plus its changes

    def create(self, cdir, layers, idmap, shift, userns):
        fs = self.own_tree(cdir)
        self.copy_tree(layers[-1] if layers else None, fs)
        if idmap is None:
            self.mount(cdir, layers, _Shift("none"), userns)
            return "none", ""
        refused = None
        if shift in (None, "idmapped"):
            try:
                idshift.bind(fs, os.path.join(cdir, "rootfs"), idmap, userns)
                return "idmapped", ""
            except KernelError as e:
                if shift == "idmapped" or e.errno not in _NO_IDMAP:
                    raise
                refused = e
        _chown_after(fs, idmap, refused)
        self.mount(cdir, layers, _Shift("chown"), userns)
        return "chown", ""

    def mount(self, cdir, layers, record, userns):
        idmap = record.idmap if record.shift == "idmapped" else None
        idshift.bind(self.own_tree(cdir), os.path.join(cdir, "rootfs"), idmap, userns)

    def copy_tree(self, source, dest):
        raise NotImplementedError


class _Shift:
    __slots__ = ("idmap", "options", "shift")

    def __init__(self, shift):
        self.shift = shift
        self.idmap = None
        self.options = ""


class Vfs(_Copying):
    name = "vfs"

    def copy_tree(self, source, dest):
        if source is None:
            os.mkdir(dest, 0o755)
            return
        proc = subprocess.run(["cp", "-a", "--reflink=auto", "--", source, dest],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()
            if "No space left" in proc.stderr:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dest)
            raise StoreError(f"copy {source} to {dest}: {err[-1] if err else 'cp failed'}")


class Btrfs(_Copying):
    name = "btrfs"

    def copy_tree(self, source, dest):
        if source is None:
            syscalls.btrfs_subvolume_create(dest)
        else:
            syscalls.btrfs_snapshot(source, dest)

    def publish_layer(self, staged, final):
        os.rename(staged, final)  # first: renaming a read-only subvolume is EROFS
        syscalls.btrfs_set_readonly(final)


def _rmtree(path, on_btrfs=None):
    """Remove a tree; btrfs subvolumes in it are deleted with the ioctl (rmdir cannot delete a
    read-only or non-empty one). Missing is fine. ``on_btrfs``: known already, or None."""
    if not os.path.lexists(path):
        return
    if on_btrfs is None:
        on_btrfs = syscalls.fstype_of(path) == "btrfs"
    if on_btrfs and syscalls.is_btrfs_subvolume(path):
        syscalls.btrfs_subvolume_delete(path)
        return
    if os.path.isdir(path) and not os.path.islink(path):
        for entry in os.scandir(path) if on_btrfs else ():
            # readdir's d_ino of a subvolume is not 256: lstat it
            if entry.is_dir(follow_symlinks=False) and syscalls.is_btrfs_subvolume(entry.path):
                syscalls.btrfs_subvolume_delete(entry.path)
        shutil.rmtree(path)
    else:
        os.unlink(path)


DRIVERS = {"overlay": Overlay, "btrfs": Btrfs, "vfs": Vfs}


def overlay_works(tmp):
    """Whether overlayfs can use ``tmp``'s filesystem as its upper layer (a real mount)."""
    probe = os.path.join(tmp, f"overlay-probe-{os.getpid()}")
    paths = [os.path.join(probe, d) for d in ("lower", "upper", "work", "merged")]
    try:
        for p in [probe] + paths:
            os.mkdir(p)
        os.mknod(os.path.join(paths[0], "wh"), stat.S_IFCHR | 0o600, os.makedev(0, 0))
        data = f"lowerdir={paths[0]},upperdir={paths[1]},workdir={paths[2]}"
        libc.mount("overlay", paths[3], "overlay", 0, data)
        libc.umount2(paths[3], C.MNT_DETACH)
        return True
    except OSError:
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def choose(root, tmp, wanted=None):
    """The driver for a store at ``root``: ``wanted`` if it works there, else btrfs on btrfs,
    overlay where overlayfs accepts the filesystem as upper (or, in a user namespace, where
    fuse-overlayfs is installed), vfs otherwise. ``wanted`` fuse-overlayfs is overlay."""
    if wanted == fuseovl.NAME:  # the overlay driver's layers, mounted by fuse-overlayfs
        fuseovl.binary()
        return "overlay"
    if wanted is not None and wanted not in DRIVERS:
        raise StoreError(f"unknown storage driver {wanted!r} (use overlay, btrfs, vfs or "
                         "fuse-overlayfs)")
    fstype = syscalls.fstype_of(root)
    if wanted == "btrfs" and fstype != "btrfs":
        raise StoreError(f"storage driver btrfs needs the store on btrfs; {root} is on {fstype}")
    if wanted == "overlay" and not overlay_works(tmp):
        raise StoreError(f"storage driver overlay: overlayfs cannot use {root} ({fstype}) as "
                         "its upper layer (use driver vfs, or a store on ext4, xfs or btrfs)")
    if wanted:
        return wanted
    if fstype == "btrfs":
        return "btrfs"
    if overlay_works(tmp):
        return "overlay"
    # a kernel that refuses overlayfs in a user namespace: overlay layers, mounted by
    # fuse-overlayfs (the first mount learns it)
    return "overlay" if in_user_namespace() and shutil.which(fuseovl.NAME) else "vfs"
