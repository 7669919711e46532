"""Reading a container's /etc/passwd and /etc/group from the host, safely, to resolve users.

``--user www-data`` must become numeric IDs before the runtime sees the spec. The files are
read from the container's rootfs with openat2(RESOLVE_IN_ROOT) (kago.kernel.rooted, as every
path the manager opens in a container), so a symlink in an image
(``/etc/passwd -> /../../etc/shadow``) resolves inside the rootfs, never on the host.
"""

import os

from kago.manager.errors import BadValue
from kago.manager.spec import User


def read_in_root(rootfs, path, limit=1 << 20):
    """The bytes of ``path`` resolved inside ``rootfs`` (kago.kernel.rooted), or None when it
    does not exist or is not a regular file (O_NONBLOCK: a FIFO an image put there does not
    block the command)."""
    import stat

    from kago.errors import KernelError
    from kago.kernel import rooted
    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = rooted.open_in_root(root, path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                 | os.O_CLOEXEC)
    except KernelError:
        return None
    finally:
        os.close(root)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def _table(data):
    rows = []
    for line in (data or b"").decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def resolve_user(rootfs, text, field="--user"):
    """"name", "uid", "name:group", "uid:gid" -> User, as docker resolves them (the image's
    files decide; numeric IDs need no entry, except that the home directory comes from one)."""
    text = str(text or "")
    if not text:
        text = "0"
    name, _, group = text.partition(":")
    passwd = _table(read_in_root(rootfs, "/etc/passwd"))
    entry = None
    if name.isdigit():
        uid = int(name)
        entry = next((r for r in passwd if len(r) >= 4 and r[2] == name), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
    else:
        entry = next((r for r in passwd if len(r) >= 4 and r[0] == name), None)
        if entry is None or not entry[2].isdigit():
            raise BadValue(field, f'unable to find user {name}: no matching entries in the '
                                  f"image's /etc/passwd")
        uid, gid = int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0
    groups_table = _table(read_in_root(rootfs, "/etc/group"))
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            row = next((r for r in groups_table if len(r) >= 3 and r[0] == group), None)
            if row is None or not row[2].isdigit():
                raise BadValue(field, f"unable to find group {group}: no matching entries in "
                                      f"the image's /etc/group")
            gid = int(row[2])
    login = entry[0] if entry else None
    extra = sorted({int(r[2]) for r in groups_table
                    if len(r) >= 4 and login and login in r[3].split(",") and r[2].isdigit()
                    and int(r[2]) != gid})
    home = entry[5] if entry and len(entry) >= 6 and entry[5] else "/"
    if uid == 0 and not entry:
        home = "/root"
    return User(uid, gid, extra, home)


def resolve_groups(rootfs, names, field="--group-add"):
    """--group-add's group names -> gids, from the image's /etc/group (docker's error)."""
    rows = _table(read_in_root(rootfs, "/etc/group"))
    out = []
    for name in names:
        row = next((r for r in rows if len(r) >= 3 and r[0] == name), None)
        if row is None or not row[2].isdigit():
            raise BadValue(field, f"unable to find group {name}: no matching entries in group "
                                  f"file")
        out.append(int(row[2]))
    return out
