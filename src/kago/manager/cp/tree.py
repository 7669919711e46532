"""The copy's entries: read from a directory tree or a tar stream, written into a directory
tree or a tar stream.

An ``Entry`` is one file, directory, symlink, hard link, FIFO or device with its mode,
owner (as its side sees it: a container's IDs as the container sees them), modification
time and, for a file, an open binary stream of its data (read before the next entry).

Reading never follows a symlink below the source's top: each directory is opened with
O_NOFOLLOW relative to its parent's descriptor, and what is reported is the fstat of what was
opened. Writing reaches every parent directory through kago.kernel.rooted (openat2 with
RESOLVE_IN_ROOT) from the root it writes into (a container's root, or the destination
directory on this host), so a symlink, planted before or during the copy, resolves inside
that root; each entry is made relative to its parent's descriptor with O_NOFOLLOW / O_EXCL.
"""

import dataclasses
import errno
import os
import posixpath
import stat
import tarfile

from kago.kernel import rooted
from kago.manager.cp.rules import CopyError, archive_name, member_name

_CHUNK = 1 << 20


@dataclasses.dataclass
class Entry:
    name: str            # relative to the source's top ("" for the top)
    kind: str            # dir, file, symlink, hardlink, fifo, char, block
    mode: int            # permission bits with setuid/setgid/sticky
    uid: int
    gid: int
    mtime_ns: int
    size: int = 0
    target: str = ""     # a symlink's target; a hard link's entry name
    rdev: int = 0
    data: object = None  # a binary stream (files)


_KINDS = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"),
          (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"))


def _kind(st):
    for test, kind in _KINDS:
        if test(st.st_mode):
            return kind
    return None  # a socket: not copied (tar's and docker's rule)


# --- reading a tree -----------------------------------------------------------------------------

def read_tree(pfd, name, ids=None):
    """The entries of ``name`` in directory ``pfd`` (``name`` None: ``pfd`` itself, an O_PATH
    descriptor of the source with its symlink followed), top first. ``ids`` (uid, gid) ->
    (uid, gid) shows owners as the source's side sees them."""
    seen = {}
    yield from _walk(pfd, name, "", ids or (lambda u, g: (u, g)), seen)


def _open(pfd, name, flags):
    if name is None:
        return os.open(rooted.fdpath(pfd), flags | os.O_CLOEXEC)
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)


def _walk(pfd, name, rel, ids, seen):
    st = os.fstat(pfd) if name is None else os.stat(name, dir_fd=pfd, follow_symlinks=False)
    kind = _kind(st)
    if kind is None:
        return
    if kind == "symlink":
        uid, gid = ids(st.st_uid, st.st_gid)
        yield Entry(rel, "symlink", stat.S_IMODE(st.st_mode), uid, gid, st.st_mtime_ns,
                    target=os.readlink(name, dir_fd=pfd))
        return
    if kind == "dir":
        fd = _open(pfd, name, os.O_RDONLY | os.O_DIRECTORY)
        try:
            st = os.fstat(fd)  # what was opened (a swap since the stat fails the open)
            uid, gid = ids(st.st_uid, st.st_gid)
            yield Entry(rel, "dir", stat.S_IMODE(st.st_mode), uid, gid, st.st_mtime_ns)
            for child in sorted(os.listdir(fd)):
                yield from _walk(fd, child, posixpath.join(rel, child) if rel else child,
                                 ids, seen)
        finally:
            os.close(fd)
        return
    if kind == "file":
        # O_NONBLOCK: a FIFO swapped in since the stat must not hang the copy
        fd = _open(pfd, name, os.O_RDONLY | os.O_NONBLOCK)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise CopyError(f"{rel or name}: changed while it was copied")
        uid, gid = ids(st.st_uid, st.st_gid)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            os.close(fd)
            yield Entry(rel, "hardlink", stat.S_IMODE(st.st_mode), uid, gid, st.st_mtime_ns,
                        target=seen[key])
            return
        if st.st_nlink > 1:
            seen[key] = rel
        with os.fdopen(fd, "rb") as data:
            yield Entry(rel, "file", stat.S_IMODE(st.st_mode), uid, gid, st.st_mtime_ns,
                        size=st.st_size, data=data)
        return
    uid, gid = ids(st.st_uid, st.st_gid)
    yield Entry(rel, kind, stat.S_IMODE(st.st_mode), uid, gid, st.st_mtime_ns, rdev=st.st_rdev)


