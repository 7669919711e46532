"""IP address management: networks' settings checked, addresses and MACs handed out once.

The pure part (``network_record``, ``pick_address``, ``mac_for``...) decides; ``Leases`` keeps
the decisions in ``leases/<network>.json`` under an flock, so a hundred ``kago run`` processes
starting at once never get the same address: each reads, picks and writes while holding the
lock (a few hundred microseconds), then releases it before any netlink work.
"""

import ipaddress
import string

from kago.network import state
from kago.network.errors import AddressExhausted, AddressInUse, NetworkError

NAME_CHARS = set(string.ascii_letters + string.digits + "_.-")
# Linux interface names: at most IFNAMSIZ-1 bytes, no '/', ':' or whitespace (dev_valid_name).
IFNAMSIZ = 16


def check_name(name, what="network name"):
    if (not isinstance(name, str) or not name or len(name) > 64 or name[0] in ".-"
            or not set(name) <= NAME_CHARS):
        raise NetworkError(f"{what} {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                           "starting with a letter or digit")
    return name


def check_ifname(name, what="bridge name"):
    ok = (isinstance(name, str) and 0 < len(name.encode()) < IFNAMSIZ
          and name not in (".", "..") and not any(c in name for c in "/: \t\n\\"))
    if not ok:
        raise NetworkError(f"{what} {name!r}: an interface name has 1-15 characters and no "
                           "'/', ':' or spaces")
    return name


def parse_subnet(text, version, what="subnet"):
    try:
        net = ipaddress.ip_network(text, strict=True)
    except (TypeError, ValueError) as err:
        raise NetworkError(f"{what} {text!r}: {err} (expected like "
                           f"{'10.89.0.0/24' if version == 4 else 'fd00:89::/64'})") from None
    if net.version != version:
        raise NetworkError(f"{what} {text!r}: expected an IPv{version} subnet")
    if net.num_addresses < 4:
        raise NetworkError(f"{what} {text!r}: too small, it needs room for a gateway and "
                           "containers (at most /30 for IPv4, /126 for IPv6)")
    return net


def _address_in(text, net, what, outside):
    """``text`` as an address of ``net``'s usable range, else a NetworkError ending in
    ``outside``."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise NetworkError(f"{what} {text!r} is not an IP address") from None
    first, last = _host_range(net)
    if addr.version != net.version or not first <= int(addr) <= last:
        raise NetworkError(f"{what} {addr}: {outside}")
    return addr


def _host_range(net):
    """First and last usable address as ints: not the network address, not IPv4 broadcast."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - (1 if net.version == 4 else 0)
    return first, last


def parse_gateway(text, net, what="gateway"):
    if text is None:
        return str(net.network_address + 1)
    addr = _address_in(text, net, what, f"not a usable address of {net}")
    return str(addr)


def network_record(name, subnet, bridge, gateway=None, ipv6_subnet=None, ipv6_gateway=None,
                   outbound=True):
    """Checks a network's settings; returns the dict stored in networks/<name>.json."""
    check_name(name)
    check_ifname(bridge)
    net4 = parse_subnet(subnet, 4)
    record = {"name": name, "bridge": bridge, "subnet": str(net4),
              "gateway": parse_gateway(gateway, net4), "prefixlen": net4.prefixlen,
              "ipv6_subnet": None, "ipv6_gateway": None, "ipv6_prefixlen": None,
              "outbound": bool(outbound)}
    if ipv6_subnet:
        net6 = parse_subnet(ipv6_subnet, 6, "ipv6 subnet")
        record.update(ipv6_subnet=str(net6), ipv6_prefixlen=net6.prefixlen,
                      ipv6_gateway=parse_gateway(ipv6_gateway, net6, "ipv6 gateway"))
    elif ipv6_gateway:
        raise NetworkError(f"ipv6 gateway {ipv6_gateway}: give an ipv6 subnet too")
    return record


def overlapping(record, others):
    """The first other network whose IPv4 or IPv6 subnet overlaps ``record``'s, or None."""
    mine = [ipaddress.ip_network(s) for s in (record["subnet"], record["ipv6_subnet"]) if s]
    for other in others:
        for text in (other["subnet"], other.get("ipv6_subnet")):
            if text and any(m.overlaps(ipaddress.ip_network(text)) for m in mine
                            if m.version == ipaddress.ip_network(text).version):
                return other
    return None


# Where networks created without a subnet get theirs: the first free /24 (the default network's
# 10.89.0.0/24 included), like podman's 10.89.N.0/24.
AUTO_POOL = "10.89.0.0/16"


def free_subnet(used, pool=AUTO_POOL, prefixlen=24):
    """The first /``prefixlen`` of ``pool`` that overlaps none of ``used`` (ip_networks)."""
    for candidate in ipaddress.ip_network(pool).subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(u) for u in used if u.version == 4):
            return str(candidate)
    raise NetworkError(f"no free /{prefixlen} subnet left in {pool}: give one with --subnet")


