"""What an ended container gives back on the host, and a start takes again.

``release`` (docker's behaviour at a stop): the rootfs is unmounted (its writable layer
stays) and the network detached; whoever records an end calls it (the supervisor's releaser,
``stop``, ``run``, a settle). ``prepare``: the start's inverse, under the record's lock,
marking the record ``fresh`` so that a release of the previous run still on its way leaves
the new one alone. The supervisor's start worker and releaser call these directly
(``prepare_locked``, ``release``): this module never imports engine.py, nor the supervisor's
server.
"""

import json
import os

from kago.errors import KagoError
from kago.host import procfs
from kago.manager import attachments, connections, events, rootfs
from kago.manager.context import describe
from kago.manager.definition import of
from kago.manager.errors import ManagerError, NoSuchContainer


def prepare(ctx, ref):
    """Set up what a start needs and an end released (or a reboot took): the rootfs mount
    and the network attachment. The record is marked ``fresh`` under its lock, so that a
    release of the previous run still on its way leaves them alone. Returns the record."""
    cid = ref["id"] if isinstance(ref, dict) else ctx.resolve(ref)["id"]
    with ctx.records.lock(cid):
        record = ctx.records.load(cid)
        prepare_locked(ctx, record)
        clear_stop(record)
        ctx.records.save(record)
    return record


def prepare_locked(ctx, record):
    """``prepare`` for a caller that holds the record's lock and saves ``record`` after
    (the supervisor's start worker)."""
    made = rootfs.mount(ctx, record)
    try:
        att = attachments.reattach(ctx, record)
        if att is not None:
            record["network"] = att
            events.networks(ctx.paths, record, "connect")
        if record.get("connections"):
            connections.reconnect(ctx, record)   # its further networks (network connect)
    except BaseException:
        if made:
            rootfs.unmount(ctx, record)
        raise
    record["state"].update(fresh=True, released=False, network_kept=False,
                           removing=False)


def release(ctx, ref, by=None):
    """Give back what an ended container holds on the host, as docker does at a stop: its
    rootfs is unmounted (the writable layer stays) and its network detached (veth, netns,
    IP lease, published ports; peers' /etc/hosts follow). ``prepare`` sets them up again.

    Nothing is done while it runs or a start is on its way (``fresh``), while it is being
    removed, for a --rm container (its removal comes), for a host-network one's network
    (it holds nothing), for a network another running container shares (released when
    that one ends), and, while the definition's agent lives, for a container whose
    definition has exit or failure hooks: the agent releases it after they ran
    (``by="agent"``), so they still see its rootfs. True if something was released;
    ManagerError names what could not be (the rest is released)."""
    try:
        cid = ref["id"] if isinstance(ref, dict) else ctx.resolve(ref)["id"]
        with ctx.records.lock(cid):
            record = ctx.records.load(cid)
            state = record.get("state") or {}
            if not releasable(ctx, record, by):
                # released by someone else (the supervisor reaping it): the owner of a
                # network it shared may still be being released by them; taking the
                # owner's lock below waits for that, so a stop returns with both done
                if state.get("released") and not state.get("network_kept"):
                    _release_owner(ctx, record, by)
                return False
            errors, kept = _release(ctx, record)
            record["state"].update(released=True, network_kept=kept)
            ctx.records.save(record)
    except NoSuchContainer:
        return False  # removed meanwhile: rm released everything
    if not kept:
        _release_owner(ctx, record, by)  # the owner may have waited for us
    if errors:
        raise ManagerError(f"release {record['name']}: " + "; ".join(describe(e)
                                                                      for e in errors))
    return True


def _release_owner(ctx, record, by):
    """Release the container whose network ``record``'s shared (--network container:ID)."""
    shares = (record.get("network") or {}).get("shares")
    if shares:
        try:
            release(ctx, shares, by)
        except NoSuchContainer:
            pass


def releasable(ctx, record, by):
    state = record.get("state") or {}
    if state.get("fresh", state.get("status") == "created") or state.get("removing") \
            or foreground(state):
        return False
    if state.get("released") and not state.get("network_kept"):
        return False
    if of(record).auto_remove:
        return False
    group = record.get("group") or {}
    if group.get("release") == "agent" and by != "agent" and _agent_alive(ctx.paths,
                                                                          group):
        return False
    return ctx.live(record) not in ("running", "paused")


def _release(ctx, record):
    """(errors, whether the network was kept for a running container sharing it)."""
    cid = record["id"]
    errors = []
    try:
        rootfs.unmount(ctx, record)
    except (KagoError, OSError) as e:
        errors.append(e)
    kept = False
    if (record.get("network") or {}).get("mode") not in (None, "host"):
        kept = attachments.shared_by_running(ctx, cid)
        if not kept:
            try:
                ctx.nets.detach(cid)
                events.networks(ctx.paths, record, "disconnect")
            except (KagoError, OSError) as e:
                errors.append(e)
    return errors, kept


def release_quietly(ctx, ref, by=None):
    """``release`` for a command whose own work is done (stop, run): a failure is a
    warning on stderr, not the command's failure."""
    try:
        return release(ctx, ref, by)
    except (KagoError, OSError) as e:
        import sys
        sys.stderr.write(f"kago: warning: {describe(e)}\n")
        return False


def foreground(state):
    """A `kago run -i` whose command line still lives (it records the end itself)."""
    if not state.get("foreground"):
        return False
    from kago.manager.adoption import lives
    return "client" not in state or lives(state["client"])


def _agent_alive(paths, group):
    """Whether the agent of a container's definition (ROOT/groups/<key>.json) is running."""
    try:
        with open(os.path.join(paths.groups(), group.get("key", "") + ".json")) as f:
            pid = json.load(f).get("agent")
    except (OSError, ValueError):
        return False
    if not pid:
        return False
    return b"kago.manager.define.agent" in (procfs.argv(pid) or ())


# --- record edits (run under the record's lock) ----------------------------------------------

def clear_stop(r):
    r["state"]["stopped_by_user"] = False
    r["state"]["error"] = ""


def mark_stopped(r):
    r["state"]["stopped_by_user"] = True


def mark_removing(r):
    """rm -f, kago down: stopped by the user and about to be removed (teardown frees all)."""
    r["state"].update(stopped_by_user=True, removing=True)
