"""Networking without root: slirp4netns for a network namespace an unprivileged user owns.

A building block, not yet used by the manager. ``Slirp.start(pid, api_socket)`` runs
slirp4netns for the network namespace (and user namespace) of ``pid``: the namespace gets a
``tap0`` at 10.0.2.100/24 with 10.0.2.2 as its gateway (slirp's user-mode NAT), and the
host's own loopback stays out of reach (``--disable-host-loopback``). ``add_forward`` publishes
a host port on 127.0.0.1 through slirp4netns's API socket, ``remove_forward`` withdraws it,
and ``stop`` ends slirp4netns and waits for it.

Modules: ``command`` (finding slirp4netns, its argv), ``api`` (the API socket's JSON
messages and one request), ``hostports`` (what a caller may bind on the host), ``slirp``
(the running process), ``errors``.

pasta (Debian's ``passt``) is not supported: it is a different program with its own options
and port model, not a drop-in for slirp4netns.
"""

from kago.network.rootless.errors import (ApiRefused, PrivilegedPort, RootlessNetError,
                                          SlirpMissing)
from kago.network.rootless.slirp import Forward, Slirp

__all__ = ["ApiRefused", "Forward", "PrivilegedPort", "RootlessNetError", "Slirp",
           "SlirpMissing"]
