"""Published ports: ``-p [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]`` as a small value type."""

import ipaddress

from kago.network.errors import NetworkError

PROTOCOLS = ("tcp", "udp")


def _port(value, what, text):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 1 <= number <= 65535:
        raise NetworkError(f"port mapping {text!r}: {what} {value!r} is not a port (1-65535)")
    return number


def _host_ip(value, text):
    """'' means every local address; otherwise an IPv4 or IPv6 literal (brackets allowed)."""
    value = (value or "").strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if value in ("", "0.0.0.0", "::"):
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise NetworkError(f"port mapping {text!r}: host ip {value!r} is not an IP address") \
            from None


class PortMapping:
    """One published port: traffic to ``host_ip:host_port`` goes to the container's port.

    ``host_ip`` "" means every local address of the host, 127.0.0.1 included.
    """

    __slots__ = ("container_port", "host_ip", "host_port", "proto")

    def __init__(self, host_port, container_port, proto="tcp", host_ip="", _text=None):
        text = _text or f"{host_ip}:{host_port}:{container_port}/{proto}"
        self.host_port = _port(host_port, "host port", text)
        self.container_port = _port(container_port, "container port", text)
        if proto not in PROTOCOLS:
            raise NetworkError(f"port mapping {text!r}: protocol {proto!r} is not tcp or udp")
        self.proto = proto
        self.host_ip = _host_ip(host_ip, text)

    @classmethod
    def parse(cls, text):
        """``8080:80``, ``8080:80/udp``, ``127.0.0.1:8080:80``, ``[::1]:8080:80/tcp``."""
        usage = f"port mapping {text!r}: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]"
        if not isinstance(text, str):
            raise NetworkError(usage)
        spec, _, proto = text.partition("/")
        if spec.startswith("["):
            host_ip, bracketed, rest = spec[1:].partition("]:")
            parts = [host_ip] + rest.split(":") if bracketed else []
        else:
            parts = spec.split(":")
        if len(parts) == 2:
            parts.insert(0, "")
        if len(parts) != 3:
            raise NetworkError(usage)
        host_ip, host_port, container_port = parts
        return cls(host_port, container_port, proto or "tcp", host_ip, _text=text)

    @property
    def family(self):
        """4 or 6 when ``host_ip`` pins one family, None when it is every address."""
        if not self.host_ip:
            return None
        return ipaddress.ip_address(self.host_ip).version

    def conflicts(self, other):
        """Two mappings cannot coexist when the same proto/port meets on a shared address."""
        return (self.proto == other.proto and self.host_port == other.host_port
                and (not self.host_ip or not other.host_ip or self.host_ip == other.host_ip))

    def to_dict(self):
        return {"host_port": self.host_port, "container_port": self.container_port,
                "proto": self.proto, "host_ip": self.host_ip}

    @classmethod
    def from_dict(cls, data):
        return cls(data["host_port"], data["container_port"], data.get("proto", "tcp"),
                   data.get("host_ip", ""))

    def __eq__(self, other):
        return isinstance(other, PortMapping) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(tuple(self.to_dict().values()))

    def __str__(self):
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        prefix = f"{host}:" if host else ""
        return f"{prefix}{self.host_port}:{self.container_port}/{self.proto}"

    __repr__ = __str__
