"""The rootless manager's holder, decided: its ID maps, where its record lives, the user's
per-user directories and the ID space containers are carved from. Pure: files' text and the
environment are given (kago.linux.holder makes, joins and stops the holder itself).

The holder is one small pause process per user and runroot that owns a user namespace, a
mount namespace and a network namespace (podman's pause process and its rootless network
namespace in one). Its user namespace maps inside 0 to the user's own ID (count 1) and inside
1..N to the user's /etc/subuid ranges laid end to end (the same for GIDs from /etc/subgid), so
every kago command joining it is root of a namespace whose IDs 1..N are the user's
subordinate IDs. Containers' ID ranges are IDs of that namespace: they must lie within 0..N.
"""

import os

from kago.errors import UsageError

PID_FILE = "holder.pid"
LOCK_FILE = "holder.lock"


class NoSubIds(UsageError):
    """The user has no /etc/subuid or /etc/subgid entry."""


def maps(sub):
    """(uid_map, gid_map) as [[inside, outside, count], ...] for a SubIds: inside 0 the
    user's own ID, then 1..N its subordinate ranges in order. NoSubIds (one line naming the
    fix) when either file has no range for the user."""
    missing = [kind for kind, ranges in (("subuid", sub.uids), ("subgid", sub.gids))
               if not ranges]
    if missing:
        fix = " ".join(f"--add-{kind}s 100000-165535" for kind in missing)
        raise NoSubIds(f"user {sub.name} has no range in /etc/{' or /etc/'.join(missing)}: "
                       f"kago as a user needs subordinate IDs (usermod {fix} {sub.name})")
    return _lay(sub.uid, sub.uids), _lay(sub.gid, sub.gids)


def _lay(own, ranges):
    out, inside = [[0, own, 1]], 1
    for start, count in ranges:
        out.append([inside, start, count])
        inside += count
    return out


def id_space(map_text):
    """N, the highest inside ID of a user namespace's map (/proc/self/uid_map's text) that a
    container may use: the namespace maps 0..N (the holder's map is contiguous)."""
    top = -1
    words = map_text.split()
    for i in range(0, len(words) - 2, 3):
        inside, _outside, count = (int(w) for w in words[i:i + 3])
        top = max(top, inside + count - 1)
    return top


def check_range(kind, first, size, space, user, subid_ranges):
    """UsageError (one line naming the fix) when IDs first..first+size-1 of the user's
    namespace are not all mapped (0..space)."""
    last = first + size - 1
    if first >= 0 and last <= space:
        return
    have = sum(c for _, c in subid_ranges)
    more = last - space
    end = max((s + c for s, c in subid_ranges), default=100000)
    raise UsageError(f"{kind} range {first}-{last} needs {last} subordinate IDs; user {user} "
                     f"has {have} in /etc/sub{kind}: add more (usermod --add-sub{kind}s "
                     f"{end}-{end + more - 1} {user}) or use a range within 1-{space}")


def pid_record(pid, start_time):
    return f"{pid} {start_time}\n"


def parse_pid_record(text):
    """(pid, start time) from a holder.pid's text, or None when it is not one."""
    words = text.split()
    if len(words) != 2 or not all(w.isdigit() for w in words):
        return None
    return int(words[0]), int(words[1])


def start_time(stat_text):
    """Field 22 of /proc/PID/stat (the start time in clock ticks), and the state (field 3),
    from its text: what tells a PID's process from a later one reusing it."""
    rest = stat_text[stat_text.rindex(")") + 2:].split()
    return int(rest[19]), rest[0]


# --- per-user directories -------------------------------------------------------------------

class NoRuntimeDir(UsageError):
    pass


def user_root(environ, home):
    """The manager's persistent root for a user: $XDG_DATA_HOME/kago or ~/.local/share/kago."""
    data = environ.get("XDG_DATA_HOME")
    if data and os.path.isabs(data):
        return os.path.join(data, "kago")
    return os.path.join(home, ".local", "share", "kago")


def user_runroot(environ, uid):
    """The manager's volatile root for a user: $XDG_RUNTIME_DIR/kago/manager, or
    /run/user/UID/kago/manager (UID: the host user)."""
    xdg = environ.get("XDG_RUNTIME_DIR")
    base = xdg if xdg and os.path.isabs(xdg) else f"/run/user/{uid}"
    return os.path.join(base, "kago", "manager")


def runroot_error(runroot, err):
    return NoRuntimeDir(f"runroot {runroot}: cannot create it ({os.strerror(err.errno)}): set "
                        "XDG_RUNTIME_DIR to a directory of yours (loginctl enable-linger USER "
                        "makes /run/user/UID), or pass --runroot DIR")


class IdSpace:
    """The IDs a rootless manager's containers may use: 0..``uids``/``gids`` of the holder's
    namespace (from its maps), the user's name and /etc/subuid, /etc/subgid ranges (for the
    error's fix)."""

    __slots__ = ("gids", "subgids", "subuids", "uids", "user")

    def __init__(self, uids, gids, user, subuids=(), subgids=()):
        self.uids, self.gids, self.user = uids, gids, user
        self.subuids, self.subgids = tuple(subuids), tuple(subgids)

    def check(self, kind, first, size):
        """``kind``: "uid" or "gid"."""
        top, ranges = (self.uids, self.subuids) if kind == "uid" else (self.gids, self.subgids)
        check_range(kind, first, size, top, self.user, ranges)