def pick_address(net, reserved, taken, cursor=None):
    """The first free host address after ``cursor`` (wrapping), so a released address is
    reused last: peers' ARP/neighbour caches may still point at its old MAC."""
    first, last = _host_range(net)
    size = last - first + 1
    start = int(ipaddress.ip_address(cursor)) + 1 if cursor else first
    if not first <= start <= last:
        start = first
    busy = {int(ipaddress.ip_address(a)) for a in (*reserved, *taken)}
    for step in range(min(size, len(busy) + 1)):
        candidate = first + (start - first + step) % size
        if candidate not in busy:
            return str(ipaddress.ip_address(candidate))
    return None


def check_static(text, net, reserved, taken, network):
    """A requested address: inside the subnet, not the gateway, not somebody else's."""
    addr = _address_in(text, net, "ip", f"outside network {network!r} ({net})")
    if str(addr) in reserved:
        raise AddressInUse(f"ip {addr} is the gateway of network {network!r}")
    if str(addr) in taken:
        raise AddressInUse(f"ip {addr} is already used by container {taken[str(addr)]} on "
                           f"network {network!r}")
    return str(addr)


def mac_for(ipv4):
    """A stable, locally administered unicast MAC from the IPv4 address (docker's 02:42:...):
    unique because addresses are, and the same every time the container gets that address."""
    octets = ipaddress.IPv4Address(ipv4).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in octets)


def check_mac(text):
    parts = text.split(":") if isinstance(text, str) else []
    try:
        octets = [int(p, 16) for p in parts if len(p) == 2]
    except ValueError:
        octets = []
    if len(octets) != 6 or len(parts) != 6:
        raise NetworkError(f"mac {text!r}: expected six hex octets like 02:42:0a:59:00:02")
    if octets[0] & 1 or not any(octets):
        raise NetworkError(f"mac {text}: must be a unicast address (even first octet, not zero)")
    return ":".join(f"{b:02x}" for b in octets)


class Leases:
    """One network's lease file. Every method takes the network's lock for its whole duration."""

    __slots__ = ("record", "state")

    def __init__(self, state_dir, record):
        self.state = state_dir
        self.record = record

    def _load(self):
        data = state.read_json(self.state.leases(self.record["name"]), {})
        for key in ("ipv4", "ipv6", "mac"):
            data.setdefault(key, {})
        return data

    def take(self, cid, ipv4=None, ipv6=None, mac=None):
        """Allocates (or checks the requested) IPv4, IPv6 when configured, and MAC for ``cid``.

        Returns (ipv4, ipv6 or None, mac). Nothing is written when anything is refused.
        """
        rec = self.record
        with self.state.lease_lock(rec["name"]):
            data = self._load()
            ip4 = self._address(data, "ipv4", rec["subnet"], rec["gateway"], ipv4)
            ip6 = None
            if rec["ipv6_subnet"]:
                ip6 = self._address(data, "ipv6", rec["ipv6_subnet"], rec["ipv6_gateway"], ipv6)
            elif ipv6:
                raise NetworkError(f"ipv6 {ipv6}: network {rec['name']!r} has no ipv6 subnet")
            hw = check_mac(mac) if mac else mac_for(ip4)
            if hw in data["mac"]:
                raise AddressInUse(f"mac {hw} is already used by container {data['mac'][hw]} "
                                   f"on network {rec['name']!r}")
            data["ipv4"][ip4] = cid
            data["cursor4"] = ip4 if not ipv4 else data.get("cursor4")
            if ip6:
                data["ipv6"][ip6] = cid
                data["cursor6"] = ip6 if not ipv6 else data.get("cursor6")
            data["mac"][hw] = cid
            state.write_json(self.state.leases(rec["name"]), data)
        return ip4, ip6, hw

    def _address(self, data, key, subnet, gateway, wanted):
        net = ipaddress.ip_network(subnet)
        taken = data[key]
        if wanted:
            return check_static(wanted, net, {gateway}, taken, self.record["name"])
        addr = pick_address(net, {gateway}, taken, data.get("cursor" + key[-1]))
        if addr is None:
            raise AddressExhausted(self.record["name"], subnet)
        return addr

    def release(self, cid):
        """Drops every lease ``cid`` holds; releasing twice is fine."""
        name = self.record["name"]
        with self.state.lease_lock(name):
            data = self._load()
            changed = False
            for key in ("ipv4", "ipv6", "mac"):
                mine = [k for k, v in data[key].items() if v == cid]
                for k in mine:
                    del data[key][k]
                changed |= bool(mine)
            if changed:
                state.write_json(self.state.leases(name), data)

    def holders(self):
        with self.state.lease_lock(self.record["name"]):
            data = self._load()
        return {cid for key in ("ipv4", "ipv6", "mac") for cid in data[key].values()}