# --- tar streams --------------------------------------------------------------------------------

def read_tar(stream):
    """The entries of a tar stream (names made relative; ``..`` refused)."""
    try:
        archive = tarfile.open(fileobj=stream, mode="r|*")
    except tarfile.TarError as e:
        raise CopyError(f"the input is not a tar archive: {e}") from None
    with archive:
        try:
            for m in archive:
                name = member_name(m.name)
                common = dict(mode=m.mode & 0o7777, uid=m.uid, gid=m.gid,
                              mtime_ns=int(m.mtime * 1e9))
                if m.isdir():
                    yield Entry(name, "dir", **common)
                elif m.isreg():
                    yield Entry(name, "file", size=m.size, data=archive.extractfile(m),
                                **common)
                elif m.issym():
                    yield Entry(name, "symlink", target=m.linkname, **common)
                elif m.islnk():
                    yield Entry(name, "hardlink", target=member_name(m.linkname), **common)
                elif m.isfifo():
                    yield Entry(name, "fifo", **common)
                elif m.ischr() or m.isblk():
                    yield Entry(name, "char" if m.ischr() else "block",
                                rdev=os.makedev(m.devmajor, m.devminor), **common)
        except tarfile.TarError as e:
            raise CopyError(f"reading the tar archive: {e}") from None


class TarSink:
    """Entries written as a tar stream (PAX) to ``stream``, under ``top`` (None: as named)."""

    def __init__(self, stream, top):
        self.archive = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)
        self.top = top

    def put(self, entry):
        name = archive_name(self.top, entry.name) if self.top != "." else (
            "./" + entry.name if entry.name else ".")
        info = tarfile.TarInfo(name)
        info.mode, info.uid, info.gid = entry.mode, entry.uid, entry.gid
        info.mtime = entry.mtime_ns // 1_000_000_000
        info.uname = info.gname = ""
        info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE,
                     "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                     "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE,
                     "block": tarfile.BLKTYPE}[entry.kind]
        if entry.kind == "symlink":
            info.linkname = entry.target
        elif entry.kind == "hardlink":
            info.linkname = archive_name(self.top, entry.target) if self.top != "." \
                else "./" + entry.target
        elif entry.kind in ("char", "block"):
            info.devmajor, info.devminor = os.major(entry.rdev), os.minor(entry.rdev)
        if entry.kind == "file":
            info.size = entry.size
            self.archive.addfile(info, _Exactly(entry.data, entry.size))
        else:
            self.archive.addfile(info)

    def close(self):
        self.archive.close()

    def abandon(self):
        """After a failure (the reader left): nothing more is written, not even at exit."""
        self.archive.closed = True
        self.archive.fileobj.closed = True


class _Exactly:
    """A file's data as the tar header says: ``size`` bytes (a file that grew is cut, one that
    shrank is padded with zeros), so the archive stays well formed."""

    def __init__(self, data, size):
        self.data, self.left = data, size

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        chunk = self.data.read(n) if n else b""
        if len(chunk) < n:
            chunk += b"\0" * (n - len(chunk))
        self.left -= len(chunk)
        return chunk


# --- writing a tree -----------------------------------------------------------------------------

