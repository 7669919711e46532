"""User-namespace ID maps, written by the parent for the child (user_namespaces(7)).

The parent (root in the initial user namespace) writes /proc/CHILD/uid_map and gid_map. Because
it holds CAP_SETGID in the parent namespace, setgroups(2) stays allowed inside the container, so
additionalGids work; several ranges may be given (up to 340 lines since Linux 4.15).
"""

import os

from kago.errors import KernelError


def format_map(mappings):
    return "".join(f"{cid} {hid} {size}\n" for cid, hid, size in mappings)


def write_maps(pid, uid_maps, gid_maps):
    _write(f"/proc/{pid}/uid_map", format_map(uid_maps))
    _write(f"/proc/{pid}/gid_map", format_map(gid_maps))


def _write(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise KernelError("write", e.errno, path, text.strip().replace("\n", ", ")) from None


def closed_ancestor(path, cache=None):
    """The first directory above ``path`` that others may not search (no o+x), as
    ``(directory, mode)``, or None when every one of them is open.

    Root in a user namespace is an unprivileged host ID: a path below such a directory is out
    of its reach. A directory that cannot be examined counts as closed, with mode None.
    ``cache`` (a dict) keeps the modes seen, for callers that check many paths.
    """
    cache = {} if cache is None else cache
    parent = os.path.dirname(path.rstrip("/"))
    while True:
        if parent not in cache:
            try:
                cache[parent] = os.stat(parent).st_mode
            except OSError:
                cache[parent] = None
        mode = cache[parent]
        if mode is None or not mode & 0o001:
            return parent, mode
        if parent == "/":
            return None
        parent = os.path.dirname(parent)
