"""Interfaces, addresses and routes over netlink (pyroute2's IPRoute; never NDB, which starts
threads, and never ``ip``).

pyroute2 takes ~150 ms to import, so it is imported inside the functions that open a netlink
socket: importing this module costs nothing, and ``kago-oci`` never imports kago.network at all.
"""

import contextlib
import errno
import hashlib
import ipaddress
import os

from kago.network import netns
from kago.network.errors import NetworkError, ObjectExists

ALIAS = "kago"          # IFLA_IFALIAS prefix marking a bridge as kago's
IFA_F_NODAD = 0x02      # no duplicate address detection: the address is ours by IPAM already


def _iproute():
    from pyroute2 import IPRoute  # lazy: see the module docstring
    return IPRoute()


def host():
    """A netlink socket in the caller's (host) netns (a context manager that closes it)."""
    return contextlib.closing(_iproute())


def inside(path):
    """A netlink socket in the netns at ``path``: opened while the thread is inside it (a
    socket keeps the netns it was made in)."""
    with netns.entered(path):
        return contextlib.closing(_iproute())


@contextlib.contextmanager
def netlink_errors(what, creating=False):
    """pyroute2's NetlinkError(code) as a NetworkError naming the object ("veth ktv1: ...").
    ``creating``: EEXIST means the name belongs to somebody else (ObjectExists)."""
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        yield
    except NetlinkError as err:
        text = os.strerror(err.code).lower() if err.code else str(err)
        kind = ObjectExists if creating and err.code == errno.EEXIST else NetworkError
        raise kind(f"{what}: {text}") from None


def bridge_mac(name):
    """A stable locally administered MAC for a bridge: without one, a Linux bridge takes the
    lowest MAC among its ports, and that changes as containers come and go (ARP flaps)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "02:6b:" + ":".join(f"{b:02x}" for b in digest[:4])


def _index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _kind_and_alias(ipr, index):
    msg = ipr.link("get", index=index)[0]
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    return kind, msg.get_attr("IFLA_IFALIAS") or ""


def write_sysctl(path, value):
    with open(path, "w") as f:
        f.write(f"{value}\n")


def read_sysctl(path):
    with open(path) as f:
        return f.read().strip()


def ensure_bridge(ipr, record, alias):
    """Creates the network's bridge (or checks that the one there is this network's: its
    IFLA_IFALIAS is ``alias``) with its gateway address(es), up. Returns True when it made the
    bridge; a bridge it made is deleted again if a later part fails. Idempotent."""
    name = record["bridge"]
    with netlink_errors(f"bridge {name}"):
        created = _create_bridge(ipr, name, alias)
        try:
            _configure_bridge(ipr, record, alias)
        except BaseException:
            if created:
                delete_link(ipr, name)
            raise
    return created


def _create_bridge(ipr, name, alias):
    if _index(ipr, name) is not None:
        return False
    try:
        ipr.link("add", ifname=name, kind="bridge", address=bridge_mac(name))
    except Exception as err:                # a concurrent attach made it first
        if getattr(err, "code", None) != errno.EEXIST:
            raise
        return False
    try:                                    # the kernel ignores IFLA_IFALIAS on creation
        ipr.link("set", index=_index(ipr, name), ifalias=alias)
    except BaseException:
        delete_link(ipr, name)
        raise
    return True


def _configure_bridge(ipr, record, alias):
    name = record["bridge"]
    index = _index(ipr, name)
    kind, current = _kind_and_alias(ipr, index)
    if kind != "bridge" or current != alias:
        whose = (f"kago network {current.split(':')[1]!r} of another state dir"
                 if current.startswith(ALIAS + ":") else "not kago's")
        raise NetworkError(f"interface {name} exists and is {whose}: choose another bridge "
                           f"name for network {record['name']!r}")
    _bridge_settings(name)
    ipr.addr("replace", index=index, address=record["gateway"], prefixlen=record["prefixlen"])
    if record.get("ipv6_subnet"):
        ipr.addr("replace", index=index, address=record["ipv6_gateway"],
                 prefixlen=record["ipv6_prefixlen"], flags=IFA_F_NODAD)
    ipr.link("set", index=index, state="up")


def kago_bridges(ipr):
    """Names of the host's bridges that some kago state dir made (alias "kago:...")."""
    found = []
    for msg in ipr.link("dump"):
        if (msg.get_attr("IFLA_IFALIAS") or "").startswith(ALIAS + ":"):
            found.append(msg.get_attr("IFLA_IFNAME"))
    return found


