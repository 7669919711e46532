"""``Connections``: how a container is plumbed into networks, the half of ``Networks`` that
makes its netns and veth, and its further networks.

A first attach (``attach``) names a netns of its own (``_own_netns``; made, or adopted from an
OCI hook's process) or joins another container's (``_shared``), and on a bridge network takes
leases, ports, a veth eth0 with the default route and the published ports' nft elements
(``_bridge_steps``).

``connect`` gives a container with its own netns a further network (docker's ``network
connect``): an attachment keyed ``<cid>+<network>`` (``owner`` = cid) journalled the same way
(steps.py), ``record -> leases -> veth -> dns -> hosts``, with no netns step (the owner's netns
is used and stays) and an interface eth1, eth2... with its subnet's route only (the first
network keeps the default route). ``detach(cid)`` takes the further networks first.

A mixin: it uses the ``Networks`` it is part of (``state``, ``get``, ``attachment``,
``detach_one``, the names and published ports halves, and its settings).
"""

import hashlib
import os

from kago.network import ipam, links, netns, nft, state
from kago.network.attachment import Attachment, check_cid
from kago.network.errors import AttachmentExists, NetworkError
from kago.network.rootless import hostfwd
from kago.network.steps import Steps


def extra_key(cid, network):
    """The attachment key of container ``cid``'s further network ``network``."""
    return f"{cid}+{network}"


class Connections:
    """The netns, veth and further networks side of ``Networks``."""

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
            steps = Steps(self, att)
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
                steps.abandon(err)
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

    def _bridge_steps(self, steps, att, ip, ipv6, mac, ports, pid=None, slirp=None):
        record = self.get(att.network)
        leases = ipam.Leases(self.state, record)
        # ports the addresses cannot carry (an IPv6 host ip, no IPv6 subnet) fail before any
        # step: placeholders stand for the addresses IPAM has not handed out yet
        nft.port_elements(steps.nat_ports(ports), "0.0.0.0",
                          "::" if record["ipv6_subnet"] else None)

        def take():
            att.ipv4, att.ipv6, att.mac = leases.take(att.cid, ip, ipv6, mac)
        steps.mark("leases", take, atomic=True)
        if ports:
            def reserve():
                att.ports = ports
                self._reserve_ports(att.cid, ports, steps)
            steps.mark("ports", reserve, atomic=True)
        steps.mark("netns", lambda: self._make_netns(att, pid))
        steps.mark("veth", lambda: self._make_veth(att))
        if ports:   # one nft transaction: all elements or none
            steps.mark("nft", lambda: self._publish(att, record, steps.nat_ports()),
                       atomic=True)
        if ports and slirp is not None:
            steps.mark("hostfwd", lambda: hostfwd.publish(steps.forwards, ports, slirp))

    def restore_forwards(self):
        """Behind slirp4netns (``slirp_runroot``), after the holder was connected anew (a
        slirp4netns that ended takes its forwards along): every attached container's
        published ports forwarded again, their new ids journalled. Idempotent: forwards still
        there are replaced. Returns the container ids whose ports were forwarded."""
        if not self.slirp_runroot:
            return []
        conn = hostfwd.connection(self.slirp_runroot)
        done = []
        with self.state.lock():
            for cid in self.state.attachment_ids():
                data = state.read_json(self.state.attachment(cid))
                if not data or "hostfwd" not in data.get("made", ()):
                    continue
                steps = Steps.load(self, data)
                hostfwd.unpublish(steps.forwards, steps.att.ports)
                steps.forwards = {"api_socket": conn.api_socket, "ids": []}
                try:
                    hostfwd.publish(steps.forwards, steps.att.ports, conn)
                finally:
                    steps.save()
                done.append(cid)
        return done

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
                           att.mac, self.mtu)
        with links.inside(att.netns_path) as ipr:
            if default_route:
                links.configure(ipr, att)
            else:
                links.configure(ipr, att, default_route=False)
