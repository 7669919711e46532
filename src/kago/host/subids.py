"""The subordinate ID ranges a user may map (/etc/subuid, /etc/subgid), as shadow's
newuidmap/newgidmap read them. Pure: the files' text and the user are given; ``read`` opens
the files under an injectable root.

A line is ``USER:START:COUNT`` where USER is a login name or a numeric UID; lines whose USER
matches the user's name or UID count; comments (``#``), blank lines and malformed lines are
skipped, as shadow skips them. Ranges are returned sorted, with overlapping or touching ranges
merged.
"""

import os


class SubIds:
    """A user's own ID and subordinate ranges: ``uid``/``gid`` and ``uids``/``gids``, each a
    tuple of (start, count)."""

    __slots__ = ("gid", "gids", "name", "uid", "uids")

    def __init__(self, name, uid, gid, uids=(), gids=()):
        self.name, self.uid, self.gid = name, uid, gid
        self.uids, self.gids = tuple(uids), tuple(gids)

    def __repr__(self):
        return f"SubIds({self.name!r}, uid={self.uid}, uids={self.uids}, gids={self.gids})"

    @property
    def size(self):
        """How many IDs a container's user namespace can map from both files: the smaller
        total (a container maps the same count of UIDs and GIDs)."""
        return min(sum(c for _, c in self.uids), sum(c for _, c in self.gids))


def parse(text, name, uid):
    """[(start, count)] of the lines for the user ``name`` (or its numeric ``uid``)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            continue
        who, start, count = parts
        if who != name and who != str(uid):
            continue
        if not (start.isdigit() and count.isdigit()) or int(count) == 0:
            continue
        found.append((int(start), int(count)))
    return merge(found)


def merge(ranges):
    """Sorted ranges with overlapping or touching ones made one."""
    out = []
    for start, count in sorted(ranges):
        if out and start <= out[-1][0] + out[-1][1]:
            last_start, last_count = out[-1]
            out[-1] = (last_start, max(last_count, start + count - last_start))
        else:
            out.append((start, count))
    return out


def read(name, uid, gid, root="/"):
    """SubIds of a user from ``root``/etc/subuid and /etc/subgid (a missing file: none)."""
    return SubIds(name, uid, gid, parse(_text(root, "etc/subuid"), name, uid),
                  parse(_text(root, "etc/subgid"), name, uid))


def _text(root, rel):
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return ""


def carve(ranges, offset, count):
    """The host ranges [(host start, count)] that IDs ``offset`` .. ``offset+count-1`` of a
    user's subordinate space occupy (the space is ``ranges`` laid end to end), or None when
    the space is too small. What maps a container's range out of a user's allocation."""
    if offset < 0 or count <= 0:
        return None
    out, skip, need = [], offset, count
    for start, size in ranges:
        if skip >= size:
            skip -= size
            continue
        take = min(size - skip, need)
        out.append((start + skip, take))
        need -= take
        skip = 0
        if need == 0:
            return out
    return None
