"""``--init``: the small init docker runs as the container's PID 1 (tini), found on the host.

The manager bind-mounts Debian's statically linked tini (package ``tini``) read-only at
``IN_CONTAINER`` and runs ``/dev/init -- COMMAND...``: it reaps the orphans the command
leaves, forwards the signals it gets (``kago stop``'s SIGTERM) to the command and exits with
its status (128+N for a signal), as docker's docker-init does. /dev is the container's own
tmpfs, so the image's files are left as they are.
"""

import os

from kago.manager.errors import ManagerError

IN_CONTAINER = "/dev/init"
HOST_PATHS = ("/usr/bin/tini-static", "/usr/libexec/docker/docker-init")


def host_binary(paths=HOST_PATHS):
    """The host's static init, or a ManagerError naming the package to install."""
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    raise ManagerError(f"--init: {paths[0]} not found: install Debian's tini package "
                       f"(apt-get install tini)")
