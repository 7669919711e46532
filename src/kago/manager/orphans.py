"""``kago system prune``: stopped containers, abandoned ones, and what no record owns.

Containers: every one that is not running is removed (``removal.remove``), except an
incomplete one (journal.py) whose creator still lives: that one is being made right now. An
incomplete one whose creator died is removed like any other: its teardown undoes what its
intents name.

Orphans: host objects and state no container record names any more, left by a process
killed between its steps or by an older kago: a network attachment (veth, netns, lease,
published port, nft elements: ``Networks.detach``), a network's DNS resolver process with
no container on its network or no record naming it, a store layer, an ID range, a runtime
container, a name file, its output FIFOs, a record directory never completed (``containers/.new-*`` of a dead
creator), a further network's attachment (``network connect``) that its container's record
does not name or names as pending for a dead command (connections.py: the pending entry goes
too). A record is written before anything it owns is made and removed after all of it
(journal.py), so an object whose container has no record (checked just before removing it) is
nobody's.

Images: dangling ones (no name, no container), or with ``all_images`` every one no container
uses, as docker's ``system prune -a``.
"""

import os
import shutil

from kago.errors import KagoError
from kago.manager import events, journal


def prune(mgr, all_images, remove):
    """Returns {"containers": [records], "orphans": [str], "images": [str], "errors": [str]}.
    ``mgr``: a Context (context.py); ``remove(cid)``: removal.remove on it."""
    out = {"containers": [], "orphans": [], "images": [], "errors": []}
    for record, status in mgr.list(all=True):
        if status not in ("exited", "created"):
            continue
        if journal.incomplete(record) and not journal.abandoned(record):
            continue  # its creator is at work
        try:
            remove(record["id"])
            out["containers"].append(record)
        except (KagoError, OSError) as e:
            out["errors"].append(f"{record['name']}: {_describe(e)}")
    sweep(mgr, out)
    if os.path.isdir(mgr.paths.storage()):
        _images(mgr, all_images, out)
    return out


def sweep(mgr, out):
    """Remove what no record names (see the module's docstring)."""
    steps = (_new_dirs, _dirs, _connections, _attachments, _resolvers, _layers, _runtime,
             _id_ranges, _names, _fifos)
    for step in steps:
        try:
            step(mgr, out["orphans"])
        except (KagoError, OSError) as e:
            out["errors"].append(_describe(e))


def _new_dirs(mgr, found):
    top = mgr.paths.containers()
    for entry in _listdir(top):
        if not entry.startswith(".new-"):
            continue
        pid = entry.rsplit("-", 1)[-1]
        if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
            continue
        shutil.rmtree(os.path.join(top, entry), ignore_errors=True)
        found.append(f"record directory {entry}")


def _dirs(mgr, found):
    """A container directory without its record: a removal that died half-way."""
    from kago.manager.rootfs import unbind
    for cid in mgr.records.ids():
        if _gone(mgr, cid):
            unbind(os.path.join(mgr.paths.container(cid), "rootfs"))
            shutil.rmtree(mgr.paths.container(cid), ignore_errors=True)
            found.append(f"container directory {cid[:12]}")


def _attachments(mgr, found):
    if not os.path.isdir(os.path.join(mgr.paths.network(), "attachments")):
        return
    for cid in mgr.nets.state.attachment_ids():
        att = mgr.nets.attachment(cid)
        if att is not None and att.owner:       # a further network (network connect)
            if _stale_connection(mgr, att):
                mgr.nets.detach_one(cid)
                found.append(f"network attachment {att.owner[:12]} on {att.network}")
        elif _gone(mgr, cid):
            mgr.nets.detach(cid)
            found.append(f"network attachment {cid[:12]}")


def _connections(mgr, found):
    """A network connect killed before it made anything: its record's entry, pending with
    its command gone (connections.py), goes; what it made, ``_attachments`` detaches."""
    from kago.manager import connections
    from kago.manager.errors import NoSuchContainer
    for record in mgr.records.all():
        for entry in record.get("connections") or ():
            if entry.get("pending") and connections.stale(record, entry["network"]):
                try:
                    with mgr.records.lock(record["id"]):
                        fresh = mgr.records.load(record["id"])
                        if connections.stale(fresh, entry["network"]):
                            fresh["connections"] = [c for c in fresh["connections"]
                                                    if c["network"] != entry["network"]]
                            mgr.records.save(fresh, existing=True)
                            found.append(f"network connection of {record['name']} to "
                                         f"{entry['network']}")
                except NoSuchContainer:
                    pass


def _stale_connection(mgr, att):
    """A connect or disconnect killed half-way (connections.py): the record does not name
    the attachment's network, or names it pending with its command gone (the entry goes)."""
    from kago.manager import connections
    from kago.manager.errors import NoSuchContainer
    try:
        with mgr.records.lock(att.owner):
            record = mgr.records.load(att.owner)
            if not connections.stale(record, att.network):
                return False
            record["connections"] = [c for c in record.get("connections") or ()
                                     if c["network"] != att.network]
            mgr.records.save(record, existing=True)
    except NoSuchContainer:
        pass
    return True


def _resolvers(mgr, found):
    """A network's resolver with no container left on it, or one no record names."""
    if os.path.isdir(os.path.join(mgr.paths.network(), "networks")):
        found += mgr.nets.sweep_resolvers()


def _layers(mgr, found):
    if not os.path.isdir(mgr.paths.storage()):
        return
    for info in mgr.store.containers():
        if _gone(mgr, info.cid):
            mgr.store.remove_rootfs(info.cid)
            found.append(f"layer of {info.cid[:12]}")


def _runtime(mgr, found):
    if not os.path.isdir(mgr.paths.oci()):
        return
    states = dict(mgr.states())
    states.update(mgr.runtime().states())
    for cid in states:
        if _gone(mgr, cid):
            mgr.runtime().delete(cid, force=True)
            found.append(f"runtime container {cid[:12]}")


def _id_ranges(mgr, found):
    from kago.manager import idranges
    for cid in list(idranges.read(mgr.paths)):
        if _gone(mgr, cid):
            idranges.release(mgr.paths, cid)
            found.append(f"ID range of {cid[:12]}")


def _names(mgr, found):
    names = mgr.paths.names()
    for name in _listdir(names):
        if name.startswith(".") or name.endswith(".tmp"):
            continue
        owner = mgr.records._name_owner(name)
        if owner is not None and _gone(mgr, owner):
            mgr.records.release_name(name, owner)
            found.append(f"name {name}")


def _fifos(mgr, found):
    top = os.path.dirname(mgr.paths.fifos("x"))
    for cid in _listdir(top):
        if _gone(mgr, cid):
            shutil.rmtree(os.path.join(top, cid), ignore_errors=True)
            found.append(f"output pipes of {cid[:12]}")


def _images(mgr, all_images, out):
    from kago.storage.errors import ImageInUse, StoreError
    used = {r.get("image_id") for r in mgr.records.all()}
    used |= {info.image_id for info in mgr.store.containers()}
    for image in mgr.store.images():
        if image.id in used or (image.names and not all_images):
            continue
        try:
            out["images"] += mgr.store.remove_image(image.id)
            events.image(mgr.paths, "delete", "sha256:" + image.id)
        except ImageInUse:
            continue
        except StoreError as e:
            out["errors"].append(_describe(e))
    out["images"] += mgr.store.gc()


def _gone(mgr, cid):
    """No record (looked at now, not from a list made before: a create may be under way)."""
    return not os.path.exists(mgr.paths.record(cid))


def _listdir(path):
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _describe(e):
    from kago.errors import describe
    return describe(e)
