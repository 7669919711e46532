"""A container's further networks: ``kago network connect`` and ``disconnect``.

The record keeps them in ``connections``: [{"network", "ip", "aliases", "attachment"}] in
the order they were connected, so a start after a release (a stop, a reboot) connects them
again (``reconnect``, after the first network's ``attachments.reattach``); kago.network
makes each one (``Networks.connect``: eth1, eth2..., an attachment keyed ``<id>+<network>``)
and ``Networks.detach`` of the container takes them all away with its first network (the
release at an end, ``rm``). A created or running container is connected at once; a stopped
one at its next start.

Crash safety (journal.py). ``connect`` saves the entry with ``pending`` (the command's pid
and start time) before anything is made, then ``Networks.connect`` journals its own steps,
and the entry loses ``pending`` last. ``disconnect`` drops the entry first, then detaches.
So a command killed at any step leaves a record that says what it may have made: ``rm -f``
detaches every attachment of the container; ``system prune`` (orphans.py) detaches a further
network's attachment that no entry names, or whose entry is pending with its command gone
(and drops that entry). Fault steps: ``connect.<recorded|attached>``,
``disconnect.<recorded|detached>``, and kago.network's ``attach.<record|leases|veth|dns|hosts>``.
"""

import os

from kago.manager import journal
from kago.manager.definition import of
from kago.manager.errors import BadValue, StateError
from kago.manager.journal import fault


def first_network(ctx, record):
    """The network the container was created on (its eth0), or None (host, none, container:)."""
    att = record.get("network") or {}
    if att.get("network"):
        return att["network"]
    net = of(record).network
    if net.mode != "bridge":
        return None
    return net.name or ctx.nets.default_network


def connect(ctx, ref, network, ip=None, aliases=()):
    """Connect container ``ref`` to ``network`` (now if it is created or running, else at its
    next start). Returns the record."""
    cid = ctx.resolve(ref)["id"]
    ctx.nets.get(network)                       # NetworkNotFound before anything
    with ctx.records.lock(cid):
        record = ctx.records.load(cid)
        d = of(record)
        if d.network.mode in ("host", "container"):
            raise StateError(f"container {record['name']}: network mode {d.network.text} "
                             "has no network namespace of its own to connect")
        if network == first_network(ctx, record) or network in names(record):
            raise StateError(f"container {record['name']} is already connected to "
                             f"network {network}")
        entry = {"network": network, "ip": ip or None, "aliases": list(aliases),
                 "attachment": None, "pending": journal.creator()}
        record.setdefault("connections", []).append(entry)
        ctx.records.save(record, existing=True)
        fault("connect.recorded")
        if ctx.nets.attachment(cid) is not None:    # created or running: it has its netns
            try:
                entry["attachment"] = _connect(ctx, record, entry)
            except BaseException:
                record["connections"].remove(entry)
                ctx.records.save(record, existing=True)
                raise
            fault("connect.attached")
        del entry["pending"]
        ctx.records.save(record, existing=True)
    return record


def _connect(ctx, record, entry):
    att = ctx.nets.connect(record["id"], entry["network"], ip=entry.get("ip"),
                           aliases=tuple(entry.get("aliases") or ()) + (record["name"],),
                           hostname=record.get("hostname"))
    return att.to_dict()


def disconnect(ctx, ref, network, force=False):
    """Take container ``ref`` off ``network`` (one it was connected to). With ``force``, a
    network it is not connected to is no error. Returns the record."""
    cid = ctx.resolve(ref)["id"]
    with ctx.records.lock(cid):
        record = ctx.records.load(cid)
        if network not in names(record):
            if network == first_network(ctx, record):
                raise BadValue("network disconnect",
                               f"{network} is container {record['name']}'s first network "
                               "(its --network): only networks added by network connect "
                               "can be disconnected")
            if not force:
                raise StateError(f"container {record['name']} is not connected to network "
                                 f"{network}")
        record["connections"] = [c for c in record.get("connections") or ()
                                 if c["network"] != network]
        ctx.records.save(record, existing=True)
        fault("disconnect.recorded")
        from kago.network.networks import extra_key
        ctx.nets.detach_one(extra_key(cid, network))
        fault("disconnect.detached")
    return record


def names(record):
    return [c["network"] for c in record.get("connections") or ()]


def reconnect(ctx, record):
    """At a start (under the record's lock): every connection not there is made again
    (a pending one too: its command recorded the user's wish before it died); the record's
    entries get the new attachments. A failure undoes what this call connected."""
    cid = record["id"]
    from kago.network.networks import extra_key
    made = []
    try:
        for entry in record.get("connections") or ():
            key = extra_key(cid, entry["network"])
            current = ctx.nets.attachment(key)
            if current is not None and current.netns_path and \
                    os.path.exists(current.netns_path):
                continue
            if current is not None:
                ctx.nets.detach_one(key)            # half there: a crash, a reboot
            entry["attachment"] = _connect(ctx, record, entry)
            entry.pop("pending", None)
            made.append(key)
    except BaseException:
        for key in made:
            ctx.nets.detach_one(key)
        raise


def stale(record, network):
    """Whether a further network's attachment of ``record`` (its container) is nobody's:
    no entry names it, or its entry is pending with its command gone."""
    for entry in record.get("connections") or ():
        if entry["network"] == network:
            who = entry.get("pending")
            if not who:
                return False
            from kago.host.procfs import alive
            return not (who.get("pid") and alive(who["pid"], who.get("start")))
    return True
