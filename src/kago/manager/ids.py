"""User-namespace ID ranges, decided: given the root's table of reserved ranges and what a
container asks for, the ranges it gets, or IdRangeError. Pure: no file, no lock (reading and
writing ROOT/idranges.json under its lock is idranges.py's).

The table: {container ID: {"uids": [[inside, host, size], ...], "gids": [...]}}. A request is
the definition's IdMapping: its maps (``uid_map``/``gid_map``, IdRanges), or mode ``auto``:
the lowest free block of ``auto_size`` IDs (64 Ki by default) at or above AUTO_ID_BASE,
64 Ki-aligned. No two containers share a host ID.
"""

from kago.manager.errors import IdRangeError

AUTO_ID_BASE = 1 << 30        # --userns=auto ranges start here, 65536-aligned
AUTO_ID_SIZE = 65536
ID_LIMIT = 1 << 32


def wanted(mapping):
    """Whether an IdMapping asks for a user namespace's ranges at all."""
    return bool(mapping.uid_map) or mapping.mode == "auto"


def allocate(table, mapping, name_of=str, space=None):
    """(uid_map, gid_map) as [[inside, host, size], ...] for an IdMapping, or (None, None)
    for none; ``table`` is not changed. ``name_of(cid)`` names the owner of an overlapping
    range in the error. ``space``: a rootless manager's IdSpace (kago.host.holder): "host"
    IDs are then IDs of the holder's user namespace, automatic blocks are carved from its
    1..N (the user's subordinate IDs) and explicit ranges must lie within 0..N."""
    if not wanted(mapping):
        return None, None
    uid_map = [[r.inside, r.host, r.size] for r in mapping.uid_map]
    gid_map = [[r.inside, r.host, r.size] for r in mapping.gid_map]
    if not uid_map:
        if space is None:
            base = free_block(table, mapping.auto_size)
        else:
            base = free_block(table, mapping.auto_size, base=1, align=1,
                              limit=min(space.uids, space.gids) + 1)
        uid_map = [[0, base, mapping.auto_size]]
    gid_map = gid_map or [list(r) for r in uid_map]
    if space is not None:
        for kind, ranges in (("uid", uid_map), ("gid", gid_map)):
            for _, host, size in ranges:
                space.check(kind, host, size)
    for kind, ranges in (("uids", uid_map), ("gids", gid_map)):
        check_free(table, kind, ranges, name_of)
    return uid_map, gid_map


def free_block(table, size, base=AUTO_ID_BASE, align=AUTO_ID_SIZE, limit=ID_LIMIT):
    """The lowest ``align``-aligned base >= ``base`` where ``size`` IDs overlap no range
    and end below ``limit``."""
    taken = sorted((h, h + s) for entry in table.values() for kind in ("uids", "gids")
                   for _, h, s in entry[kind])
    for start, end in taken:
        if start < base + size and base < end:
            base = ((end + align - 1) // align) * align
    if base + size > limit:
        if limit != ID_LIMIT:
            raise IdRangeError(f"no free block of {size} IDs is left in IDs 1-{limit - 1} of "
                               "the user's namespace (its subordinate IDs): remove containers, "
                               "ask for fewer (--userns=auto:size=N) or add subordinate IDs "
                               "(usermod --add-subuids/--add-subgids)")
        raise IdRangeError("no free user-namespace ID range is left: remove containers or "
                           "use smaller ranges")
    return base


def check_free(table, kind, ranges, name_of):
    """IdRangeError naming the first range of ``ranges`` that overlaps one in ``table``."""
    for _, host, size in ranges:
        for other, entry in table.items():
            for _, oh, osz in entry[kind]:
                if host < oh + osz and oh < host + size:
                    raise IdRangeError(
                        f"{kind[:-1]} range {host}-{host + size - 1} overlaps container "
                        f"{name_of(other)}'s {oh}-{oh + osz - 1}: choose another range")
