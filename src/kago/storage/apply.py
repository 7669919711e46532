"""Apply a layer tar to a directory, safely.

Every entry is written relative to a directory fd that the kernel resolved inside the layer
(openat2 with RESOLVE_IN_ROOT): a symlink in the archive, absolute or relative, can only lead
to another place inside the layer, never out of it. Names are cleaned first: a leading ``/`` is
dropped (as tar and docker do) and any ``..`` component refuses the archive. The last component
is never followed: files are created with O_EXCL|O_NOFOLLOW after whatever was at that name is
removed, so an archive cannot write through a symlink or a hard link it planted earlier. Hard
links must point to an entry already in the layer; device nodes follow the store's policy.

Two ways to apply, by driver:
- ``overlay``: each layer is its own directory; a whiteout ``.wh.NAME`` becomes overlayfs's
  whiteout (a 0:0 character device) and ``.wh..wh..opq`` the ``trusted.overlay.opaque`` xattr
  (``user.overlay.opaque`` in a user namespace: ovlxattr.py).
- ``merge``: the layer is applied on a copy of its parent (btrfs snapshot, plain copy); a
  whiteout deletes the name, an opaque marker deletes what earlier layers put in the directory.

Ownership, modes, xattrs (pax ``SCHILY.xattr.*``), times, hard links, fifos and device nodes
are kept. overlayfs's own xattrs in an archive (``trusted.overlay.*``, ``user.overlay.*``) are
dropped: they would steer overlayfs.
"""

import errno
import os
import shutil
import stat
import tarfile

from kago.errors import KernelError
from kago.kernel import rooted
from kago.storage import ovlxattr
from kago.storage.errors import BadArchive, StoreError, UnsafeArchive
from kago.storage.stream import CHUNK, corrupt_errors, is_enospc

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
DEVICE_POLICIES = ("allow", "skip", "refuse")


