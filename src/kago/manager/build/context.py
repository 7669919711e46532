"""The build context: a directory (or a tar read into one), what .dockerignore leaves out,
the files a COPY/ADD source names, and a digest of their contents for the cache.

.dockerignore is docker's: one pattern a line, ``#`` comments, ``!`` re-includes, ``*`` and
``?`` within a path component, ``**`` across any number of them, a leading ``/`` ignored;
a pattern that matches a directory excludes what is under it; the last matching line wins.

Paths in a source (the context, or a stage's or image's filesystem for ``COPY --from``) are
resolved inside it: a symlink is followed with the source's top as "/", never out of it.
"""

import hashlib
import os
import posixpath
import re
import stat
import tarfile

from kago.manager.build.errors import BuildError


def _translate(pattern):
    """A Go filepath.Match pattern (with docker's ``**``) -> a regex for a whole path."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"{pattern}: an unclosed [")
            body = pattern[i + 1:end]
            if body.startswith("^") or body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class Ignore:
    """.dockerignore rules: ``ignored("dir/file")``."""

    def __init__(self, text=""):
        self.size = len(text.encode())
        self.rules = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
            if pattern in ("", "."):
                continue
            try:
                self.rules.append((_translate(pattern), keep))
            except (ValueError, re.error) as e:
                raise BuildError(f"bad pattern: {e}", f".dockerignore:{number}") from None

    def ignored(self, rel):
        if not self.rules:
            return False
        parts = rel.strip("/").split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for regex, keep in self.rules:
            if any(regex.match(p) for p in prefixes):
                result = not keep
        return result


class Tree:
    """A file tree to copy from: ``top`` on the host, an optional Ignore, ``name`` for errors
    ("the build context", "stage builder")."""

    def __init__(self, top, name, ignore=None):
        self.top = os.path.realpath(top)
        self.name = name
        self.ignore = ignore or Ignore()

    def resolve(self, path):
        """The host path of ``path`` inside the tree, symlinks followed inside it; None if
        it does not exist."""
        parts = [p for p in path.split("/") if p and p != "."]
        done = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                done = done[:-1]
                continue
            host = os.path.join(self.top, *done, name)
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    return None
                target = os.readlink(host)
                parts = [p for p in target.split("/") if p and p != "."] + parts
                if target.startswith("/"):
                    done = []
                continue
            done.append(name)
        return os.path.join(self.top, *done)

    def rel(self, host):
        """``host``'s path inside the tree ("" for its top)."""
        rel = os.path.relpath(host, self.top)
        return "" if rel == "." else rel

    def match(self, source, where):
        """[(name, host path)] of what a COPY/ADD source names (wildcards in its last
        component): ``name`` as written or matched, the host path with symlinks followed
        inside the tree (docker follows a source's own symlink); BuildError if none."""
        clean = posixpath.normpath("/" + source)
        head, tail = posixpath.split(clean)
        if not re.search(r"[*?\[]", tail):
            host = self.resolve(clean)
            if host is None or (self.rel(host) and self.ignore.ignored(self.rel(host))):
                raise BuildError(f"{source}: no such file or directory in {self.name}", where)
            return [(tail or posixpath.basename(host), host)]
        parent = self.resolve(head)
        regex = _translate(tail)
        found = []
        if parent is not None and os.path.isdir(parent):
            for entry in sorted(os.listdir(parent)):
                host = self.resolve(self.rel(os.path.join(parent, entry)))
                if regex.match(entry) and host and not self.ignore.ignored(self.rel(host)):
                    found.append((entry, host))
        if not found:
            raise BuildError(f"{source}: no file matches it in {self.name}", where)
        return found

    def walk(self, host):
        """(path under ``host``, host path, lstat) for ``host`` and everything under it that
        is not ignored, parents first, in name order."""
        st = os.lstat(host)
        yield "", host, st
        if not stat.S_ISDIR(st.st_mode):
            return
        for entry in sorted(os.listdir(host)):
            child = os.path.join(host, entry)
            if self.ignore.ignored(self.rel(child)):
                continue
            for sub, path, cst in self.walk(child):
                yield (entry + "/" + sub).rstrip("/"), path, cst


def digest(tree, found):
    """sha256 over the names, types, modes and contents of ``found`` ([(name, host)] from
    ``match``): the cache's view of a COPY's files (times and owners do not count, as in
    docker)."""
    h = hashlib.sha256()
    for name, host in found:
        h.update(f"{name}\0".encode())
        for rel, path, st in tree.walk(host):
            h.update(f"{tree.rel(path)}\0{rel}\0{stat.S_IFMT(st.st_mode)}\0"
                     f"{stat.S_IMODE(st.st_mode)}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
            h.update(b"\n")
    return "sha256:" + h.hexdigest()


def is_archive(path):
    """A local tar archive (plain, gzip, bzip2 or xz) that ADD extracts."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        pass
    elif len(head) < 512 or head[257:262] != b"ustar":
        return False
    try:
        with tarfile.open(path, "r:*") as t:
            return t.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _make_parents(top, rel, what):
    """Make the directories of ``rel`` under ``top``, one at a time, refusing to go through a
    symlink (an archive's own ``l -> /tmp`` then ``l/x``), so nothing is made outside."""
    path = top
    for part in [p for p in rel.split("/") if p]:
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise BuildError(f"{what}: goes through a symlink")
        if not os.path.isdir(path):
            if os.path.lexists(path):
                raise BuildError(f"{what}: a parent is not a directory")
            os.mkdir(path, 0o755)


def extract(fileobj, dest, owners=False, what="archive"):
    """Extract a tar stream into the empty directory ``dest`` without leaving it: names
    with ``..`` or through a symlink are refused, devices skipped. ``owners`` keeps the
    archive's numeric owners (ADD), else everything is root's."""
    top = os.path.realpath(dest)
    try:
        archive = tarfile.open(fileobj=fileobj, mode="r|*")
    except (tarfile.TarError, EOFError) as e:
        raise BuildError(f"{what}: not a tar archive ({e})") from None
    try:
        for member in archive:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            if ".." in member.name.split("/"):
                raise BuildError(f"{what}: {member.name}: a path with .. is refused")
            path = os.path.join(top, name)
            _make_parents(top, posixpath.dirname(name), f"{what}: {member.name}")
            if os.path.lexists(path) and not (member.isdir() and os.path.isdir(path)):
                if os.path.isdir(path) and not os.path.islink(path):
                    raise BuildError(f"{what}: {member.name}: replaces a directory")
                os.unlink(path)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
            elif member.issym():
                os.symlink(member.linkname, path)
            elif member.islnk():
                source = os.path.join(top, posixpath.normpath("/" + member.linkname).lstrip("/"))
                if os.path.realpath(source) != source or not os.path.isfile(source):
                    raise BuildError(f"{what}: {member.name}: a hard link to "
                                     f"{member.linkname}, not a file of the archive")
                os.link(source, path)
            elif member.isreg():
                src = archive.extractfile(member)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    while block := src.read(1 << 20):
                        out.write(block)
            else:
                continue  # devices and fifos: not made by a build
            if not member.issym():
                os.chmod(path, member.mode & 0o7777)
            if owners:
                os.lchown(path, member.uid, member.gid)
            if not member.issym():
                os.utime(path, (member.mtime, member.mtime))
    except tarfile.TarError as e:
        raise BuildError(f"{what}: corrupt tar archive ({e})") from None
    finally:
        archive.close()
