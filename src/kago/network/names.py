"""``Names``: what containers know each other by, the half of ``Networks`` that keeps it.

The ``dns`` step of an attach (steps.py) puts the container's names in its network's resolver
table and starts the resolver (kago.network.dns) on the first attach; undoing it takes them out
again and stops the resolver with the last one, under leases/<net>.lock. A container on
further networks (connect) is in each one's table, and each table gives it a view of the
others. The ``etc`` step writes the container's hosts/resolv.conf/hostname, and every change
of a network's containers rewrites its peers' /etc/hosts in place (``_refresh_hosts``).

A mixin: it uses the ``Networks`` it is part of (``state``, ``dns``, ``dns_upstream``,
``attachment``, ``attachments``).
"""

import contextlib
import os

from kago.network import state
from kago.network.dns import control as dns_control, table as dns_table
from kago.network.errors import NetworkError
from kago.network.files import hosts_text, write_etc_files, write_in_place


def upstream_servers(servers):
    """The ``dns_upstream`` setting checked: None, or [(address, port)]."""
    if servers is None:
        return None
    if isinstance(servers, str) or not isinstance(servers, (list, tuple)):
        raise NetworkError(f"dns_upstream {servers!r}: use a list of \"ADDRESS[:PORT]\"")
    try:
        return [dns_table.parse_server(s) for s in servers]
    except ValueError as err:
        raise NetworkError(str(err)) from None


class Names:
    """The resolver and /etc files side of ``Networks``."""

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
        if att.network or self.extras(att.cid):
            peers, also = self._hosts_view(att, self._hosts_index())
        else:  # the host's network and no further one: no peer to name, none to read (every
            #    attachment read per create made `kago up` of N containers quadratic)
            peers, also = [], []
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
