"""A container's removal (``rm``, ``rm -f``) and ``system prune``.

``remove``: a running container only with ``force`` (marked removing, so its end releases
nothing, then stopped at once); then ``teardown``: everything create made, in reverse --
runtime state, rootfs mount and layer, network, ID range, output FIFOs -- and the record
last, so that a failure can be retried with another rm. An incomplete record (journal.py)
names in ``intents`` what its creator may have made: each undo is idempotent, so all of
them run. ``prune`` is orphans.py's.
"""

import os
import shutil

from kago.errors import KagoError
from kago.manager import events, idranges, journal, lifecycle
from kago.manager.context import describe
from kago.manager.errors import ManagerError, StateError
from kago.manager.journal import fault
from kago.manager.release import mark_removing
from kago.manager.rootfs import unbind


def remove(ctx, ref, force=False, volumes=False):
    record = ctx.resolve(ref)
    status = ctx.live(record)
    if status in ("running", "paused", "restarting"):
        if not force:
            raise StateError(f"cannot remove container {record['name']}: it is {status}: "
                             f"stop it first or use rm -f")
        ctx.records.update(record["id"], mark_removing)  # its end releases nothing
        lifecycle.stop(ctx, record["id"], timeout=0)
    teardown(ctx, record)
    return record


def teardown(ctx, record):
    """Everything create made, in reverse; the record goes last, so a failure can be
    retried with another rm. An incomplete record (journal.py) names in ``intents``
    what its creator may have made: each undo is idempotent, so all of them run."""
    dismantle(ctx, record)
    forget(ctx, record)


def dismantle(ctx, record, ids=True):
    """``teardown`` but the record's removal (``forget``); without ``ids``, the caller gives
    the ID range back itself (``kago down``: all of them in one write) before ``forget``."""
    cid = record["id"]
    errors = []
    rootfs = record.get("rootfs") or {}
    steps = [("runtime", lambda: ctx.runtime(record).delete(cid, force=True))]
    if rootfs.get("kind") == "image" or rootfs.get("shift") == "idmapped" or \
            journal.intended(record, "mount"):
        path = rootfs.get("path") or os.path.join(ctx.paths.container(cid), "rootfs")
        steps.append(("mount", lambda: unbind(path)))
    if rootfs.get("kind") == "image" or journal.intended(record, "layer"):
        steps.append(("rootfs", lambda: ctx.store.remove_rootfs(cid)))
    if record.get("network") or record.get("connections") or \
            journal.intended(record, "network"):
        steps.append(("network", lambda: ctx.nets.detach(cid)))
    if ids and (record.get("uid_map") or journal.intended(record, "ids")):
        steps.append(("ids", lambda: idranges.release(ctx.paths, cid)))
    steps.append(("fifos", lambda: shutil.rmtree(ctx.paths.fifos(cid), ignore_errors=True)))
    steps.append(("checkpoint", lambda: shutil.rmtree(ctx.paths.checkpoint(cid),
                                                      ignore_errors=True)))
    for name, step in steps:
        try:
            step()
        except (KagoError, OSError) as e:
            errors.append(e)
        fault(f"rm.{name}")
    if errors:
        raise ManagerError(f"remove {record['name']}: " + "; ".join(describe(e)
                                                                     for e in errors))


def forget(ctx, record):
    """The record (last: what ``dismantle`` freed is named by it until here) and the
    events of its removal."""
    ctx.records.remove(record["id"])
    fault("rm.record")
    if not (record.get("state") or {}).get("released"):  # a release logged its disconnect
        events.networks(ctx.paths, record, "disconnect")
    events.container(ctx.paths, "destroy", record)


def prune(ctx, all_images=False):
    """system prune (orphans.py): stopped and abandoned containers, what no record owns,
    unused images; {"containers", "orphans", "images", "errors"}."""
    from kago.manager import orphans
    return orphans.prune(ctx, all_images, lambda ref: remove(ctx, ref))
