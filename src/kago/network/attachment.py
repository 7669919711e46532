"""What a container got from the network: the record ``attach`` returns and ``detach`` undoes,
and the rules of its id (``check_cid``) and network mode (``parse_mode``)."""

from kago.network.errors import NetworkError
from kago.network.ports import PortMapping

MODES = ("none", "bridge", "host")
CID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")

# Field order is the public constructor's positional order (the lead's API); the fields after
# ``ports`` are kago.network's own bookkeeping, useful to callers but optional.
FIELDS = ("cid", "mode", "network", "netns_name", "netns_path", "ifname", "ipv4", "ipv6", "mac",
          "gateway", "prefixlen", "ports", "ipv6_gateway", "ipv6_prefixlen", "bridge",
          "host_ifname", "hostname", "aliases", "etc_dir", "shares", "extra_hosts", "dns",
          "owner")


class Attachment:
    """One container's network: where its netns is and what addresses it has.

    mode "host": no netns (netns_path None). mode "container:<other>": ``shares`` is the other
    container's id and ``netns_path`` its netns. "none" and "bridge" own a named netns at
    ``netns_path`` (/run/netns/<netns_name>); bridge mode also has addresses on ``ifname``.
    """

    __slots__ = FIELDS

    def __init__(self, cid, mode, network=None, netns_name=None, netns_path=None, ifname="eth0",
                 ipv4=None, ipv6=None, mac=None, gateway=None, prefixlen=None, ports=(),
                 ipv6_gateway=None, ipv6_prefixlen=None, bridge=None, host_ifname=None,
                 hostname=None, aliases=(), etc_dir=None, shares=None, extra_hosts=(),
                 dns=None, owner=None):
        self.cid = cid
        self.mode = mode
        self.network = network
        self.netns_name = netns_name
        self.netns_path = netns_path
        self.ifname = ifname
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.mac = mac
        self.gateway = gateway
        self.prefixlen = prefixlen
        self.ports = tuple(p if isinstance(p, PortMapping) else PortMapping.from_dict(p)
                           for p in ports)
        self.ipv6_gateway = ipv6_gateway
        self.ipv6_prefixlen = ipv6_prefixlen
        self.bridge = bridge
        self.host_ifname = host_ifname
        self.hostname = hostname
        self.aliases = tuple(aliases)
        self.etc_dir = etc_dir
        self.shares = shares
        # the container's own /etc lines (--add-host: [(name, ip)], ip "host-gateway" the
        # gateway; --dns...: {"servers", "search", "options"} replacing resolv.conf's)
        self.extra_hosts = tuple(tuple(h) for h in extra_hosts or ())
        self.dns = dict(dns) if dns else None
        self.owner = owner

    @property
    def names(self):
        """Names peers know this container by: hostname, aliases, then the id."""
        seen = []
        for name in (self.hostname, *self.aliases, self.owner or self.cid):
            if name and name not in seen:
                seen.append(name)
        return seen

    def to_dict(self):
        data = {name: getattr(self, name) for name in FIELDS}
        data["ports"] = [p.to_dict() for p in self.ports]
        data["aliases"] = list(self.aliases)
        data["extra_hosts"] = [list(h) for h in self.extra_hosts]
        return data

    @classmethod
    def from_dict(cls, data):
        return cls(**{name: data[name] for name in FIELDS if name in data})

    def __eq__(self, other):
        return isinstance(other, Attachment) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return (f"Attachment({self.cid!r}, mode={self.mode!r}, network={self.network!r}, "
                f"netns={self.netns_path!r}, ipv4={self.ipv4!r}, mac={self.mac!r})")


def check_cid(cid):
    """The runtime's container ID rule (runc's): it becomes file and netns names."""
    if (not isinstance(cid, str) or not cid or len(cid) > 1024 or cid in (".", "..")
            or not set(cid) <= CID_CHARS):
        raise NetworkError(f"container id {cid!r}: use letters, digits, '_', '+', '-', '.'")
    return cid


def parse_mode(mode):
    """Returns (kind, other): ("bridge", None) ... ("container", "<cid>")."""
    if isinstance(mode, str) and mode.startswith("container:"):
        return "container", check_cid(mode.split(":", 1)[1])
    if mode not in MODES:
        raise NetworkError(f"network mode {mode!r}: use bridge, none, host or container:<id>")
    return mode, None
