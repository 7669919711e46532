"""A container's changes as a layer tar (for commit).

overlay: the changes are the upper directory, read as overlayfs wrote it: a 0:0 character
device is a whiteout, ``trusted.overlay.opaque=y`` an opaque directory, a directory with
``trusted.overlay.redirect`` was renamed from a lower one (archived whole, as opaque), and a
file with ``trusted.overlay.metacopy`` had only its metadata copied up (its bytes are in a lower
layer; when the metadata change was only the chown of ID shifting, it is no change at all).
(``user.overlay.*`` for an overlay mounted in a user namespace: ovlxattr.py; fuse-overlayfs's
``user.fuseoverlayfs.opaque`` and marker files: fuseovl.py.)

btrfs/vfs: the container's tree is compared with its image's top layer, by type, mode, owner,
size, mtime, link target, device number and xattrs (docker's "naive diff").

Owners are written as the container sees them: where files on disk carry host IDs (overlay's
upper with any idmap, a chown-shifted copy), they are mapped back through the idmap.
"""

import os
import stat

from kago.storage import fuseovl, ovlxattr
from kago.storage.idshift import shift_owner
from kago.storage.writer import read_xattrs

_OPAQUE = "opaque"
_REDIRECT = "redirect"
_METACOPY = "metacopy"


def _getxattr(path, name):
    """overlayfs's mark ``name`` (trusted.overlay.NAME, or user.overlay.NAME for an overlay
    mounted in a user namespace), or None."""
    try:
        return os.getxattr(path, ovlxattr.prefix() + name, follow_symlinks=False)
    except OSError:
        return None


