"""Whether kago-oci runs rootless, and where its state goes then (runc's rules).

Rootless means "not root of the host": an unprivileged user (euid != 0), or root of a user
namespace whose uid_map is not the full identity map (rootless podman runs the OCI runtime
inside its own user namespace, as uid 0 there). runc's global ``--rootless auto|true|false``
decides for cgroups: ``auto`` (the default) is rootless in both cases, and a rootless runtime
skips cgroups it may not write instead of failing.

The state root, when ``--root`` is not given (runc's ``shouldHonorXDGRuntimeDir``): host root
keeps /run/kago; otherwise ``$XDG_RUNTIME_DIR/kago`` when that is set (and, as root of a user
namespace, USER is not "root"), else ``/run/user/UID/kago`` with UID the host user.

Cheap: one read of /proc/self/uid_map (~20 us), and only where euid is 0.
"""

import os

from kago.errors import UsageError

HOST_ROOT = "/run/kago"
_IDENTITY = ["0", "0", "4294967295"]


def _uid_map(path="/proc/self/uid_map"):
    try:
        with open(path, "rb") as f:
            return f.read().decode().split()
    except OSError:
        return _IDENTITY  # no /proc: nothing says we are in a user namespace


_IN_USERNS = None  # this process's answer, once read (until it joins another namespace)


def forget():
    """Read the namespace again on the next question: the process joined another one (the
    rootless manager's holder)."""
    global _IN_USERNS
    _IN_USERNS = None


def in_user_namespace(path=None):
    """True if this process's user namespace is not the initial one (its map is not
    ``0 0 4294967295``); ``path``: another map file to judge (tests)."""
    global _IN_USERNS
    if path is not None:
        return _uid_map(path) != _IDENTITY
    if _IN_USERNS is None:
        _IN_USERNS = _uid_map() != _IDENTITY
    return _IN_USERNS


def host_uid(uid=None, path=None):
    """The host (parent namespace) UID that ``uid`` (default: our euid) maps to; the ID
    itself where it is not mapped by a line of this namespace's map."""
    uid = os.geteuid() if uid is None else uid
    words = _uid_map(path or "/proc/self/uid_map")
    for i in range(0, len(words) - 2, 3):
        inside, outside, count = (int(w) for w in words[i:i + 3])
        if inside <= uid < inside + count:
            return outside + uid - inside
    return uid


def rootless(flag=None, euid=None, path=None):
    """runc's ``--rootless`` value: "true", "false", or "auto"/None (rootless when not
    host root)."""
    if flag in (None, "", "auto"):
        euid = os.geteuid() if euid is None else euid
        return euid != 0 or in_user_namespace(path)
    if flag == "true":
        return True
    if flag == "false":
        return False
    raise UsageError(f"invalid --rootless value {flag!r}: use true, false or auto")


def default_root(environ=None, euid=None, path=None):
    """The state root kago-oci uses without ``--root``."""
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    if euid == 0 and not in_user_namespace(path):
        return HOST_ROOT
    xdg = environ.get("XDG_RUNTIME_DIR")
    if euid == 0 and environ.get("USER") == "root":
        # root of a user namespace that says it is root: runc keeps its host default
        return HOST_ROOT
    if xdg:
        return os.path.join(xdg, "kago")
    return f"/run/user/{host_uid(euid, path)}/kago"