class TreeSink:
    """Entries written under directory ``base`` of the tree at ``rootfd`` (a container's root,
    or the destination directory itself with ``base`` ""), the top named ``top`` (None: the
    entries go into ``base`` as named). ``owner(uid, gid)`` gives the IDs to chown to (None:
    leave them the writer's). ``shown(path)`` names a path in errors. ``devices`` False: device
    nodes are left out (a container's node of this host's disk must not land on this host)."""

    def __init__(self, rootfd, base, top, owner, shown, devices=True):
        self.rootfd, self.base, self.top = rootfd, base.lstrip("/"), top
        self.owner, self.shown, self.devices = owner, shown, devices
        self._dirs = {}
        self._times = []

    def close(self):
        try:
            for path, mtime in reversed(self._times):  # a directory's after its contents
                fd = self._open(path)
                try:
                    os.utime(rooted.fdpath(fd), ns=(mtime, mtime))
                finally:
                    os.close(fd)
        finally:
            for fd in self._dirs.values():
                os.close(fd)
            self._dirs = {}

    def _open(self, rel):
        return rooted.open_in_root(self.rootfd, posixpath.join(self.base, rel) or ".",
                                   os.O_PATH | os.O_DIRECTORY)

    def _dir(self, rel):
        if rel not in self._dirs:
            try:
                fd = self._open(rel)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise CopyError(f"{self.shown(rel)}: {os.strerror(e.errno).lower()}") \
                        from None
                try:  # a tar stream without its parents' entries: made, as tar does
                    fd = rooted.mkdirs_in_root(self.rootfd, posixpath.join(self.base, rel))
                except OSError as e2:
                    raise CopyError(f"{self.shown(rel)}: {os.strerror(e2.errno).lower()}") \
                        from None
            self._dirs[rel] = fd
        return self._dirs[rel]

    def put(self, entry):
        rel = archive_name(self.top, entry.name)
        if rel is None:
            return  # the top of a contents-only copy: the destination stays as it is
        if entry.kind in ("char", "block") and not self.devices:
            return
        parent, name = posixpath.split(rel)
        try:
            self._put(self._dir(parent), name, rel, entry)
        except CopyError:
            raise
        except OSError as e:
            raise CopyError(f"{self.shown(rel)}: {os.strerror(e.errno or 0).lower()}") \
                from None

    def _put(self, dfd, name, rel, e):
        ids = self.owner(e.uid, e.gid)
        try:
            old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if e.kind == "dir":
            if old is not None and not stat.S_ISDIR(old.st_mode):
                raise CopyError(f'cannot overwrite non-directory "{self.shown(rel)}" '
                                f'with directory')
            if old is None:
                os.mkdir(name, 0o700, dir_fd=dfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=dfd)
            try:
                if ids:
                    os.fchown(fd, *ids)
                os.fchmod(fd, e.mode)
            finally:
                os.close(fd)
            self._times.append((rel, e.mtime_ns))
            return
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise CopyError(f'cannot overwrite directory "{self.shown(rel)}" '
                                f'with non-directory')
            os.unlink(name, dir_fd=dfd)
        if e.kind == "file":
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                while True:
                    chunk = e.data.read(_CHUNK)
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
                if ids:
                    os.fchown(fd, *ids)
                os.fchmod(fd, e.mode)  # after chown, which clears setuid bits
                os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
            finally:
                os.close(fd)
            return
        if e.kind == "symlink":
            os.symlink(e.target, name, dir_fd=dfd)
        elif e.kind == "hardlink":
            tparent, tname = posixpath.split(archive_name(self.top, e.target) or "")
            os.link(tname, name, src_dir_fd=self._dir(tparent), dst_dir_fd=dfd,
                    follow_symlinks=False)
            return  # the same inode: its owner and mode are the first name's
        elif e.kind == "fifo":
            os.mkfifo(name, 0o600, dir_fd=dfd)
        else:
            os.mknod(name, 0o600 | (stat.S_IFCHR if e.kind == "char" else stat.S_IFBLK),
                     e.rdev, dir_fd=dfd)
        if ids:
            os.chown(name, *ids, dir_fd=dfd, follow_symlinks=False)
        if e.kind != "symlink":
            _chmod_at(dfd, name, e.mode)
        os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=dfd, follow_symlinks=False)


def _chmod_at(dfd, name, mode):
    """chmod a FIFO or device without following a link (O_PATH, then the fd's /proc link)."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    try:
        os.chmod(rooted.fdpath(fd), mode)
    finally:
        os.close(fd)
