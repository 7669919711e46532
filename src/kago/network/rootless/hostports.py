"""What a caller may bind on the host: the unprivileged port floor and ports in use."""

import errno
import socket

from kago.network.rootless.errors import PortInUse, PrivilegedPort

SYSCTL = "/proc/sys/net/ipv4/ip_unprivileged_port_start"


def unprivileged_port_start(path=SYSCTL):
    """net.ipv4.ip_unprivileged_port_start of this network namespace (1024 if unreadable,
    the kernel's default)."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1024


def check_privileged(port, uid, start):
    """Pure: a non-root ``uid`` may not bind a port below ``start``."""
    if uid != 0 and port < start:
        raise PrivilegedPort(port, start, uid)


def check_free(proto, addr, port):
    """PortInUse if ``addr:port`` cannot be bound now, with SO_REUSEADDR as libslirp binds."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((addr, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(proto, addr, port) from None
            if e.errno == errno.EACCES:  # below the floor for us; slirp's uid may differ
                return
            raise
