"""The mount table of a mount namespace, from /proc/PID/mountinfo: one parser for every layer.

Kernel docs: Documentation/filesystems/proc.rst (3.5 /proc/<pid>/mountinfo). A line is::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2) (3)   (4)   (5)      (6)      (7)  (8) (9)    (10)         (11)

Fields (4), (5) and (10) escape space, tab, newline and backslash as ``\\ooo`` (octal).
Pure functions over text, plus ``read()`` of a file (the caller's namespace by default), so
each user can be tested from a string.
"""

SELF = "/proc/self/mountinfo"


class Mount:
    """One line. A plain class, not a NamedTuple: typing is not on kago-oci's start path."""
    __slots__ = ("id", "parent", "root", "point", "fstype", "source", "super_options")

    def __init__(self, id, parent, root, point, fstype, source, super_options):
        self.id, self.parent = id, parent
        self.root = root    # the path inside its filesystem that the mount shows
        self.point = point  # where it is mounted (unescaped)
        self.fstype, self.source, self.super_options = fstype, source, super_options

    def __repr__(self):
        return f"Mount({self.id}, {self.point!r}, {self.fstype!r})"


def unescape(field):
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal (three digits)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_line(line):
    """The Mount of one mountinfo line, or None if it is malformed."""
    left, sep, right = line.partition(" - ")
    fields, tail = left.split(), right.split()
    if not sep or len(fields) < 6 or len(tail) < 2:
        return None
    try:
        mid, parent = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return Mount(mid, parent, unescape(fields[3]), unescape(fields[4]), tail[0],
                 unescape(tail[1]), tail[2] if len(tail) > 2 else "")


def parse(text):
    """[Mount] in mount order (parents before children), malformed lines skipped."""
    return [m for m in map(parse_line, text.splitlines()) if m is not None]


def read(path=SELF):
    """parse() of a mountinfo file; OSError propagates (the caller knows what it means)."""
    with open(path) as f:
        return parse(f.read())


def under(mounts, top):
    """The mounts at or below the directory ``top`` (already resolved), in mount order."""
    prefix = top.rstrip("/") + "/"
    return [m for m in mounts if m.point == top or m.point.startswith(prefix)]


def at(mounts, point):
    """The last (topmost) mount at ``point``, or None."""
    found = None
    for m in mounts:
        if m.point == point:
            found = m
    return found
