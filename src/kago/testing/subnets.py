"""A test's private /24 that no route of the host (another test's bridge included) overlaps
now: tests that run beside each other pick at random and would otherwise meet, which kago
refuses ("overlaps the host's route"). Read from /proc/net/route (IPv4)."""

import ipaddress
import random
import socket
import struct


def routes(path="/proc/net/route"):
    """The host's IPv4 routes as networks, the default route left out."""
    out = []
    try:
        with open(path) as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) < 8:
                    continue
                dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
                mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
                net = ipaddress.ip_network(f"{dest}/{mask}", strict=False)
                if net.prefixlen:
                    out.append(net)
    except OSError:
        pass
    return out


def free_octet(prefix, tries=64, path="/proc/net/route", rng=random):
    """A third octet N in 1..249 such that ``prefix``.N.0/24 (``prefix``: "10.250") overlaps
    no route now; a random one if all ``tries`` picks are taken."""
    taken = routes(path)
    octet = rng.randrange(1, 250)
    for _ in range(tries):
        net = ipaddress.ip_network(f"{prefix}.{octet}.0/24")
        if not any(net.overlaps(r) for r in taken):
            return octet
        octet = rng.randrange(1, 250)
    return octet