def _opaque(path):
    """Whether an upper directory is opaque: overlayfs's mark, or fuse-overlayfs's."""
    if _getxattr(path, _OPAQUE) == b"y":
        return True
    try:
        return os.getxattr(path, fuseovl.OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _owner(st, idmap, path):
    return shift_owner(st, idmap, path, reverse=True) if idmap else (st.st_uid, st.st_gid)


def _join(rel, name):
    return f"{rel}/{name}" if rel else name


def _lower(lowers, rel):
    """(path, stat) of ``rel`` in the topmost lower layer that has it, else (None, None)."""
    for layer in lowers:
        path = os.path.join(layer, rel)
        try:
            return path, os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None, None


def overlay_changes(tar, upper, lowers, idmap):
    """Write the changes in ``upper`` to ``tar``. ``lowers``: layer paths, top first."""
    _overlay_dir(tar, upper, "", lowers, idmap)


def _overlay_dir(tar, upper, rel, lowers, idmap, fuse_opaque=False):
    """``fuse_opaque``: the directory is fuse-overlayfs's opaque one, whose marker files
    (fuseovl.OPAQUE_MARKERS) are no content."""
    base = os.path.join(upper, rel)
    for name in sorted(os.listdir(base)):
        if fuse_opaque and name in fuseovl.OPAQUE_MARKERS:
            continue
        path = os.path.join(base, name)
        sub = _join(rel, name)
        st = os.lstat(path)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            tar.whiteout(sub)
            continue
        if stat.S_ISDIR(st.st_mode):
            tar.add(path, sub, st, owner=_owner(st, idmap, path))
            if _getxattr(path, _REDIRECT) is not None:
                tar.opaque(sub)
                _redirected_tree(tar, upper, sub, lowers, idmap)
                continue
            opaque = _opaque(path)
            if opaque:
                tar.opaque(sub)
            _overlay_dir(tar, upper, sub, lowers, idmap,
                         opaque and _getxattr(path, _OPAQUE) is None)
            continue
        if stat.S_ISREG(st.st_mode) and _getxattr(path, _METACOPY) is not None:
            _metacopy_file(tar, path, sub, st, lowers, idmap)
            continue
        if idmap is not None and _only_shifted(path, sub, st, lowers, idmap):
            continue
        tar.add(path, sub, st, owner=_owner(st, idmap, path))


def _only_shifted(path, sub, st, lowers, idmap):
    """A whole copy-up the chown shift made without metacopy (an overlay in a user namespace,
    where metacopy is refused): the lower file's type, mode, size, mtime (not a symlink's),
    link target and xattrs, with the owner shifted back; the btrfs/vfs drivers' "naive diff"
    rule."""
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        return False
    lpath, lst = _lower(lowers, sub)
    if lst is None or stat.S_IFMT(lst.st_mode) != stat.S_IFMT(st.st_mode):
        return False
    if (st.st_mode, st.st_size) != (lst.st_mode, lst.st_size) \
            or _owner(st, idmap, path) != (lst.st_uid, lst.st_gid):
        return False
    if stat.S_ISLNK(st.st_mode):
        # a symlink's mtime is not compared: fuse-overlayfs's copy-up does not keep it
        return os.readlink(path) == os.readlink(lpath)
    if st.st_mtime_ns != lst.st_mtime_ns:
        return False
    return read_xattrs(path) == read_xattrs(lpath)


def _metacopy_file(tar, path, sub, st, lowers, idmap):
    """A metadata-only copy-up: archive it only if its metadata really differs from the lower
    file's (not just by the ID shift); its bytes are read from the lower file."""
    redirect = _getxattr(path, _REDIRECT)
    origin = sub
    if redirect:
        target = os.fsdecode(redirect)
        origin = target.lstrip("/") if target.startswith("/") else \
            _join(os.path.dirname(sub), target)
    lpath, lst = _lower(lowers, origin)
    owner = _owner(st, idmap, path)
    if lst is not None and origin == sub and owner == (lst.st_uid, lst.st_gid) \
            and stat.S_IMODE(st.st_mode) == stat.S_IMODE(lst.st_mode) \
            and read_xattrs(path) == read_xattrs(lpath):
        return
    tar.add(path, sub, st, owner=owner, content=lpath)


def _redirected_tree(tar, upper, rel, lowers, idmap):
    """A directory renamed inside the container: its entries come from the upper dir and
    from the lower directory it was renamed from; archive the merged result."""
    target = os.fsdecode(_getxattr(os.path.join(upper, rel), _REDIRECT))
    origin = target.lstrip("/") if target.startswith("/") else _join(os.path.dirname(rel), target)
    seen = set()
    upper_dir = os.path.join(upper, rel)
    for name in sorted(os.listdir(upper_dir)):
        seen.add(name)
        path = os.path.join(upper_dir, name)
        st = os.lstat(path)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            continue  # deleted: the opaque marker already hides the lower entry
        sub = _join(rel, name)
        if stat.S_ISDIR(st.st_mode):
            tar.add(path, sub, st, owner=_owner(st, idmap, path))
            _overlay_dir(tar, upper, sub, lowers, idmap)
        elif stat.S_ISREG(st.st_mode) and _getxattr(path, _METACOPY) is not None:
            lpath, _ = _lower(lowers, _join(origin, name))
            tar.add(path, sub, st, owner=_owner(st, idmap, path), content=lpath)
        else:
            tar.add(path, sub, st, owner=_owner(st, idmap, path))
    for layer in lowers:
        ldir = os.path.join(layer, origin)
        if not os.path.isdir(ldir) or os.path.islink(ldir):
            continue
        for name in sorted(os.listdir(ldir)):
            if name in seen:
                continue
            seen.add(name)
            path = os.path.join(ldir, name)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                continue
            _whole(tar, path, _join(rel, name), st)
        if _getxattr(ldir, _OPAQUE) == b"y":
            break


def _whole(tar, path, name, st):
    """``path`` and, for a directory, everything under it (layer files: container IDs)."""
    tar.add(path, name, st)
    if stat.S_ISDIR(st.st_mode):
        for child in sorted(os.listdir(path)):
            cpath = os.path.join(path, child)
            cst = os.lstat(cpath)
            if stat.S_ISCHR(cst.st_mode) and cst.st_rdev == 0:
                continue
            _whole(tar, cpath, f"{name}/{child}", cst)


# --- btrfs / vfs: compare two trees -----------------------------------------------------------

def tree_changes(tar, new_root, old_root, idmap):
    """Write what differs in ``new_root`` from ``old_root`` (None: empty) to ``tar``.
    ``idmap``: set when ``new_root``'s files carry host IDs to map back."""
    _tree_dir(tar, new_root, old_root, "", idmap, [])


def _tree_dir(tar, new_root, old_root, rel, idmap, pending):
    """``pending``: the chain of unchanged parent directories not yet written; written once,
    before the first change below them, so the layer carries its parents' real modes."""
    new_dir = os.path.join(new_root, rel)
    old_dir = os.path.join(old_root, rel) if old_root else None
    names = sorted(os.listdir(new_dir))
    old_names = set(os.listdir(old_dir)) if old_dir and os.path.isdir(old_dir) else set()
    for name in sorted(old_names - set(names)):
        _flush(tar, pending)
        tar.whiteout(_join(rel, name))
    for name in names:
        path = os.path.join(new_dir, name)
        sub = _join(rel, name)
        st = os.lstat(path)
        owner = _owner(st, idmap, path)
        ost = _lstat(os.path.join(old_dir, name)) if name in old_names else None
        if ost is None or stat.S_IFMT(ost.st_mode) != stat.S_IFMT(st.st_mode):
            _flush(tar, pending)
            tar.add(path, sub, st, owner=owner)
            if stat.S_ISDIR(st.st_mode):
                _tree_dir(tar, new_root, None, sub, idmap, pending)
            continue
        if stat.S_ISDIR(st.st_mode):
            entry = (path, sub, st, owner)
            if _differs(path, st, owner, os.path.join(old_dir, name), ost):
                _flush(tar, pending)
                tar.add(path, sub, st, owner=owner)
                _tree_dir(tar, new_root, old_root, sub, idmap, pending)
            else:
                pending.append(entry)
                _tree_dir(tar, new_root, old_root, sub, idmap, pending)
                if pending and pending[-1] is entry:
                    pending.pop()  # nothing changed below it
            continue
        if _differs(path, st, owner, os.path.join(old_dir, name), ost):
            _flush(tar, pending)
            tar.add(path, sub, st, owner=owner)


def _flush(tar, pending):
    for path, sub, st, owner in pending:
        tar.add(path, sub, st, owner=owner)
    pending.clear()


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _differs(path, st, owner, old_path, ost):
    if stat.S_IMODE(st.st_mode) != stat.S_IMODE(ost.st_mode):
        return True
    if owner != (ost.st_uid, ost.st_gid):
        return True
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFREG and (st.st_size != ost.st_size or st.st_mtime_ns != ost.st_mtime_ns):
        return True
    if kind == stat.S_IFLNK and os.readlink(path) != os.readlink(old_path):
        return True
    if kind in (stat.S_IFCHR, stat.S_IFBLK) and st.st_rdev != ost.st_rdev:
        return True
    return read_xattrs(path) != read_xattrs(old_path)


class _Changes:
    """A stand-in for the layer tar that keeps docker's ``diff`` view instead: each path
    added (A), changed (C: it exists below) or deleted (D)."""

    def __init__(self, lowers):
        self.lowers = lowers
        self.found = {}

    def add(self, _path, name, _st, owner=None, content=None):
        kind = "A" if _lower(self.lowers, name)[0] is None else "C"
        self.found.setdefault("/" + name, kind)

    def whiteout(self, name):
        self.found["/" + name] = "D"

    def opaque(self, name):
        pass


def changes(upper, lowers, overlay=True, idmap=None):
    """[(kind, path)] sorted by path: what a container changed in its own tree (``upper``)
    over its image's layers (``lowers``, top first), as ``docker diff`` lists it."""
    rec = _Changes(lowers)
    if overlay:
        overlay_changes(rec, upper, lowers, idmap)
    else:
        tree_changes(rec, upper, lowers[0], idmap)
    return sorted(((kind, path) for path, kind in rec.found.items()), key=lambda c: c[1])
