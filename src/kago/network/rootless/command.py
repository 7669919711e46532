"""Finding slirp4netns and the command line that starts it (pure but for ``find``)."""

import os
import shutil

from kago.network.rootless.errors import SlirpMissing

DEFAULT_PATH = "/usr/bin/slirp4netns"
MTU = 65520  # slirp4netns's maximum is 65521; 65520 is what podman and rootlesskit use
TAP = "tap0"


def find(path=None):
    """The slirp4netns executable: ``path`` if given, else on PATH, else /usr/bin."""
    if path is None:
        path = shutil.which("slirp4netns") or DEFAULT_PATH
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SlirpMissing(path)
    return path


def argv(binary, pid, api_socket, exit_fd, ready_fd, mtu=MTU, tap=TAP):
    """slirp4netns's argv for the network namespace of ``pid`` (and, as slirp4netns does by
    default with a pid target, that pid's user namespace)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise ValueError(f"pid {pid!r} is not a process id")
    if not 1280 <= mtu <= 65521:
        raise ValueError(f"mtu {mtu} is outside slirp4netns's 1280-65521")
    return [binary, "--configure", f"--mtu={mtu}", "--disable-host-loopback",
            f"--api-socket={api_socket}", f"--exit-fd={exit_fd}", f"--ready-fd={ready_fd}",
            str(pid), tap]
