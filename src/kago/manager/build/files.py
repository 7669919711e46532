"""COPY and ADD into a build's root filesystem, without ever leaving it.

The root is mounted and nothing runs in it while files are copied; every directory is
reached through kago.kernel.rooted (openat2 with RESOLVE_IN_ROOT), so a symlink in the image
(``/app -> /etc``, ``/x -> ../../host``) resolves inside the root, and each entry is made
relative to its parent's descriptor with O_NOFOLLOW / O_EXCL.

docker's rules: a directory source copies its contents; several sources (or a wildcard) need
a destination directory ending in ``/``; a destination ending in ``/`` or an existing
directory receives the source under its own name; files are root's unless ``--chown``;
modes are kept unless ``--chmod``; ADD extracts a local tar archive into the destination
(keeping the archive's owners), other files it copies as COPY does.
"""

import errno
import os
import posixpath
import shutil
import stat
import tempfile

from kago.manager.build import context
from kago.manager.build.errors import BuildError


class Target:
    """A mounted root filesystem to write into."""

    def __init__(self, rootfs):
        self.rootfs = rootfs
        self.rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirs = {}

    def close(self):
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs = {}
        os.close(self.rootfd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def is_dir(self, path):
        from kago.kernel import rooted
        try:
            fd = rooted.open_in_root(self.rootfd, path, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            return False
        os.close(fd)
        return True

    def dir(self, path):
        """An O_PATH descriptor of directory ``path`` (made, with its parents, if missing)."""
        path = posixpath.normpath("/" + path)
        if path not in self._dirs:
            from kago.kernel import rooted
            try:
                self._dirs[path] = rooted.mkdirs_in_root(self.rootfd, path)
            except OSError as e:
                raise BuildError(f"cannot make directory {path} in the image: "
                                 f"{os.strerror(e.errno) if e.errno else e}") from None
        return self._dirs[path]


def copy(target, tree, found, dest, owner=None, chmod=None, add=False, many=False):
    """Copy ``found`` ([(name, host path)] in ``tree``) to ``dest`` in ``target``.
    ``owner``: (uid, gid) for everything copied (None: root's, or the archive's for ADD).
    ``many``: the source had a wildcard or there are several sources."""
    if (many or len(found) > 1) and not dest.endswith("/"):
        raise BuildError(f"copying more than one file needs a directory as the destination, "
                         f"ending in /: {dest}/")
    into = dest.endswith("/") or target.is_dir(dest)
    dest = posixpath.normpath(dest)
    for source_name, host in found:
        st = os.lstat(host)
        if stat.S_ISDIR(st.st_mode):
            _make_top(target, dest, owner)
            for rel, path, pst in tree.walk(host):
                if rel:
                    _put(target, posixpath.join(dest, rel), path, pst, owner, chmod)
        elif add and context.is_archive(host):
            _make_top(target, dest, owner)
            _extract(target, host, dest, owner, chmod)
        else:
            name = posixpath.join(dest, source_name) if into else dest
            if name == "/":
                raise BuildError(f"cannot copy file {source_name} over /")
            _put(target, name, host, st, owner, chmod)


def _make_top(target, dest, owner):
    existed = target.is_dir(dest)
    fd = target.dir(dest)
    if owner is not None and not existed:
        os.chown(fd_path(fd), *owner)


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


def _extract(target, host, dest, owner, chmod):
    scratch = tempfile.mkdtemp(prefix="kago-build-add-")
    try:
        with open(host, "rb") as f:
            context.extract(f, scratch, owners=owner is None, what=os.path.basename(host))
        tree = context.Tree(scratch, os.path.basename(host))
        for rel, path, st in tree.walk(scratch):
            if rel:
                _put(target, posixpath.join(dest, rel), path, st,
                     owner or (st.st_uid, st.st_gid), chmod)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _put(target, path, host, st, owner, chmod):
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return  # sockets, fifos and devices in a context are not copied
    parent, name = posixpath.split(path)
    dfd = target.dir(parent)
    uid, gid = owner if owner is not None else (0, 0)
    mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
    try:
        old = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        old = None
    try:
        if stat.S_ISDIR(st.st_mode):
            if old is not None and not stat.S_ISDIR(old.st_mode):
                os.unlink(name, dir_fd=dfd)
                old = None
            if old is None:
                os.mkdir(name, 0o700, dir_fd=dfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=dfd)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            return
        if old is not None:
            if stat.S_ISDIR(old.st_mode):
                raise BuildError(f"cannot replace directory {path} in the image with a file")
            os.unlink(name, dir_fd=dfd)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(host), name, dir_fd=dfd)
            os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                with open(host, "rb") as src, os.fdopen(fd, "wb", closefd=False) as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
                os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fd)
    except BuildError:
        raise
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise BuildError(f"no space left copying {path}") from None
        raise BuildError(f"copying to {path}: {os.strerror(e.errno or 0).lower()}") from None


def owner_ids(rootfs, chown):
    """--chown=user[:group] -> (uid, gid), names looked up in the image's /etc files; a
    user without a group gives the same number as the group (docker's rule)."""
    from kago.manager.errors import BadValue
    from kago.manager.rootfs_files import resolve_user
    group = chown.partition(":")[2]
    try:
        resolved = resolve_user(rootfs, chown, field="--chown")
    except BadValue as e:
        raise BuildError(str(e)) from None
    return resolved.uid, resolved.gid if group else resolved.uid