def _bridge_settings(name):
    """Per-bridge sysctls (they vanish with the bridge; nothing global is touched here):
    route_localnet lets DNAT'd packets from 127.0.0.1 leave on the bridge (nft.py says why);
    forwarding lets containers reach each other's published ports through the host."""
    conf = f"/proc/sys/net/ipv4/conf/{name}"
    write_sysctl(f"{conf}/route_localnet", 1)
    write_sysctl(f"{conf}/forwarding", 1)


def delete_link(ipr, name):
    """Deletes interface ``name`` if it exists (a veth takes its peer along). Returns whether
    it existed."""
    with netlink_errors(f"interface {name}"):
        index = _index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except Exception as err:           # gone meanwhile (its netns died with its peer)
            if getattr(err, "code", None) != errno.ENODEV:
                raise
    return True


def add_veth(ipr, host_ifname, bridge, netns_path, ifname, mac, mtu=None):
    """One veth pair: ``host_ifname`` enslaved to ``bridge`` and up, its peer created directly
    inside the container's netns as ``ifname`` with ``mac`` (so the peer never exists on the
    host under a name that could clash with the host's own eth0). ``mtu``: both ends' (the
    bridge follows its ports' smallest); None: the kernel's default."""
    sized = {"mtu": mtu} if mtu else {}
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with netlink_errors(f"veth {host_ifname}", creating=True):
            master = _index(ipr, bridge)
            if master is None:
                raise NetworkError(f"bridge {bridge} is gone")
            ipr.link("add", ifname=host_ifname, kind="veth", master=master, state="up",
                     peer={"ifname": ifname, "address": mac, "net_ns_fd": fd, **sized},
                     **sized)
    finally:
        os.close(fd)


def loopback_up(ipr):
    with netlink_errors("lo"):
        ipr.link("set", index=_index(ipr, "lo"), state="up")


def configure(ipr, att, default_route=True):
    """Inside the container's netns: lo up, addresses on the container end, up, default
    routes through the bridge's gateway (not for a further network: its subnet's route
    only, the first network keeps the default)."""
    loopback_up(ipr)
    with netlink_errors(f"{att.ifname} in {att.netns_path}"):
        index = _index(ipr, att.ifname)
        ipr.addr("add", index=index, address=att.ipv4, prefixlen=att.prefixlen)
        if att.ipv6:
            ipr.addr("add", index=index, address=att.ipv6, prefixlen=att.ipv6_prefixlen,
                     flags=IFA_F_NODAD)
        ipr.link("set", index=index, state="up")
        if not default_route:
            return
        ipr.route("add", dst="0.0.0.0/0", gateway=att.gateway, oif=index)
        if att.ipv6:
            ipr.route("add", dst="::/0", gateway=att.ipv6_gateway, oif=index, family=10)


_GONE = object()


def _link_name(ipr, index):
    from pyroute2.netlink.exceptions import NetlinkError
    try:
        return ipr.link("get", index=index)[0].get_attr("IFLA_IFNAME")
    except NetlinkError as err:
        if err.code == errno.ENODEV:
            return _GONE
        raise


def host_routes(ipr, version, exclude=()):
    """[(ip_network, device)] of the host's main-table routes, the default route excepted
    (it overlaps everything by design), on interfaces not in ``exclude``."""
    names = {}
    found = []
    for route in ipr.route("dump", family=2 if version == 4 else 10, table=254):
        dst = route.get_attr("RTA_DST")
        if dst is None:
            continue
        oif = route.get_attr("RTA_OIF")
        if oif not in names:
            names[oif] = _link_name(ipr, oif) if oif else None
        if names[oif] is _GONE:
            continue  # its interface went away since the dump (another run's bridge)
        if names[oif] not in exclude:
            found.append((ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False),
                          names[oif]))
    return found
