"""``Networks``: persisted networks, per-container attachments, and their undo.

An attach is a list of steps, each recorded in attachments/<cid>.json *before* it runs::

    leases -> ports -> netns -> veth -> addresses -> nft -> dns -> etc files

so detach (and the rollback of a failed attach, which is the same code) removes exactly what
was made, even when the attaching process died half-way. A step that fails because its object
already existed (a veth name clash, a netns name taken) is unmarked: that object is somebody
else's and stays. Locks: ``lock`` shared by attach/detach and exclusive for create/remove (a
network cannot vanish under an attach); leases/<net>.lock only around IPAM and hosts files;
ports.lock around the published-port registry.

The ``dns`` step puts the container's names in its network's resolver table and starts the
resolver (kago.network.dns) on the first attach; undoing it takes them out again and stops the
resolver with the last one, under leases/<net>.lock.

``connect`` gives a container with its own netns a further network (docker's ``network
connect``): an attachment keyed ``<cid>+<network>`` (``owner`` = cid) journalled the same way,
``record -> leases -> veth -> dns -> hosts``, with no netns step (the owner's netns is
used and stays) and an interface eth1, eth2... with its subnet's route only (the first
network keeps the default route). ``detach(cid)`` takes the further networks first.
"""

import contextlib
import errno
import hashlib
import ipaddress
import os
import socket

from kago.faults import fault
from kago.network import hostwide, ipam, links, netns, nft, state
from kago.network.attachment import Attachment
from kago.network.dns import control as dns_control, table as dns_table
from kago.network.errors import (AddressInUse, AttachmentExists, NetworkBusy, NetworkError,
                                 NetworkExists, NetworkNotFound, ObjectExists)
from kago.network.files import hosts_text, write_etc_files, write_in_place
from kago.network.ports import PortMapping

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
MODES = ("none", "bridge", "host")
CID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


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


def extra_key(cid, network):
    """The attachment key of container ``cid``'s further network ``network``."""
    return f"{cid}+{network}"


def _ports(ports):
    return tuple(p if isinstance(p, PortMapping) else PortMapping.parse(p) for p in ports)


