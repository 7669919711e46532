"""``Networks``: persisted networks, per-container attachments, and published ports.

A ``Networks`` is this module's part (networks: create, remove, their bridge, nft elements and
ip_forward; ``attach``/``detach``; the published-port registry) and two mixins:
connections.py (netns, veth, a container's further networks: ``connect``/``disconnect``) and
names.py (the resolver of each network and the containers' /etc files). Every attach and
connect is journalled step by step in steps.py, whose undo is both detach and the rollback of
a failed attach. The id and mode rules are attachment.py's (``check_cid``, ``parse_mode``),
importable from here too, as is connections.py's ``extra_key``.

Locks: ``lock`` shared by attach/detach and exclusive for create/remove (a network cannot
vanish under an attach); leases/<net>.lock only around IPAM, the resolver and hosts files;
ports.lock around the published-port registry.
"""

import contextlib
import hashlib
import ipaddress
import os

from kago.network import hostwide, ipam, links, netns, nft, state
from kago.network.attachment import (  # noqa: F401 (CID_CHARS, MODES: re-exported)
    CID_CHARS, MODES, Attachment, check_cid, parse_mode)
from kago.network.connections import Connections, extra_key  # noqa: F401 (re-exported)
from kago.network.dns import control as dns_control
from kago.network.errors import (AddressInUse, NetworkBusy, NetworkError, NetworkExists,
                                 NetworkNotFound)
from kago.network.names import Names, upstream_servers
from kago.network.ports import PortMapping
from kago.network.rootless import hostfwd
from kago.network.steps import Steps

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def _ports(ports):
    return tuple(p if isinstance(p, PortMapping) else PortMapping.parse(p) for p in ports)