def clean(name, source):
    """The path components of an archive name, ``..`` refused and ``/``/``.`` dropped."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(source, name, "has a '..' component that could leave the layer")
    return parts


def xattrs_of(info):
    """{name: bytes} from a tar entry's pax headers (GNU tar/docker and libarchive forms)."""
    out = {}
    for key, value in info.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            out[key[13:]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            import base64
            import urllib.parse
            name = urllib.parse.unquote(key[17:])
            out[name] = base64.b64decode(value + "=" * (-len(value) % 4))
    return {k: v for k, v in out.items() if not ovlxattr.private(k)}


class Applier:
    """Writes the entries of one tar stream under ``root``; see the module docstring."""

    def __init__(self, root, mode, source, devices="allow", recorder=None):
        if mode not in ("overlay", "merge"):
            raise ValueError(mode)
        if devices not in DEVICE_POLICIES:
            raise StoreError(f"device policy {devices!r}: use one of {', '.join(DEVICE_POLICIES)}")
        self.root = root
        self.mode = mode
        self.source = source
        self.devices = devices
        self.recorder = recorder  # a tarsplit.Recorder: told where each entry's content went
        self._told = False
        self.size = 0
        self.newest = None      # the newest mtime of any entry (an import's reproducible date)
        self.seen = set()       # paths this layer wrote (for opaque dirs in merge mode)
        self.dir_times = []     # (path, mtime): set last, children change a dir's mtime
        self._cache = (None, None)

    def run(self, stream):
        rootfd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.rootfd = rootfd
        try:
            try:
                with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tar:
                    for info in tar:
                        self._told = False
                        self.entry(tar, info)
                        self._tell(info, None)
            except corrupt_errors() as e:
                if isinstance(e, (StoreError, KernelError)) or is_enospc(e):
                    raise
                raise BadArchive(f"{self.source}: corrupt or truncated archive ({_why(e)})") from None
            self._set_dir_times()
        finally:
            self._drop_cache()
            os.close(rootfd)
        return self.size

    # --- entries ------------------------------------------------------------------------------

    def entry(self, tar, info):
        parts = clean(info.name, self.source)
        if self.newest is None or info.mtime > self.newest:
            self.newest = info.mtime
        if not parts:
            if not info.isdir():
                raise UnsafeArchive(self.source, info.name, "replaces the layer's root")
            self._meta(self.rootfd, ".", info, root=True)
            return
        base = parts[-1]
        if base.startswith(WHITEOUT):
            return self.whiteout(parts[:-1], base)
        pfd = self.parent(parts[:-1], info.name)
        path = "/".join(parts)
        try:
            self.make(tar, pfd, base, info, path)
        except OSError as e:
            if is_enospc(e) or isinstance(e, StoreError):
                raise
            if e.errno == errno.EINVAL and _unmapped(info):
                # a user's manager: the owner is not an ID of the user's namespace
                raise StoreError(f"{self.source}: entry {info.name!r} is owned by "
                                 f"{info.uid}:{info.gid}, beyond the IDs of this user "
                                 "namespace (the user's subordinate IDs): add subordinate "
                                 "IDs (usermod --add-subuids/--add-subgids) to hold it") from None
            raise StoreError(f"{self.source}: cannot write entry {info.name!r}: "
                             f"{os.strerror(e.errno).lower() if e.errno else e}") from None
        self.seen.add(path)

    def make(self, tar, pfd, base, info, path):
        existing = _lstat(pfd, base)
        if info.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                self._remove(pfd, base, existing)
                os.mkdir(base, 0o700, dir_fd=pfd)
            self._meta(pfd, base, info)
            self.dir_times.append((path, info.mtime))
            return
        if info.islnk():
            return self.hardlink(pfd, base, info, path, existing)
        self._remove(pfd, base, existing)
        if info.isreg():
            self._write_file(tar, pfd, base, info, path)
        elif info.issym():
            os.symlink(info.linkname, base, dir_fd=pfd)
        elif info.ischr() or info.isblk():
            if not self._device_allowed(info):
                return
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(info.devmajor, info.devminor), dir_fd=pfd)
        elif info.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            raise UnsafeArchive(self.source, info.name, f"has an unsupported type {info.type!r}")
        self._meta(pfd, base, info)

    def _tell(self, info, path):
        """Tell the recorder (once per entry, before its content is read) where it went."""
        if self.recorder is None or self._told:
            return
        self._told = True
        if info.issparse():
            self.recorder.skip()
        else:
            self.recorder.entry(info.offset_data, info.size, path)

    def _write_file(self, tar, pfd, base, info, path):
        self._tell(info, path)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=pfd)
        with open(fd, "wb", closefd=True) as out:
            src = tar.extractfile(info)
            while chunk := src.read(CHUNK):
                out.write(chunk)
        self.size += info.size

    def hardlink(self, pfd, base, info, path, existing):
        tparts = clean(info.linkname, self.source)
        if not tparts:
            raise UnsafeArchive(self.source, info.name, "is a hard link to the layer's root")
        if "/".join(tparts) == path:
            return  # a link to itself: nothing to do
        try:
            tpfd = rooted.open_in_root(self.rootfd, "/".join(tparts[:-1]),
                                       os.O_PATH | os.O_DIRECTORY)
        except KernelError:
            tpfd = None
        try:
            target = None if tpfd is None else _lstat(tpfd, tparts[-1])
            if target is None:
                raise UnsafeArchive(self.source, info.name,
                                    f"is a hard link to {info.linkname!r}, which is not in the layer")
            if stat.S_ISDIR(target.st_mode):
                raise UnsafeArchive(self.source, info.name, "is a hard link to a directory")
            self._remove(pfd, base, existing)
            os.link(tparts[-1], base, src_dir_fd=tpfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            if tpfd is not None:
                os.close(tpfd)

    def _device_allowed(self, info):
        if self.devices == "allow":
            return True
        if self.devices == "refuse":
            raise UnsafeArchive(self.source, info.name,
                                "is a device node and the store refuses them")
        return False

    # --- whiteouts ----------------------------------------------------------------------------

    def whiteout(self, dir_parts, base):
        if base == OPAQUE:
            return self._opaque(dir_parts)
        if base.startswith(WHITEOUT + WHITEOUT):
            return  # other aufs metadata (.wh..wh.plnk, ...): meaningless here
        name = base[len(WHITEOUT):]
        if self.mode == "overlay":
            pfd = self.parent(dir_parts, "/".join(dir_parts + [base]))
            self._remove(pfd, name, _lstat(pfd, name))
            os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
            self.seen.add("/".join(dir_parts + [name]))
            return
        pfd = self._existing_dir(dir_parts)
        if pfd is not None:
            self._remove(pfd, name, _lstat(pfd, name))

    def _opaque(self, dir_parts):
        if self.mode == "overlay":
            pfd = self.parent(dir_parts, "/".join(dir_parts + [OPAQUE]))
            os.setxattr(rooted.fdpath(pfd), ovlxattr.prefix() + "opaque", b"y")
            return
        prefix = "/".join(dir_parts)
        try:
            dfd = rooted.open_in_root(self.rootfd, prefix or "/", os.O_RDONLY | os.O_DIRECTORY)
        except KernelError:
            return
        try:
            for name in os.listdir(dfd):
                if (f"{prefix}/{name}" if prefix else name) not in self.seen:
                    self._remove(dfd, name, _lstat(dfd, name))
        finally:
            os.close(dfd)

    # --- helpers ------------------------------------------------------------------------------

    def parent(self, parts, shown):
        """An O_PATH fd of the entry's directory, resolved inside the layer (made if missing).
        The last one is cached: archives list a directory's entries together."""
        path = "/".join(parts)
        if self._cache[0] == path:
            return self._cache[1]
        self._drop_cache()
        try:
            fd = rooted.mkdirs_in_root(self.rootfd, path or "/")
        except KernelError as e:
            if e.errno == errno.ENOTDIR:
                raise BadArchive(f"{self.source}: entry {shown!r} is below something that is "
                                 "not a directory") from None
            if is_enospc(e):
                raise OSError(e.errno, os.strerror(e.errno)) from None
            raise StoreError(f"{self.source}: entry {shown!r}: {e}") from None
        self._cache = (path, fd)
        return fd

    def _existing_dir(self, parts):
        try:
            return self.parent_noncreate(parts)
        except KernelError:
            return None

    def parent_noncreate(self, parts):
        path = "/".join(parts)
        if self._cache[0] == path:
            return self._cache[1]
        self._drop_cache()
        fd = rooted.open_in_root(self.rootfd, path or "/", os.O_PATH | os.O_DIRECTORY)
        self._cache = (path, fd)
        return fd

    def _drop_cache(self):
        if self._cache[1] is not None:
            os.close(self._cache[1])
        self._cache = (None, None)

    def _remove(self, pfd, name, st):
        """Remove ``name`` in ``pfd`` (a whole tree if a directory), never following links."""
        if st is None:
            return
        cached = self._cache[1]
        if stat.S_ISDIR(st.st_mode):
            if cached is not None and cached != pfd:
                self._drop_cache()  # the cached directory may be inside what goes away
            shutil.rmtree(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def _meta(self, pfd, name, info, root=False):
        """Owner, mode, xattrs and (but for directories) times, in the order that keeps them:
        chown clears setuid bits and file capabilities, so it comes first."""
        link = info.issym()
        os.chown(name, info.uid, info.gid, dir_fd=pfd, follow_symlinks=False)
        if link:
            os.utime(name, ns=(int(info.mtime * 10**9),) * 2, dir_fd=pfd, follow_symlinks=False)
            return
        os.chmod(name, info.mode & 0o7777, dir_fd=pfd, follow_symlinks=False)
        xattrs = xattrs_of(info)
        if xattrs:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                for key, value in xattrs.items():
                    os.setxattr(rooted.fdpath(fd), key, value)
            finally:
                os.close(fd)
        if root:
            self.dir_times.append(("", info.mtime))
        elif not info.isdir():
            os.utime(name, ns=(int(info.mtime * 10**9),) * 2, dir_fd=pfd, follow_symlinks=False)

    def _set_dir_times(self):
        self._drop_cache()
        for path, mtime in reversed(self.dir_times):
            try:
                fd = rooted.open_in_root(self.rootfd, path or "/", os.O_PATH | os.O_DIRECTORY)
            except KernelError:
                continue  # removed by a later whiteout
            try:
                os.utime(rooted.fdpath(fd), ns=(int(mtime * 10**9),) * 2)
            finally:
                os.close(fd)


def _lstat(dirfd, name):
    try:
        return os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _why(err):
    text = str(err) or type(err).__name__
    return text[0].lower() + text[1:] if text else text


def apply_layer(stream, root, mode, source, devices="allow"):
    """Apply the tar ``stream`` under ``root``; returns the bytes of file content written."""
    return Applier(root, mode, source, devices).run(stream)


def _unmapped(info):
    """True when the entry's owner is not mapped in this process's user namespace."""
    from kago.host.holder import id_space
    try:
        with open("/proc/self/uid_map") as f:
            uids = id_space(f.read())
        with open("/proc/self/gid_map") as f:
            gids = id_space(f.read())
    except OSError:
        return False
    return info.uid > uids or info.gid > gids
