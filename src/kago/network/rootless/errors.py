"""Errors of rootless networking: one line each, naming the value at fault and the fix."""

from kago.network.errors import AddressInUse, NetworkError


class RootlessNetError(NetworkError):
    """Anything the slirp4netns building block refuses or cannot do."""


class SlirpMissing(RootlessNetError):
    def __init__(self, path):
        self.path = path
        super().__init__(f"slirp4netns not found ({path}): install it "
                         f"(apt-get install slirp4netns)")


class PrivilegedPort(RootlessNetError):
    def __init__(self, port, start, uid):
        self.port, self.start, self.uid = port, start, uid
        super().__init__(
            f"host port {port} is below net.ipv4.ip_unprivileged_port_start ({start}) and "
            f"uid {uid} may not bind it: publish a port >= {start}, or lower the sysctl "
            f"(sysctl net.ipv4.ip_unprivileged_port_start={port})")


class PortInUse(RootlessNetError, AddressInUse):
    def __init__(self, proto, addr, port):
        self.proto, self.addr, self.port = proto, addr, port
        super().__init__(f"host port {addr}:{port}/{proto} is already in use: "
                         f"publish another port or stop what listens there")


class ApiRefused(RootlessNetError):
    def __init__(self, request, reason):
        self.request, self.reason = request, reason
        super().__init__(f"slirp4netns API refused {request}: {reason}")
