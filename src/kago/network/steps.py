"""``Steps``: the attach journal of ``Networks`` and the undo of each step.

An attach is a list of steps, each recorded in attachments/<cid>.json *before* it runs::

    leases -> ports -> netns -> veth -> addresses -> nft -> hostfwd -> dns -> etc files

so detach (and the rollback of a failed attach, which is the same code) removes exactly what
was made, even when the attaching process died half-way. A step that fails because its object
already existed (a veth name clash, a netns name taken) is unmarked: that object is somebody
else's and stays. ``hostfwd`` is a rootless holder's (rootless/hostfwd.py): slirp4netns's
forwards from the host, their ids journalled as ``{"api_socket", "ids"}``; with it, the nft
step publishes the ports' guest mappings. A further network (``connect``, connections.py) journals
``record -> leases -> veth -> dns -> hosts`` the same way.
"""

import os

from kago.faults import fault
from kago.network import ipam, links, netns, nft, state
from kago.network.attachment import Attachment
from kago.network.errors import AttachmentExists, NetworkError, ObjectExists
from kago.network.rootless import hostfwd


class Steps:
    """The attach journal: marks a step in attachments/<cid>.json before running it, and
    undoes marked steps in reverse. The journal file itself is the last thing removed."""

    UNDO_ORDER = ("etc", "hosts", "dns", "hostfwd", "nft", "veth", "netns", "ports", "leases",
                  "record")

    def __init__(self, nets, att, made=(), forwards=None):
        self.nets = nets
        self.att = att
        self.made = list(made)
        self.forwards = forwards   # a rootless holder's {"api_socket", "ids"}, else None

    @classmethod
    def load(cls, nets, data):
        return cls(nets, Attachment.from_dict(data["attachment"]), data.get("made", ()),
                   data.get("hostfwd"))

    def _data(self):
        data = {"attachment": self.att.to_dict(), "made": self.made}
        if self.forwards is not None:
            data["hostfwd"] = self.forwards
        return data

    def save(self):
        state.write_json(self.nets.state.attachment(self.att.cid), self._data())

    def nat_ports(self, ports=None):
        """The mappings the nft DNAT publishes: ``ports`` (the attachment's by default), or
        their guest mappings behind a rootless holder's slirp4netns."""
        ports = self.att.ports if ports is None else ports
        return hostfwd.guest_ports(ports) if self.forwards is not None else ports

    def claim(self):
        """Creates the record exclusively and complete (two attaches of one id race here, and
        only one wins; readers never see an empty or half-written record), journalling it as
        the first step."""
        self.made.append("record")
        try:
            state.create_json(self.nets.state.attachment(self.att.cid), self._data())
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

    def abandon(self, err):
        """The attach broke with ``err``: undo what it made. Returns when all went (the caller
        re-raises ``err``); raises a NetworkError naming ``err`` and what could not be undone
        otherwise (a KeyboardInterrupt or SystemExit goes on as it is)."""
        failed = self.undo()
        if failed and isinstance(err, Exception):
            raise NetworkError(f"{err}; cleanup also failed: {failed}") from err

    def undo(self, raise_errors=False):
        """Undoes every marked step, newest kind first. Returns what could not be undone ("" if
        all went), or raises it as a NetworkError with ``raise_errors``.

        Each undone step leaves the journal (saved) before the next, so that a retry after a
        death does not undo it again once its names may be somebody else's (an address, a
        port); not before the record's own removal, which comes next: a death between the
        two leaves the journal as one between an undo and its save would, and a retry redoes
        that last undo, which is idempotent. (One rewrite fewer per detach: the old file's
        block freed, on ext4 with ``discard`` a synchronous discard.)"""
        errors = []
        for step in self.UNDO_ORDER:
            if step not in self.made or (step == "record" and errors):
                continue  # kept while a step could not be undone: a retry reads it
            try:
                getattr(self, f"_undo_{step}")()
                if step in self.made:       # (_undo_dns takes its own mark back)
                    self.made.remove(step)
                if self.made and self.made != ["record"]:
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
        elements = nft.port_elements(self.nat_ports(), self.att.ipv4, self.att.ipv6)
        try:
            nft.apply(nft.delete_elements(table, elements))
        except NetworkError:
            if nft.table_exists(table):
                raise                       # a table without the elements is already undone

    def _undo_hostfwd(self):
        hostfwd.unpublish(self.forwards, self.att.ports)

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