class Networks(Connections, Names):
    """Networks and container attachments kept under ``state_dir``.

    ``nft_table`` names kago's ``inet`` table; ``netns_dir``/``netns_prefix`` where and how
    container netns are named (``/run/netns/kago-<cid>``; behind slirp4netns
    ``SLIRP_RUNROOT/netns``); ``veth_prefix`` starts host-side veth names; the ``default_*``
    settings describe the network ``ensure_default`` makes; ``outbound`` is the default for
    new networks: masquerade their traffic leaving the host, which needs
    net.ipv4.ip_forward=1 (set if it is 0, and back to its value before when the last
    outbound network of any state dir on the host goes). ``host_dir`` holds what all state
    dirs share (hostwide.py): published ports, ip_forward's saved value (/run/kago/host;
    behind slirp4netns ``SLIRP_RUNROOT/network-host``: the holder's namespace is their
    host). ``dns``: run a resolver on each bridge network's gateway for its containers'
    names (kago.network.dns);
    ``dns_upstream``: where it forwards other names (["ADDRESS[:PORT]", ...]; None: the
    servers of the host's /etc/resolv.conf; []: nowhere, SERVFAIL).

    ``slirp_runroot``: this state's networks live in a rootless holder's network namespace,
    connected to the host by the slirp4netns ``rootless.outside.connect`` started with its
    files in that directory. A published port is then also forwarded from the host by
    slirp4netns (rootless/hostfwd.py), its DNAT here matching slirp's delivery address;
    the resolvers' upstream is slirp4netns's DNS forwarder (10.0.2.3) unless
    ``dns_upstream`` says otherwise, and netns_dir and host_dir default to the runroot's.
    None (root): the host's own ports, nothing changes.

    ``mtu``: the containers' interfaces' (and so their bridges'); None: the kernel's 1500,
    or behind slirp4netns its tap0's 65520 (slirp4netns's cost is per packet: 1500-byte
    packets through it carry a tenth of what 65520-byte ones do).
    """

    def __init__(self, state_dir="/var/lib/kago/network", nft_table="kago",
                 netns_dir=None, netns_prefix="kago-", veth_prefix="kv",
                 default_network="kago", default_bridge="kago0",
                 default_subnet="10.89.0.0/24", default_ipv6_subnet=None, outbound=True,
                 host_dir=None, dns=True, dns_upstream=None, slirp_runroot=None, mtu=None):
        self.state = state.StateDir(state_dir)
        if slirp_runroot:   # the holder's: /run/netns and /run/kago are the host root's
            netns_dir = netns_dir or os.path.join(slirp_runroot, "netns")
            host_dir = host_dir or os.path.join(slirp_runroot, "network-host")
        self.host = hostwide.HostState(host_dir or hostwide.HOST_DIR)
        self.nft_table = nft.check_table(nft_table)
        self.netns_dir = netns_dir or netns.RUN_DIR
        self.netns_prefix = netns_prefix
        if len(ipam.check_ifname(veth_prefix, "veth prefix")) > 7:
            raise NetworkError(f"veth prefix {veth_prefix!r}: at most 7 characters (a hash "
                               "of the id fills the name to 15)")
        self.veth_prefix = veth_prefix
        self.default_network = default_network
        self.default_bridge = default_bridge
        self.default_subnet = default_subnet
        self.default_ipv6_subnet = default_ipv6_subnet
        self.outbound = outbound
        self.dns = bool(dns)
        if dns_upstream is None and slirp_runroot:
            dns_upstream = [hostfwd.DNS_IP]   # the host's resolv.conf may name its loopback
        self.dns_upstream = upstream_servers(dns_upstream)
        self.slirp_runroot = slirp_runroot
        if mtu is None and slirp_runroot:
            mtu = hostfwd.TAP_MTU
        if mtu is not None and not 68 <= mtu <= 65535:
            raise NetworkError(f"mtu {mtu}: use 68-65535")
        self.mtu = mtu

    # ------------------------------------------------------------------ networks

    def create(self, name, subnet=None, bridge=None, gateway=None, ipv6_subnet=None,
               ipv6_gateway=None, outbound=None):
        """Checks, makes the bridge and nft elements, and records a network. Returns its dict.
        Without ``subnet``, the first free /24 of 10.89.0.0/16 (free of kago networks and of
        the host's routes)."""
        outbound = self.outbound if outbound is None else outbound
        bridge = bridge or self._bridge_name(ipam.check_name(name))
        if subnet is not None:              # bad input fails before any lock or netlink
            ipam.network_record(name, subnet, bridge, gateway, ipv6_subnet, ipv6_gateway)
        with self.state.lock(exclusive=True):
            if os.path.exists(self.state.network(name)):
                raise NetworkExists(name)
            others = [self.get(n) for n in self.state.network_names()]
            with links.host() as ipr:
                routes = {4: links.host_routes(ipr, 4, exclude=(bridge,)),
                          6: links.host_routes(ipr, 6, exclude=(bridge,))}
                if subnet is None:
                    used = [ipaddress.ip_network(o["subnet"]) for o in others]
                    subnet = ipam.free_subnet(used + [net for net, _ in routes[4]])
                record = ipam.network_record(name, subnet, bridge, gateway, ipv6_subnet,
                                             ipv6_gateway, outbound)
                self._check_unshared(record, others)
                self._check_routes(record, routes)
                self._make_network(ipr, record, others)
        return dict(record)

    def _make_network(self, ipr, record, others):
        made = None
        try:
            made = links.ensure_bridge(ipr, record, self._alias(record["name"]))
            self._nft_network(record)
            if record["outbound"]:
                self._ensure_ip_forward(record["name"])
            state.write_json(self.state.network(record["name"]), record)
        except BaseException:
            with contextlib.suppress(Exception):
                self._undo_network(ipr, record, others, made)
            raise

    def ensure_default(self):
        """The default network ("kago" on bridge kago0), made on first use; its dict."""
        with contextlib.suppress(NetworkNotFound):
            return self._setup_if_missing(self.get(self.default_network))
        try:
            return self.create(self.default_network, self.default_subnet, self.default_bridge,
                               ipv6_subnet=self.default_ipv6_subnet)
        except NetworkExists:               # another process made it meanwhile
            return self.get(self.default_network)

    def get(self, name):
        ipam.check_name(name)
        record = state.read_json(self.state.network(name))
        if record is None:
            raise NetworkNotFound(name)
        return record

    def list(self):
        """Every network's dict, with "containers": the ids attached to it."""
        attached = {}
        for att in self.attachments():
            attached.setdefault(att.network, []).append(att.owner or att.cid)
        return [dict(self.get(n), containers=attached.get(n, []))
                for n in self.state.network_names()]

    def remove(self, name):
        """Removes the bridge, nft elements and records; refuses while containers are attached."""
        with self.state.lock(exclusive=True):
            record = self.get(name)
            users = [a.owner or a.cid for a in self.attachments() if a.network == name]
            if users:
                raise NetworkBusy(name, users)
            others = [self.get(n) for n in self.state.network_names() if n != name]
            with self.state.lease_lock(name):
                dns_control.stop(self.state.root, name)
            with links.host() as ipr:
                self._undo_network(ipr, record, others, made=True)
            state.remove_file(self.state.network(name))
            state.remove_file(self.state.leases(name))
            state.remove_file(self.state.lease_lock_path(name))

    def _bridge_name(self, name):
        """kago-<name> when it fits in IFNAMSIZ, else kago- and a hash of the name."""
        candidate = f"kago-{name}"
        if len(candidate) < ipam.IFNAMSIZ:
            return candidate
        return "kago-" + hashlib.sha256(name.encode()).hexdigest()[:10]

    def _alias(self, name):
        """IFLA_IFALIAS of our bridges: shows in ``ip link``, ties the bridge to this state."""
        return f"kago:{name}:{self.state.root}"[:255]

    @staticmethod
    def _check_unshared(record, others):
        clash = ipam.overlapping(record, others)
        if clash:
            raise NetworkError(f"subnet {record['subnet']}: overlaps network "
                               f"{clash['name']!r} ({clash['subnet']}): choose another subnet")
        for other in others:
            if other["bridge"] == record["bridge"]:
                raise NetworkError(f"bridge {record['bridge']}: already used by network "
                                   f"{other['name']!r}")

    @staticmethod
    def _check_routes(record, routes):
        """A kago network must not shadow the host's own LAN (or a VPN's routes)."""
        for text in filter(None, (record["subnet"], record["ipv6_subnet"])):
            subnet = ipaddress.ip_network(text)
            for dst, dev in routes[subnet.version]:
                if subnet.overlaps(dst):
                    raise NetworkError(f"subnet {text}: overlaps the host's route {dst} on "
                                       f"{dev}: choose another subnet")

    def _nft_network(self, record):
        nft.apply(nft.base_ruleset(self.nft_table)
                  + nft.add_elements(self.nft_table, nft.network_elements(record)))

    def _undo_network(self, ipr, record, others, made):
        """Host side of a network away: its bridge (if we made it), its nft elements, the whole
        table when no network is left, and ip_forward back if kago turned it on."""
        if made:
            links.delete_link(ipr, record["bridge"])
        if others:
            nft.apply(nft.delete_elements(self.nft_table, nft.network_elements(record)))
        else:
            nft.apply(nft.delete_table(self.nft_table))
        self._restore_ip_forward(record["name"])

    def _setup_if_missing(self, record):
        """After a reboot the records survive but the bridge and nft table do not: remake
        them. One netlink lookup when all is in place."""
        with links.host() as ipr:
            if ipr.link_lookup(ifname=record["bridge"]):
                return record
            with self.state.lease_lock(record["name"]):
                links.ensure_bridge(ipr, record, self._alias(record["name"]))
                self._nft_network(record)
                if record["outbound"]:
                    self._ensure_ip_forward(record["name"])
        return record

    def _ensure_ip_forward(self, network):
        """Outbound masquerade is useless unless the host forwards: on, with its value before
        the first kago network of any state dir that needed it saved host-wide."""
        legacy = os.path.join(self.state.root, "host.json")  # an older kago's saved value
        was = (state.read_json(legacy, {}) or {}).get("ip_forward_was")
        self.host.need_forwarding(self.state.root, network, self._read_forward,
                                  self._write_forward, was=was)
        state.remove_file(legacy)

    def _restore_ip_forward(self, network):
        """``network`` is gone: ip_forward back to its saved value if it was the last kago
        network of the host that needed it (writing ip_forward resets every interface's
        forwarding flag, so nothing is written while one is left)."""
        self.host.done_forwarding(self.state.root, network, self._read_forward,
                                  self._write_forward)

    @staticmethod
    def _read_forward():
        return links.read_sysctl(IP_FORWARD)

    @staticmethod
    def _write_forward(value):
        links.write_sysctl(IP_FORWARD, value)

    # ------------------------------------------------------------------ attachments

    def attach(self, cid, mode="bridge", network=None, netns_name=None, ip=None, mac=None,
               ports=(), hostname=None, aliases=(), ipv6=None, etc_dir=None, resolv_conf=None,
               pid=None, extra_hosts=(), dns=None):
        """Gives container ``cid`` its network; returns an ``Attachment``.

        ``ip``/``ipv6``/``mac`` request static values; ``ports`` are PortMappings or "-p"
        strings; ``hostname``/``aliases`` are the names peers see in /etc/hosts. With
        ``etc_dir``, hosts/resolv.conf/hostname are written there (and kept up to date as peers
        come and go). With ``pid`` (an OCI hook's case: the runtime already made the
        container's netns), that process's netns is named and plumbed instead of a new one.
        Anything failing undoes everything this call made. ``extra_hosts`` ([(name, ip)])
        and ``dns`` ({"servers", "search", "options"}) are the container's own /etc lines.
        """
        check_cid(cid)
        kind, other = parse_mode(mode)
        ports = _ports(ports)
        if ports and kind != "bridge":
            raise NetworkError(f"published ports need bridge mode, not {mode!r}")
        slirp = None
        if ports and self.slirp_runroot:      # refused before anything is made
            slirp = hostfwd.connection(self.slirp_runroot)
            hostfwd.check_early(ports, slirp)
        if kind == "bridge":
            network = network or self.default_network
            if network == self.default_network:
                self.ensure_default()
            else:
                self._setup_if_missing(self.get(network))
        with self.state.lock():
            if kind == "host":
                att = Attachment(cid, "host", hostname=hostname, aliases=aliases,
                                 etc_dir=etc_dir)
            elif kind == "container":
                att = self._shared(cid, other, hostname, aliases, etc_dir)
            else:
                att = self._own_netns(cid, kind, network, netns_name, hostname, aliases,
                                      etc_dir)
            att.extra_hosts = tuple(tuple(h) for h in extra_hosts or ())
            att.dns = dict(dns) if dns else None
            steps = Steps(self, att)
            if slirp is not None:
                steps.forwards = {"api_socket": slirp.api_socket, "ids": []}
            steps.claim()
            try:
                if kind == "bridge":
                    self._bridge_steps(steps, att, ip, ipv6, mac, ports, pid, slirp)
                elif kind == "none":
                    steps.mark("netns", lambda: self._make_netns(att, pid))
                if self._uses_dns(att):
                    steps.mark("dns", lambda: self._sync_dns(att.network))
                if etc_dir:
                    steps.mark("etc", lambda: self._write_etc(att, resolv_conf))
                steps.done()
            except BaseException as err:
                steps.abandon(err)
                raise
        return att

    def _publish(self, att, record, ports):
        """One nft transaction of elements only (~2.5 ms; declaring the table's sets and chains
        costs ~16 ms, so that happens only when the table is missing: after a reboot or an
        ``nft flush ruleset``). The network's own elements ride along, idempotently."""
        elements = (nft.add_elements(self.nft_table, nft.network_elements(record))
                    + nft.create_elements(self.nft_table,
                                          nft.port_elements(ports, att.ipv4, att.ipv6)))
        try:
            nft.apply(elements)
        except NetworkError:
            if nft.table_exists(self.nft_table):
                raise
            nft.apply(nft.base_ruleset(self.nft_table) + elements)

    def _reserve_ports(self, cid, ports, steps=None):
        """Registers ``ports`` for ``cid``, refusing ones another container publishes or a host
        process already listens on (its connections would silently go to the container).
        Behind a rootless holder's slirp4netns the checks here are of the ports' guest
        mappings (``steps.nat_ports``): the host's own sockets are slirp4netns's to meet
        when it binds the port (rootless/hostfwd.py)."""
        nat = steps.nat_ports if steps is not None else (lambda ports: ports)
        mine = (self.state.root, cid)
        with self.state.ports_lock(), self.host.ports_lock():
            table = state.read_json(self.state.ports(), [])
            host = self.host.ports()  # every state dir's: another root's container too
            found = {proto: hostwide.listeners(proto) for proto in {p.proto for p in ports}}
            for p, inner in zip(ports, nat(ports)):
                for entry in table:
                    theirs, = nat((PortMapping.from_dict(entry),))
                    if entry["cid"] != cid and inner.conflicts(theirs):
                        raise AddressInUse(f"host port {p.host_port}/{p.proto}: already "
                                           f"published by container {entry['cid']}")
                for entry in host:
                    if (entry["state"], entry["cid"]) != mine and \
                            p.conflicts(PortMapping.from_dict(entry)):
                        raise AddressInUse(f"host port {p.host_port}/{p.proto}: already "
                                           f"published by container {entry['cid'][:12]} of "
                                           f"the kago state in {entry['state']}")
                clash = hostwide.listener_conflict(inner, found[p.proto])
                if clash:
                    raise AddressInUse(f"host port {p.host_port}/{p.proto}: a process on the "
                                       f"host already uses it (bound to {clash[0]})")
                hostwide.check_port_free(inner)
            table += [dict(p.to_dict(), cid=cid) for p in ports]
            host = [e for e in host if (e["state"], e["cid"]) != mine]
            host += [dict(p.to_dict(), cid=cid, state=self.state.root) for p in ports]
            self.host.write_ports(host)
            state.write_json(self.state.ports(), table)

    def _release_ports(self, cid):
        mine = (self.state.root, cid)
        with self.state.ports_lock(), self.host.ports_lock():
            table = state.read_json(self.state.ports(), [])
            kept = [e for e in table if e["cid"] != cid]
            if len(kept) != len(table):
                state.write_json(self.state.ports(), kept)
            self.host.write_ports([e for e in self.host.ports()
                                   if (e["state"], e["cid"]) != mine])

    def detach(self, cid):
        """Removes what ``attach`` made for ``cid``: veth, leases, nft elements, netns bind
        mount, records; its further networks (``connect``) first. Calling it again, or for
        an unknown id, does nothing."""
        check_cid(cid)
        for att in self.extras(cid):
            self.detach_one(att.cid)
        self.detach_one(cid)

    def detach_one(self, cid):
        """``detach`` of this attachment key alone (a further network's: <cid>+<network>)."""
        with self.state.lock():
            data = state.read_json(self.state.attachment(cid))
            if data is None:
                return
            Steps.load(self, data).undo(raise_errors=True)

    def attachment(self, cid):
        """The ``Attachment`` of ``cid``, or None."""
        data = state.read_json(self.state.attachment(check_cid(cid)))
        return Attachment.from_dict(data["attachment"]) if data else None

    def attachments(self, network=None):
        found = []
        for cid in self.state.attachment_ids():
            att = self.attachment(cid)
            if att is not None and (network is None or att.network == network):
                found.append(att)
        return found

    def peers(self, network):
        """[(name, ip)] of every container on ``network``, for /etc/hosts."""
        return [(name, att.ipv4) for att in self.attachments(network) if att.ipv4
                for name in att.names]
