"""``kago cp``: files between a container (running or stopped) and this host, docker's way.

    copy(mgr, "web:/etc/hosts", "/tmp/")          # out of the container
    copy(mgr, "./app", "web:/srv/")               # into it
    copy(mgr, "web:/var/log", "-")                # a tar stream on stdout
    copy(mgr, "-", "web:/srv")                    # a tar stream from stdin

The rules (rules.py, pure) decide where a source lands; the entries (tree.py) are read from a
tree or a tar stream and written into a tree or a tar stream, one at a time.

How the container's files are reached. A stopped container's root filesystem is mounted for
the copy and unmounted after (``Manager.rootfs_mounted``, as ``export``). The copy itself
runs in a child process in a mount namespace of its own, where the container's root is bound
onto itself and its volumes and bind mounts (``-v``) are bound at their destinations inside
it, as docker mounts them for its archive calls: a path under a volume is read from and
written into the volume, a read-only mount or a ``--read-only`` root refuses writes (EROFS).
Nothing of this is seen outside the child, and nothing is left when it exits, whatever
happens to it. The container's tmpfs mounts are not there (docker's cp does not see them
either).

Every path inside the container is resolved by the kernel with the container's root as
``/`` (kago.kernel.rooted: openat2 with RESOLVE_IN_ROOT): ``/escape -> /`` and ``/x ->
../../../etc`` lead to the container's own ``/`` and ``/etc``. Below the source's top no
symlink is followed (``-L`` follows the top only, docker's rule).

Owners. Files copied into a container are its root's (as it sees them: its ID range's first
IDs on this host) unless ``archive`` (-a), which keeps the source's IDs as container IDs,
shifted into its range. Files copied out are the caller's unless ``archive``, which gives
them the IDs the container sees; a tar stream out always carries the IDs the container sees.
Device nodes are not copied out to this host's files (docker's cp makes them: a container
could hand this host a node of its own disks); a tar stream carries them.
"""

import errno
import json
import os
import posixpath
import stat

from kago.manager.cp import rules, tree
from kago.manager.cp.rules import CopyError

__all__ = ["CopyError", "copy"]

_NOBODY = 65534  # the kernel's overflow ID: how a container sees an ID outside its range


def copy(mgr, src_arg, dst_arg, archive=False, follow=False, stdin=None, stdout=None):
    """Copy ``src_arg`` to ``dst_arg`` (``CONTAINER:PATH``, a path on this host, or "-" for a
    tar stream read from ``stdin`` / written to ``stdout``, binary files defaulting to this
    process's). ``archive``: keep owners (docker's -a); ``follow``: follow a symlink at the
    source's top (docker's -L). Returns the bytes of file data copied. NoSuchContainer, or
    CopyError naming the path at fault."""
    import sys
    src, dst = rules.pair(src_arg, dst_arg, cwd=os.getcwd())
    ref = src.container if src.container is not None else dst.container
    record = mgr.resolve(ref)
    if not record.get("rootfs"):
        raise CopyError(f"container {record['name']} has no root filesystem yet "
                        f"(its create did not finish)")
    job = _Job(mgr, record, src, dst, archive, follow)
    if src.stream:
        stream = stdin if stdin is not None else sys.stdin.buffer
    elif dst.stream:
        stream = stdout if stdout is not None else sys.stdout.buffer
    else:
        stream = None
    with mgr.rootfs_mounted(record) as rootfs:
        job.rootfs = rootfs
        return _in_child(job, stream, "in" if src.stream else "out" if dst.stream else None)