class Networks:
    """Networks and container attachments kept under ``state_dir``.

    ``nft_table`` names kago's ``inet`` table; ``netns_dir``/``netns_prefix`` where and how
    container netns are named (``/run/netns/kago-<cid>``); ``veth_prefix`` starts host-side
    veth names; the ``default_*`` settings describe the network ``ensure_default`` makes;
    ``outbound`` is the default for new networks: masquerade their traffic leaving the host,
    which needs net.ipv4.ip_forward=1 (set if it is 0, and back to its value before when the
    last outbound network of any state dir on the host goes). ``host_dir`` holds what all
    state dirs share (hostwide.py): published ports, ip_forward's saved value. ``dns``: run a
    resolver on each bridge network's gateway for its containers' names (kago.network.dns);
    ``dns_upstream``: where it forwards other names (["ADDRESS[:PORT]", ...]; None: the
    servers of the host's /etc/resolv.conf; []: nowhere, SERVFAIL).
    """

    def __init__(self, state_dir="/var/lib/kago/network", nft_table="kago",
                 netns_dir=netns.RUN_DIR, netns_prefix="kago-", veth_prefix="kv",
                 default_network="kago", default_bridge="kago0",
                 default_subnet="10.89.0.0/24", default_ipv6_subnet=None, outbound=True,
                 host_dir=hostwide.HOST_DIR, dns=True, dns_upstream=None):
        self.state = state.StateDir(state_dir)
        self.host = hostwide.HostState(host_dir)
        self.nft_table = nft.check_table(nft_table)
        self.netns_dir = netns_dir
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
        self.dns_upstream = _upstream(dns_upstream)

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
            steps = _Steps(self, att)
            steps.claim()
            try:
                if kind == "bridge":
                    self._bridge_steps(steps, att, ip, ipv6, mac, ports, pid)
                elif kind == "none":
                    steps.mark("netns", lambda: self._make_netns(att, pid))
                if self._uses_dns(att):
                    steps.mark("dns", lambda: self._sync_dns(att.network))
                if etc_dir:
                    steps.mark("etc", lambda: self._write_etc(att, resolv_conf))
                steps.done()
            except BaseException as err:
                failed = steps.undo()
                if failed and isinstance(err, Exception):
                    raise NetworkError(f"{err}; cleanup also failed: {failed}") from err
                raise
        return att

    def _own_netns(self, cid, kind, network, netns_name, hostname, aliases, etc_dir):
        name = netns.check_name(netns_name or f"{self.netns_prefix}{cid}")
        att = Attachment(cid, kind, netns_name=name,
                         netns_path=os.path.join(self.netns_dir, name), hostname=hostname,
                         aliases=aliases, etc_dir=etc_dir)
        if kind == "bridge":
            record = self.get(network)
            att.network = network
            att.bridge = record["bridge"]
            att.gateway = record["gateway"]
            att.prefixlen = record["prefixlen"]
            att.ipv6_gateway = record["ipv6_gateway"]
            att.ipv6_prefixlen = record["ipv6_prefixlen"]
            att.host_ifname = self.veth_name(cid)
        return att

    def _shared(self, cid, other, hostname, aliases, etc_dir):
        """container:<other>: the other's netns and addresses, followed to the container that
        owns the netns when <other> itself shares one."""
        if other == cid:
            raise NetworkError(f"network mode container:{cid}: a container cannot join itself")
        owner = self.attachment(other)
        if owner is None:
            raise NetworkError(f"network mode container:{other}: that container has no "
                               "network: start it first")
        if owner.shares:
            owner = self.attachment(owner.shares) or owner
        att = Attachment.from_dict(owner.to_dict())
        att.cid, att.mode, att.shares, att.ports = cid, f"container:{other}", owner.cid, ()
        att.host_ifname = None
        att.hostname, att.aliases, att.etc_dir = hostname, tuple(aliases), etc_dir
        return att

    def connect(self, cid, network, ip=None, aliases=(), hostname=None):
        """Container ``cid`` (attached, with a netns of its own) on a further bridge network:
        a veth into its netns as the next free ethN, a lease, its names in ``network``'s
        resolver and every /etc/hosts concerned (its own lists the new network's containers).
        Returns the new ``Attachment``; a failure undoes what this call made."""
        check_cid(cid)
        primary = self.attachment(cid)
        if primary is None or primary.owner:
            raise NetworkError(f"container {cid}: not attached to a network (start it first)")
        if primary.mode == "host" or primary.shares or not primary.netns_path:
            raise NetworkError(f"container {cid}: its network mode {primary.mode} has no "
                               "network namespace of its own to connect")
        if network == primary.network:
            raise NetworkError(f"container {cid} is already connected to network {network}")
        self._setup_if_missing(self.get(network))
        key = extra_key(cid, network)
        with self.state.lock():
            record = self.get(network)
            used = {primary.ifname} | {a.ifname for a in self.extras(cid)}
            ifname = next(f"eth{n}" for n in range(1, len(used) + 2) if f"eth{n}" not in used)
            att = Attachment(key, "bridge", network, netns_name=primary.netns_name,
                             netns_path=primary.netns_path, ifname=ifname,
                             gateway=record["gateway"], prefixlen=record["prefixlen"],
                             ipv6_gateway=record["ipv6_gateway"],
                             ipv6_prefixlen=record["ipv6_prefixlen"], bridge=record["bridge"],
                             host_ifname=self.veth_name(key),
                             hostname=hostname or primary.hostname, aliases=aliases,
                             owner=cid)
            steps = _Steps(self, att)
            try:
                steps.claim()
            except AttachmentExists:
                raise NetworkError(f"container {cid} is already connected to network "
                                   f"{network}") from None
            try:
                leases = ipam.Leases(self.state, record)

                def take():
                    att.ipv4, att.ipv6, att.mac = leases.take(key, ip, None, None)
                steps.mark("leases", take, atomic=True)
                steps.mark("veth", lambda: self._make_veth(att, default_route=False))
                if self._uses_dns(att):
                    steps.mark("dns", lambda: self._sync_dns(network))
                steps.mark("hosts", lambda: self._refresh_hosts(network))
                steps.done()
            except BaseException as err:
                failed = steps.undo()
                if failed and isinstance(err, Exception):
                    raise NetworkError(f"{err}; cleanup also failed: {failed}") from err
                raise
        return att

    def disconnect(self, cid, network):
        """Takes container ``cid`` off its further network ``network`` (``connect``'s
        undo: interface, lease, names); NetworkError if it is not connected to it."""
        key = extra_key(check_cid(cid), network)
        if state.read_json(self.state.attachment(key)) is None:
            raise NetworkError(f"container {cid} is not connected to network {network}")
        self.detach_one(key)

    def extras(self, cid):
        """The further networks' attachments of container ``cid`` (``connect``)."""
        found = []
        for key in self.state.attachment_ids():
            if key.startswith(cid + "+"):
                att = self.attachment(key)
                if att is not None and att.owner == cid:
                    found.append(att)
        return found

    def veth_name(self, cid):
        """Host end of a container's veth: prefix + a hash of the id, within IFNAMSIZ."""
        digest = hashlib.sha256(cid.encode()).hexdigest()
        return self.veth_prefix + digest[:ipam.IFNAMSIZ - 1 - len(self.veth_prefix)]

    def _bridge_steps(self, steps, att, ip, ipv6, mac, ports, pid=None):
        record = self.get(att.network)
        leases = ipam.Leases(self.state, record)
        # ports the addresses cannot carry (an IPv6 host ip, no IPv6 subnet) fail before any
        # step: placeholders stand for the addresses IPAM has not handed out yet
        nft.port_elements(ports, "0.0.0.0", "::" if record["ipv6_subnet"] else None)

        def take():
            att.ipv4, att.ipv6, att.mac = leases.take(att.cid, ip, ipv6, mac)
        steps.mark("leases", take, atomic=True)
        if ports:
            def reserve():
                att.ports = ports
                self._reserve_ports(att.cid, ports)
            steps.mark("ports", reserve, atomic=True)
        steps.mark("netns", lambda: self._make_netns(att, pid))
        steps.mark("veth", lambda: self._make_veth(att))
        if ports:   # one nft transaction: all elements or none
            steps.mark("nft", lambda: self._publish(att, record), atomic=True)

    def _make_netns(self, att, pid=None):
        netns.ensure_run_dir(self.netns_dir)
        if pid is None:
            netns.create(att.netns_path)
        else:
            netns.adopt(att.netns_path, pid)
        if att.mode == "none":
            with links.inside(att.netns_path) as ipr:
                links.loopback_up(ipr)

    def _make_veth(self, att, default_route=True):
        with links.host() as ipr:
            links.add_veth(ipr, att.host_ifname, att.bridge, att.netns_path, att.ifname,
                           att.mac)
        with links.inside(att.netns_path) as ipr:
            if default_route:
                links.configure(ipr, att)
            else:
                links.configure(ipr, att, default_route=False)

    def _publish(self, att, record):
        """One nft transaction of elements only (~2.5 ms; declaring the table's sets and chains
        costs ~16 ms, so that happens only when the table is missing: after a reboot or an
        ``nft flush ruleset``). The network's own elements ride along, idempotently."""
        elements = (nft.add_elements(self.nft_table, nft.network_elements(record))
                    + nft.create_elements(self.nft_table,
                                          nft.port_elements(att.ports, att.ipv4, att.ipv6)))
        try:
            nft.apply(elements)
        except NetworkError:
            if nft.table_exists(self.nft_table):
                raise
            nft.apply(nft.base_ruleset(self.nft_table) + elements)

    def _reserve_ports(self, cid, ports):
        """Registers ``ports`` for ``cid``, refusing ones another container publishes or a host
        process already listens on (its connections would silently go to the container)."""
        mine = (self.state.root, cid)
        with self.state.ports_lock(), self.host.ports_lock():
            table = state.read_json(self.state.ports(), [])
            host = self.host.ports()  # every state dir's: another root's container too
            found = {proto: hostwide.listeners(proto) for proto in {p.proto for p in ports}}
            for p in ports:
                for entry in table:
                    theirs = PortMapping.from_dict(entry)
                    if entry["cid"] != cid and p.conflicts(theirs):
                        raise AddressInUse(f"host port {p.host_port}/{p.proto}: already "
                                           f"published by container {entry['cid']}")
                for entry in host:
                    if (entry["state"], entry["cid"]) != mine and \
                            p.conflicts(PortMapping.from_dict(entry)):
                        raise AddressInUse(f"host port {p.host_port}/{p.proto}: already "
                                           f"published by container {entry['cid'][:12]} of "
                                           f"the kago state in {entry['state']}")
                clash = hostwide.listener_conflict(p, found[p.proto])
                if clash:
                    raise AddressInUse(f"host port {p.host_port}/{p.proto}: a process on the "
                                       f"host already uses it (bound to {clash[0]})")
                _check_port_free(p)
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
            _Steps.load(self, data).undo(raise_errors=True)

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

    # ------------------------------------------------------------------ dns

    def _uses_dns(self, att):
        """A container on a bridge network (its own or shared netns) is named by its
        network's resolver and uses it."""
        return self.dns and bool(att.network and att.ipv4 and att.gateway)

    def _dns_members(self, network, gone=None):
        """Attachments on ``network`` whose dns step ran (not one being undone: ``gone``)."""
        found = []
        for cid in self.state.attachment_ids():
            data = state.read_json(self.state.attachment(cid))
            if not data or cid == gone or "dns" not in data.get("made", ()):
                continue
            att = data["attachment"]
            if att.get("network") == network and att.get("ipv4"):
                found.append(att)
        return found

    def _dns_all(self):
        """{key: attachment dict} of every attachment whose dns step ran."""
        found = {}
        for key in self.state.attachment_ids():
            data = state.read_json(self.state.attachment(key))
            if data and "dns" in data.get("made", ()) and data["attachment"].get("ipv4"):
                found[key] = data["attachment"]
        return found

    @staticmethod
    def _dns_views(network, members, every):
        """{client address: [attachments]} for ``network``'s table: to each member whose
        container is on other networks too (connect), the containers of those networks."""
        by_owner, by_net = {}, {}
        for a in every:
            by_owner.setdefault(a.get("owner") or a["cid"], []).append(a)
            by_net.setdefault(a["network"], []).append(a)
        views = {}
        for m in members:
            owner = m.get("owner") or m["cid"]
            for mine in by_owner.get(owner, ()):
                if mine["network"] != network:
                    views.setdefault(m["ipv4"], []).extend(
                        a for a in by_net.get(mine["network"], ())
                        if (a.get("owner") or a["cid"]) != owner)
        return views

    def _sync_dns(self, network, gone=None, then=None, related=True):
        """The resolver of ``network`` told about its containers (started on the first,
        stopped after the last). ``gone``: a container leaving; ``then`` runs under the same
        lock (the leaving container's journal loses its dns mark there: a concurrent detach
        must never count it as a member after this one left it out). A resolver that cannot
        be restarted while a container leaves is no error: the next attach tries again.
        With ``related``, then the tables of the other networks its containers are on
        (their views: a container on both asks its first network's resolver for names of
        this one), each under its own lock."""
        owners = set()
        with self.state.lease_lock(network):
            record = state.read_json(self.state.network(network))
            every = self._dns_all()
            leaving = every.pop(gone, None) if gone else None
            members = [a for a in every.values() if a.get("network") == network]
            owners = {a.get("owner") or a["cid"] for a in members + [leaving] if a}
            try:
                if record is None:
                    dns_control.stop(self.state.root, network)
                else:
                    never = [(r["gateway"], 53) for r in
                             (state.read_json(self.state.network(n))
                              for n in self.state.network_names()) if r and r.get("gateway")]
                    dns_control.sync(self.state.root, record, members, self.dns_upstream,
                                     never, self._dns_views(network, members,
                                                            list(every.values())))
            except dns_control.ResolverError as err:
                if gone is None:
                    raise NetworkError(f"{err} (without a resolver: \"dns\": false in the "
                                       "network settings)") from None
            if then is not None:
                then()
        if related:
            others = {a["network"] for a in every.values()
                      if (a.get("owner") or a["cid"]) in owners and a["network"] != network}
            for other in sorted(others):
                with contextlib.suppress(NetworkError, dns_control.ResolverError):
                    self._sync_dns(other, related=False)

    def resolvers(self):
        """{network: resolver process record} of the resolvers this state dir runs."""
        found = {}
        for name in self.state.network_names():
            record = dns_control.read_record(self.state.root, name)
            if dns_control.alive(record):
                found[name] = record
        return found

    def sweep_resolvers(self):
        """For ``kago system prune``: stops resolvers whose network has no container left and
        resolver processes of this state dir no record names. Returns what it stopped."""
        done = []
        names = set(self.state.network_names())
        if os.path.isdir(dns_control.dns_dir(self.state.root)):
            for entry in os.listdir(dns_control.dns_dir(self.state.root)):
                if entry.endswith(".proc.json"):
                    names.add(entry[:-len(".proc.json")])
        with self.state.lock():
            for name in sorted(names):
                # a removed network's: no attach can come, and no lock file is left for it
                known = os.path.exists(self.state.network(name))
                with self.state.lease_lock(name) if known else contextlib.nullcontext():
                    record = dns_control.read_record(self.state.root, name)
                    if record is None or self._dns_members(name):
                        continue
                    pid = dns_control.stop(self.state.root, name)
                    done.append(f"dns resolver of network {name}"
                                + (f" (pid {pid})" if pid else ""))
            for pid, name in dns_control.strays(self.state.root):
                dns_control.kill(pid, dns_control.start_time(pid))
                done.append(f"stray dns resolver of network {name} (pid {pid})")
        return done

    # ------------------------------------------------------------------ /etc files

    def _write_etc(self, att, resolv_conf):
        peers, also = self._hosts_view(att, self._hosts_index())
        nameservers = [att.gateway] if self._uses_dns(att) else None
        write_etc_files(att.etc_dir, att.hostname, att, peers, resolv_conf, nameservers,
                        also)
        self._refresh_hosts(att.network, skip=att.cid)

    def _hosts_index(self, gone=None):
        """Every attachment but ``gone``, read once: ({key: att}, {network: [att]},
        {owner: [its further networks' atts]})."""
        every = [a for a in self.attachments() if a.cid != gone]
        by_net, extras = {}, {}
        for a in every:
            by_net.setdefault(a.network, []).append(a)
            if a.owner:
                extras.setdefault(a.owner, []).append(a)
        return {a.cid: a for a in every}, by_net, extras

    @staticmethod
    def _hosts_view(att, index):
        """(peers, its addresses on further networks) for the /etc/hosts of container
        ``att`` (a first attachment): the containers of each of its networks but itself."""
        _keys, by_net, extras = index
        mine = extras.get(att.cid, [])
        networks = [n for n in [att.network] + [e.network for e in mine] if n]
        peers = [(name, a.ipv4) for net in networks for a in by_net.get(net, ())
                 if a.ipv4 and (a.owner or a.cid) != att.cid for name in a.names]
        return peers, [e.ipv4 for e in mine]

    def _refresh_hosts(self, network, skip=None, gone=None):
        """Rewrites (in place) the hosts file of every container on ``network`` that asked for
        etc files, so running peers learn about a container that came (``skip``: it wrote its
        own) or went (``gone``: no longer anybody's peer)."""
        if not network:
            return
        with self.state.lease_lock(network):
            index = self._hosts_index(gone)
            done = set()
            leaving = self.attachment(gone) if gone else None
            targets = list(index[1].get(network, ()))
            if leaving is not None and leaving.owner:   # its container forgets them too
                targets.append(leaving)
            for att in targets:
                if att.owner:               # a further network: its container's own file
                    att = index[0].get(att.owner)
                if att is None or att.cid in (skip, gone) or att.cid in done \
                        or not att.etc_dir or not os.path.isdir(att.etc_dir):
                    continue
                done.add(att.cid)
                peers, also = self._hosts_view(att, index)
                write_in_place(os.path.join(att.etc_dir, "hosts"),
                               hosts_text(att.hostname, att, peers, also))


