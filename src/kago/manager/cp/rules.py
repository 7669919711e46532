"""docker cp's path rules, as pure decisions (no file is touched here).

An argument is ``CONTAINER:PATH`` or a local path (``-`` a tar stream): an absolute path, a
path without ``:`` and one starting with ``.`` (``./a:b``) are local (docker's splitCpArg).
A container's path is taken from its ``/``.

Where the source lands (``place``), docker's table:

  source is a file        destination exists as a directory   -> DEST/basename(SRC)
                          exists as a file                    -> DEST, overwritten
                          ends in ``/`` and exists as a file  -> error: not a directory
                          does not exist, ends in ``/``       -> error: no such directory
                          does not exist                      -> DEST (its parent must exist)
  source is a directory   exists as a directory, SRC ends in ``/.``  -> its contents into DEST
                          exists as a directory               -> DEST/basename(SRC)
                          exists as a file                    -> error: cannot copy a directory
                                                                 to a file
                          does not exist                      -> DEST, made (its parent must
                                                                 exist), the contents in it

A source ending in ``/`` or ``/.`` must be a directory. ``/`` itself is copied as its
contents (``/.``).
"""

import dataclasses
import posixpath

from kago.manager.errors import ManagerError


class CopyError(ManagerError):
    """A copy docker's rules refuse, or a path that is not there (one line; docker's exit
    status for cp is 1)."""

    exit_code = 1


@dataclasses.dataclass(frozen=True)
class Location:
    """One side of a copy: ``container`` (None: this host) and ``path`` ("-": a tar stream)."""

    container: str | None
    path: str

    @property
    def stream(self):
        return self.container is None and self.path == "-"

    def shown(self, path=None):
        path = self.path if path is None else path
        return f"{self.container}:{path}" if self.container is not None else path


def split_arg(arg):
    """docker's splitCpArg: ``CONTAINER:PATH`` or a local path."""
    if arg.startswith("/") or arg == "-":
        return Location(None, arg)
    container, sep, path = arg.partition(":")
    if not sep or container.startswith(".") or "/" in container:
        return Location(None, arg)
    if not container:
        raise CopyError(f'invalid container name in "{arg}"')
    return Location(container, "/" + path.lstrip("/") if not path.startswith("/") else path)


def local_path(path, cwd):
    """A path on this host made absolute against ``cwd``, keeping a trailing ``/`` or ``/.``
    (docker's resolveLocalPath): ``..`` then has a name, and the rules see what was meant."""
    absolute = posixpath.normpath(posixpath.join(cwd, path))
    if path.endswith("/.") or path == ".":
        return absolute.rstrip("/") + "/."
    if path.endswith("/") and absolute != "/":
        return absolute + "/"
    return absolute


def pair(src_arg, dst_arg, cwd=None):
    """(source, destination) Locations; exactly one side is a container. ``cwd``: local
    paths are made absolute against it."""
    src, dst = split_arg(src_arg), split_arg(dst_arg)
    if cwd is not None:
        src, dst = (Location(None, local_path(loc.path, cwd))
                    if loc.container is None and not loc.stream else loc for loc in (src, dst))
    if src.container is not None and dst.container is not None:
        raise CopyError("copying between containers is not supported")
    if src.container is None and dst.container is None:
        raise CopyError("must specify at least one container source")
    if src.stream and dst.stream:
        raise CopyError("cannot copy from a stream to a stream")
    return src, dst


def asserts_dir(path):
    """The path ends in ``/`` or ``/.``: it must be a directory."""
    return path.endswith("/") or path.endswith("/.") or path == "."


def contents_only(path):
    """``SRC/.`` (and ``/``): the directory's contents, not the directory."""
    return path.endswith("/.") or path == "." or posixpath.normpath(path) == "/"


def clean(path):
    return posixpath.normpath(path) if path else "."


def top_name(path):
    """The name a source has in the copy: its basename ("." for contents-only)."""
    if contents_only(path):
        return "."
    return posixpath.basename(clean(path)) or "."


def check_source(loc, exists, is_dir):
    """A source that is missing or not the directory its trailing ``/`` says."""
    if not exists:
        if loc.container is not None:
            raise CopyError(f"no such container:path: {loc.shown()}")
        raise CopyError(f"{loc.path}: no such file or directory")
    if asserts_dir(loc.path) and not is_dir:
        raise CopyError(f"{loc.shown()}: not a directory")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a copy lands: the directory ``parent`` (an existing one) and the ``name`` its
    top entry takes there (None: the source's contents go into ``parent`` itself)."""

    parent: str
    name: str | None


def place(src_path, src_is_dir, dst, dst_exists, dst_is_dir):
    """Apply docker's table; ``dst`` a Location (for messages), its path the destination."""
    path = dst.path
    if dst_exists and dst_is_dir:
        if src_is_dir and contents_only(src_path):
            return Placement(clean(path), None)
        return Placement(clean(path), top_name(src_path))
    if dst_exists:  # a file (or another non-directory)
        if src_is_dir:
            raise CopyError(f"cannot copy a directory to a file: {dst.shown()}")
        if asserts_dir(path):
            raise CopyError(f"{dst.shown()}: not a directory")
        return Placement(posixpath.dirname(clean(path)) or ".", posixpath.basename(clean(path)))
    if asserts_dir(path) and not src_is_dir:
        raise CopyError(f"{dst.shown()}: no such directory")
    cleaned = clean(path)
    return Placement(posixpath.dirname(cleaned) or ".", posixpath.basename(cleaned))


def archive_name(placement_name, rel):
    """The name an entry takes under the placement: ``rel`` is relative to the source's top
    ("" for the top itself). None: the top of a contents-only copy (nothing to make)."""
    if placement_name is None or placement_name == ".":
        return rel or None
    return posixpath.join(placement_name, rel) if rel else placement_name


def member_name(name):
    """A tar member's name made relative (``./a``, ``/a`` -> ``a``; ``.`` -> "");
    a ``..`` component is refused (it would leave the destination)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CopyError(f'invalid path in the archive: "{name}" leaves the destination')
    return "/".join(parts)