class _Job:
    def __init__(self, mgr, record, src, dst, archive, follow):
        self.src, self.dst, self.archive, self.follow = src, dst, archive, follow
        self.name = record["name"]
        from kago.manager import definition as D
        from kago.manager import volumes
        d = D.of(record)
        self.read_only = d.read_only
        self.mounts = []  # (host source, destination, read-only), in the definition's order
        for m in d.mounts:
            if m.kind == "volume":
                self.mounts.append((volumes.mountpoint(mgr, m.source), m.destination,
                                    m.readonly))
            elif m.kind == "bind":
                self.mounts.append((m.source, m.destination, m.readonly))
        self.idmap = None
        if record.get("uid_map"):
            from kago.storage import IdMap
            self.idmap = IdMap([tuple(r) for r in record["uid_map"]],
                               [tuple(r) for r in record.get("gid_map") or record["uid_map"]])
        self.rootfs = None
        self.copied = 0  # bytes of file data, counted as entries pass

    def _counted(self, entries):
        for entry in entries:
            if entry.kind == "file":
                self.copied += entry.size
            yield entry

    # --- in the child ---------------------------------------------------------------------
    def run(self, fd):
        """The copy, in the child's mount namespace; ``fd`` the tar stream's pipe end."""
        rootfd = _enter(self.rootfs, self.mounts, self.read_only)
        if self.src.container is not None:
            entries, is_dir = self._source(_in_root(rootfd), self.src, self._seen_ids)
        elif self.src.stream:
            with os.fdopen(fd, "rb", closefd=False) as stream:
                self._into(rootfd, self._counted(tree.read_tar(stream)), None, True,
                           stream=True)
            return
        else:
            entries, is_dir = self._source(_on_host, self.src, None)
        entries = self._counted(entries)
        if self.dst.stream:
            with os.fdopen(fd, "wb", closefd=False) as stream:
                sink = tree.TarSink(stream, rules.top_name(self.src.path))
                try:
                    for entry in entries:
                        sink.put(entry)
                except BaseException:
                    sink.abandon()
                    raise
                sink.close()
            return
        if self.dst.container is not None:
            self._into(rootfd, entries, self.src.path, is_dir)
        else:
            self._out(entries, self.src.path, is_dir)

    def _seen_ids(self, uid, gid):
        if self.idmap is None:
            return uid, gid
        u, g = self.idmap.uid_to_container(uid), self.idmap.gid_to_container(gid)
        return (_NOBODY if u is None else u), (_NOBODY if g is None else g)

    def _source(self, opener, loc, ids):
        """(entries, is_dir) of the source; a missing one is the rules' error."""
        path = loc.path
        cleaned = rules.clean(path)
        last = posixpath.basename(cleaned)
        try:
            if self.follow or rules.asserts_dir(path) or last in ("", ".", ".."):
                fd, name = opener(cleaned, os.O_PATH), None
                st = os.fstat(fd)
            else:
                fd = opener(posixpath.dirname(cleaned) or ".", os.O_PATH | os.O_DIRECTORY)
                name = last
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    os.close(fd)
                    raise
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):  # ENOTDIR: a parent is a file
                rules.check_source(loc, False, False)
            raise
        is_dir = stat.S_ISDIR(st.st_mode)
        rules.check_source(loc, True, is_dir)

        def entries():
            try:
                yield from tree.read_tree(fd, name, ids)
            finally:
                os.close(fd)
        return entries(), is_dir

    def _dest_info(self, opener, loc):
        try:
            fd = opener(rules.clean(loc.path), os.O_PATH)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False, False
            if e.errno == errno.ENOTDIR:
                raise CopyError(f"{loc.shown()}: not a directory") from None
            raise
        try:
            return True, stat.S_ISDIR(os.fstat(fd).st_mode)
        finally:
            os.close(fd)

    def _into(self, rootfd, entries, src_path, src_is_dir, stream=False):
        opener = _in_root(rootfd)
        exists, is_dir = self._dest_info(opener, self.dst)
        if stream:
            if not (exists and is_dir):
                raise CopyError(f'destination "{self.dst.shown()}" must be a directory')
            placement = rules.Placement(rules.clean(self.dst.path), None)
        else:
            placement = rules.place(src_path, src_is_dir, self.dst, exists, is_dir)
        _check_parent(opener, placement.parent, self.dst)
        sink = tree.TreeSink(rootfd, placement.parent, placement.name, self._owner_in,
                             lambda rel: self.dst.shown(posixpath.join(placement.parent, rel)))
        try:
            for entry in entries:
                sink.put(entry)
        finally:
            sink.close()

    def _owner_in(self, uid, gid):
        if not self.archive:
            uid = gid = 0
        if self.idmap is None:
            return uid, gid
        u, g = self.idmap.uid_to_host(uid), self.idmap.gid_to_host(gid)
        if u is None or g is None:
            raise CopyError(f"{uid}:{gid} is outside container {self.name}'s ID range")
        return u, g

    def _out(self, entries, src_path, src_is_dir):
        exists, is_dir = self._dest_info(_on_host, self.dst)
        placement = rules.place(src_path, src_is_dir, self.dst, exists, is_dir)
        _check_parent(_on_host, placement.parent, self.dst)
        pfd = os.open(placement.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        owner = (lambda u, g: (u, g)) if self.archive else (lambda u, g: None)
        sink = tree.TreeSink(pfd, "", placement.name, owner,
                             lambda rel: posixpath.join(placement.parent, rel), devices=False)
        try:
            for entry in entries:
                sink.put(entry)
        finally:
            sink.close()
            os.close(pfd)


def _in_root(rootfd):
    from kago.kernel import rooted

    def opener(path, flags):
        return rooted.open_in_root(rootfd, path, flags | os.O_CLOEXEC)
    return opener


def _on_host(path, flags):
    return os.open(path, flags | os.O_CLOEXEC)


def _check_parent(opener, parent, loc):
    try:
        fd = opener(parent, os.O_PATH | os.O_DIRECTORY)
    except OSError as e:
        where = loc.shown(parent)
        if e.errno == errno.ENOENT:
            if loc.container is not None:
                raise CopyError(f"no such container:path: {where}") from None
            raise CopyError(f"{where}: no such file or directory") from None
        if e.errno == errno.ENOTDIR:
            raise CopyError(f"{where}: not a directory") from None
        raise
    os.close(fd)


def _enter(rootfs, mounts, read_only):
    """This process's own mount namespace with the container's root bound onto itself and its
    volumes and binds at their destinations; an O_PATH fd of that root."""
    from kago.kernel import consts as C
    from kago.kernel import libc, rooted
    libc.unshare(C.CLONE_NEWNS)
    libc.mount(None, "/", None, C.MS_REC | C.MS_PRIVATE)
    libc.mount(rootfs, rootfs, None, C.MS_BIND | C.MS_REC)
    rootfd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for source, dest, readonly in mounts:
        if not os.path.exists(source):
            continue
        try:
            fd = (rooted.mkdirs_in_root(rootfd, dest) if os.path.isdir(source)
                  else rooted.create_file_in_root(rootfd, dest))
        except OSError as e:
            raise CopyError(f"mount point {dest}: {os.strerror(e.errno or 0).lower()}") \
                from None
        try:
            libc.mount(source, rooted.fdpath(fd), None, C.MS_BIND | C.MS_REC, shown=dest)
        finally:
            os.close(fd)
        if readonly:
            fd = rooted.open_in_root(rootfd, dest)
            try:
                libc.mount(None, rooted.fdpath(fd), None,
                           C.MS_REMOUNT | C.MS_BIND | C.MS_RDONLY, shown=dest)
            finally:
                os.close(fd)
    if read_only:
        libc.mount(None, rooted.fdpath(rootfd), None, C.MS_REMOUNT | C.MS_BIND | C.MS_RDONLY,
                   shown=rootfs)
    return rootfd


# --- the child ------------------------------------------------------------------------------------

_CHUNK = 1 << 16


def _in_child(job, stream, direction):
    """Run ``job`` in a forked child (its own mount namespace); relay the tar stream between
    ``stream`` and the child through a pipe; raise the child's error here, or return the
    bytes it copied."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    data_r = data_w = None
    if direction:
        data_r, data_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(err_r)
            mine = None
            if direction == "in":
                os.close(data_w)
                mine = data_r
            elif direction == "out":
                os.close(data_r)
                mine = data_w
            job.run(mine)
            os.write(err_w, json.dumps({"copied": job.copied}).encode())
        except BaseException as e:  # noqa: BLE001 - every failure is one line for the parent
            code = 1
            try:
                os.write(err_w, json.dumps({"error": _describe(e)}).encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(err_w)
    try:
        if direction == "out":
            os.close(data_w)
            data_w = None
            while True:
                chunk = os.read(data_r, _CHUNK)
                if not chunk:
                    break
                stream.write(chunk)
            stream.flush()
        elif direction == "in":
            os.close(data_r)
            data_r = None
            try:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(data_w, view):]
            except BrokenPipeError:
                pass  # the child stopped reading: its error says why
            os.close(data_w)
            data_w = None
    finally:
        for fd in (data_r, data_w):
            if fd is not None:
                os.close(fd)
        _, status = os.waitpid(pid, 0)
        message = b""
        while True:
            chunk = os.read(err_r, _CHUNK)
            if not chunk:
                break
            message += chunk
        os.close(err_r)
    reply = json.loads(message.decode()) if message else {}
    if "error" in reply:
        raise CopyError(reply["error"])
    if status or "copied" not in reply:
        raise CopyError(f"copy {job.src.shown()} to {job.dst.shown()}: the copying process "
                        f"ended with status {status}")
    return reply["copied"]


def _describe(e):
    from kago.errors import KagoError, describe
    if isinstance(e, KagoError):
        return str(e)
    if isinstance(e, OSError):
        return describe(e)
    return f"{type(e).__name__}: {e}"