def _upstream(servers):
    if servers is None:
        return None
    if isinstance(servers, str) or not isinstance(servers, (list, tuple)):
        raise NetworkError(f"dns_upstream {servers!r}: use a list of \"ADDRESS[:PORT]\"")
    try:
        return [dns_table.parse_server(s) for s in servers]
    except ValueError as err:
        raise NetworkError(str(err)) from None


def _check_port_free(p):
    family = socket.AF_INET6 if p.family == 6 else socket.AF_INET
    kind = socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((p.host_ip or "0.0.0.0", p.host_port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise AddressInUse(f"host port {p.host_port}/{p.proto}: a process on the host "
                                   "already uses it") from None
            if err.errno != errno.EADDRNOTAVAIL:
                raise
            raise NetworkError(f"port {p}: {p.host_ip} is not an address of this host") \
                from None


class _Steps:
    """The attach journal: marks a step in attachments/<cid>.json before running it, and
    undoes marked steps in reverse. The journal file itself is the last thing removed."""

    UNDO_ORDER = ("etc", "hosts", "dns", "nft", "veth", "netns", "ports", "leases", "record")

    def __init__(self, nets, att, made=()):
        self.nets = nets
        self.att = att
        self.made = list(made)

    @classmethod
    def load(cls, nets, data):
        return cls(nets, Attachment.from_dict(data["attachment"]), data.get("made", ()))

    def save(self):
        state.write_json(self.nets.state.attachment(self.att.cid),
                         {"attachment": self.att.to_dict(), "made": self.made})

    def claim(self):
        """Creates the record exclusively and complete (two attaches of one id race here, and
        only one wins; readers never see an empty or half-written record), journalling it as
        the first step."""
        self.made.append("record")
        try:
            state.create_json(self.nets.state.attachment(self.att.cid),
                              {"attachment": self.att.to_dict(), "made": self.made})
        except FileExistsError:
            self.made.remove("record")
            raise AttachmentExists(self.att.cid) from None
        fault("attach.record")

    def mark(self, step, action, atomic=False):
        """Journal ``step``, then run ``action``. The mark is taken back when the action failed
        without making anything: an ``atomic`` action (all or nothing), or one that found its
        object already there (ObjectExists: somebody else's, left alone). What a step learns
        (addresses) reaches the record with the next step's mark, or ``done``: undo needs only
        the id and the planned names up to there (leases are released by id)."""
        self.made.append(step)
        self.save()
        try:
            action()
        except BaseException as err:
            if atomic or isinstance(err, ObjectExists):
                self.made.remove(step)
            raise
        fault(f"attach.{step}")

    def done(self):
        self.save()

    def undo(self, raise_errors=False):
        """Undoes every marked step, newest kind first. Returns what could not be undone ("" if
        all went), or raises it as a NetworkError with ``raise_errors``."""
        errors = []
        for step in self.UNDO_ORDER:
            if step not in self.made:
                continue
            try:
                getattr(self, f"_undo_{step}")()
                if step in self.made:       # (_undo_dns takes its own mark back)
                    self.made.remove(step)
                if self.made:
                    self.save()
            except Exception as err:  # noqa: BLE001 (undo as much as possible, report all)
                errors.append(f"{step}: {err}")
        if errors:
            self.save()
            message = f"container {self.att.cid}: could not undo " + "; ".join(errors)
            if raise_errors:
                raise NetworkError(message)
            return message
        return ""

    def _undo_etc(self):
        for name in ("hosts", "resolv.conf", "hostname"):
            state.remove_file(os.path.join(self.att.etc_dir, name))
        self.nets._refresh_hosts(self.att.network, gone=self.att.cid)

    def _undo_hosts(self):
        self.nets._refresh_hosts(self.att.network, gone=self.att.cid)

    def _undo_dns(self):
        def forget():
            self.made.remove("dns")
            self.save()
        self.nets._sync_dns(self.att.network, gone=self.att.cid, then=forget)

    def _undo_nft(self):
        table = self.nets.nft_table
        elements = nft.port_elements(self.att.ports, self.att.ipv4, self.att.ipv6)
        try:
            nft.apply(nft.delete_elements(table, elements))
        except NetworkError:
            if nft.table_exists(table):
                raise                       # a table without the elements is already undone

    def _undo_veth(self):
        with links.host() as ipr:
            links.delete_link(ipr, self.att.host_ifname)

    def _undo_netns(self):
        netns.remove(self.att.netns_path)

    def _undo_ports(self):
        self.nets._release_ports(self.att.cid)

    def _undo_leases(self):
        record = state.read_json(self.nets.state.network(self.att.network))
        if record is not None:
            ipam.Leases(self.nets.state, record).release(self.att.cid)

    def _undo_record(self):
        state.remove_file(self.nets.state.attachment(self.att.cid))
