"""Write layer tars: from a directory (import of a plain rootfs directory) and from a
container's changes (commit). PAX format, with xattrs as ``SCHILY.xattr.*`` (what docker and
GNU tar read), hard links kept, owners numeric (no user names: the host's passwd means nothing
to the image). The output is gzip-compressed and hashed twice on the way: the blob's digest
and the uncompressed tar's digest (the diff_id).
"""

import gzip
import os
import stat
import tarfile

from kago.storage import ovlxattr
from kago.storage.errors import StoreError
from kago.storage.stream import CHUNK, HashingWriter

GZIP_LEVEL = 3  # zlib level 3: near level 6's size here at twice its speed


class LayerTar:
    """A gzip'd tar being written to ``path``; ``close()`` returns (blob digest, blob size,
    diff_id)."""

    def __init__(self, path):
        self._file = open(path, "wb")
        self._blob = HashingWriter(self._file)
        self._gzip = gzip.GzipFile(fileobj=self._blob, mode="wb", compresslevel=GZIP_LEVEL,
                                   mtime=0)
        self._diff = HashingWriter(self._gzip)
        self.tar = tarfile.open(fileobj=self._diff, mode="w|", format=tarfile.PAX_FORMAT)
        self._links = {}
        self.size = 0

    def add(self, path, name, st=None, owner=None, content=None, xattrs=None):
        """Add the file at ``path`` (not followed) as ``name``. ``owner`` overrides (uid, gid);
        ``content`` is where to read a regular file's bytes if not ``path``; ``xattrs``
        overrides the file's own."""
        st = st or os.lstat(path)
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = owner or (st.st_uid, st.st_gid)
        info.mtime = st.st_mtime
        info.uname = info.gname = ""
        attrs = read_xattrs(path) if xattrs is None else xattrs
        if attrs:
            info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                                for k, v in attrs.items()}
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFREG and st.st_nlink > 1:
            first = self._links.get((st.st_dev, st.st_ino))
            if first is not None:
                info.type, info.linkname = tarfile.LNKTYPE, first
                self.tar.addfile(info)
                return
            self._links[(st.st_dev, st.st_ino)] = name
        if kind == stat.S_IFREG:
            info.size = st.st_size
            self._add_file(info, content or path)
            return
        if kind == stat.S_IFDIR:
            info.type = tarfile.DIRTYPE
        elif kind == stat.S_IFLNK:
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            info.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif kind == stat.S_IFIFO:
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets are not archived (as tar and docker do)
        self.tar.addfile(info)

    def _add_file(self, info, path):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb") as f:
            try:
                self.tar.addfile(info, _Exactly(f, info.size, path))
            except _Changed:
                raise StoreError(f"{path} changed size while it was archived "
                                 "(pause the container and commit again)") from None
        self.size += info.size

    def whiteout(self, name, marker=".wh."):
        """A whiteout entry: ``dir/.wh.NAME`` (or the opaque marker ``dir/.wh..wh..opq``)."""
        head, _, base = name.rpartition("/")
        info = tarfile.TarInfo((head + "/" if head else "") + marker + base)
        info.mode = 0o600
        info.uname = info.gname = ""
        self.tar.addfile(info)

    def opaque(self, dirname):
        self.whiteout(dirname + "/" if dirname else "", ".wh..wh..opq")

    def add_tree(self, root):
        """Every entry under ``root`` (not crossing into other filesystems), sorted."""
        root_dev = os.lstat(root).st_dev
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                self.add(path, name if rel == "." else f"{rel}/{name}", st)
            dirnames[:] = [d for d in dirnames
                           if os.lstat(os.path.join(dirpath, d)).st_dev == root_dev]

    def close(self):
        self.tar.close()
        self._gzip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._blob.digest(), self._blob.size, self._diff.digest()

    def abort(self):
        for f in (self.tar, self._gzip, self._file):
            try:
                f.close()
            except Exception:  # noqa: BLE001 - already failing; the file is removed anyway
                pass


class _Changed(Exception):
    pass


class _Exactly:
    """``size`` bytes of ``f``: tarfile trusts the header's size, a live file may not."""

    def __init__(self, f, size, path):
        self.f = f
        self.left = size

    def read(self, n=CHUNK):
        n = min(n, self.left)
        data = self.f.read(n)
        if len(data) < n:
            raise _Changed()
        self.left -= len(data)
        return data


def read_xattrs(path):
    """A file's xattrs (symlinks' own are not read), overlayfs's private ones left out."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in names:
        if ovlxattr.private(name):
            continue
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out
