"""Finding slirp4netns and the command line that starts it (pure but for ``find``)."""

import os
import shutil

from kago.host import procfs

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


def runs(pid, program, arg):
    """Whether process ``pid`` runs ``program`` (by its base name) with ``arg`` among its
    arguments: the process meant, not another that got its pid since."""
    words = procfs.argv(pid)
    if not words:
        return False
    return os.path.basename(words[0]) == program.encode() and arg.encode() in words


def argv(binary, pid, api_socket, exit_fd, ready_fd, mtu=MTU, tap=TAP, host_loopback=False,
         sandbox=False, seccomp=False):
    """slirp4netns's argv for the network namespace of ``pid`` (and, as slirp4netns does by
    default with a pid target, that pid's user namespace).

    ``exit_fd``: slirp4netns exits when it hangs up (a pipe's write end closed, or a pidfd
    whose process is reaped); None for none. ``host_loopback``: let 10.0.2.2 reach the host's
    127.0.0.1 (off by default, as podman). ``sandbox``: slirp4netns pivots into an empty
    mount namespace of its own; ``seccomp``: it filters its own syscalls (its own flags)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise ValueError(f"pid {pid!r} is not a process id")
    if not 1280 <= mtu <= 65521:
        raise ValueError(f"mtu {mtu} is outside slirp4netns's 1280-65521")
    args = [binary, "--configure", f"--mtu={mtu}"]
    if not host_loopback:
        args.append("--disable-host-loopback")
    if sandbox:
        args.append("--enable-sandbox")
    if seccomp:
        args.append("--enable-seccomp")
    args.append(f"--api-socket={api_socket}")
    if exit_fd is not None:
        args.append(f"--exit-fd={exit_fd}")
    return args + [f"--ready-fd={ready_fd}", str(pid), tap]
