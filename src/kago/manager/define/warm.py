"""Warm starts (``Container(..., warm=True)``): the first ``kago up`` boots the container, waits
until it is ready, checkpoints it (CRIU, leaving it running) and keeps that checkpoint under
ROOT/warm/<key>; a later ``up`` that makes the container again (after ``kago down``) restores
it from there instead of booting it, when the key still matches.

The key (``key``, pure) hashes what the checkpoint depends on: the container's Definition
(as stored in its record), its image's ID, the kernel release, and the user-namespace maps
the container was given (a restore brings back the dumped maps, so a container given other
IDs must boot). A key with no checkpoint, or a restore that fails, boots the container cold
and checkpoints it again. ``kago down`` leaves the warm checkpoints; remove ROOT/warm (or
one key's directory) to drop them.

Each entry: ``checkpoint.json`` (checkpoint_files' manifest, with "warm_key"), ``criu/``
(CRIU's images, read by every restore: CRIU's log goes to the container's own work
directory) and ``rootfs-diff.tar.gz`` (the writable layer at checkpoint time, applied to the
new container's layer before the restore: CRIU checks the files it reopens).
"""

import hashlib
import json
import os
import shutil

from kago.errors import KagoError, describe
from kago.manager import checkpoint_files as files

KEY_FORMAT = 1


def key(definition_json, image_id, kernel, uid_map=None, gid_map=None):
    """The warm key of a container (pure): a hex digest."""
    doc = {"format": KEY_FORMAT, "definition": definition_json, "image_id": image_id or "",
           "kernel": kernel, "uid_map": uid_map, "gid_map": gid_map}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def key_of(record):
    from kago.manager.checkpoints import kernel
    return key(record.get("definition"), record.get("image_id"), kernel(),
               record.get("uid_map"), record.get("gid_map"))


def entry(mgr, record):
    """The warm checkpoint directory for ``record``'s key, or None if there is none."""
    path = os.path.join(mgr.paths.warm(), key_of(record))
    if os.path.isfile(os.path.join(path, files.MANIFEST)) and \
            os.path.isdir(os.path.join(path, files.CRIU_DIR)):
        return path
    return None


def prepare(mgr, record, path, criu_bin):
    """Make the just-created container ``record`` ready to be restored from the warm
    checkpoint at ``path``: its layer gets the checkpoint's diff, its record says
    checkpointed. Returns the supervisor's ``restore`` field for its start request."""
    import gzip

    from kago.manager import checkpoints
    from kago.storage.apply import apply_layer
    cid = record["id"]
    doc = files.read_manifest(path)
    files.check_kernel(doc, checkpoints.kernel(), f"warm checkpoint {path}")
    with gzip.open(os.path.join(path, files.DIFF), "rb") as stream:
        apply_layer(stream, record["rootfs"]["path"], "merge", f"{path}/{files.DIFF}")
    work = os.path.join(mgr.paths.checkpoint(cid), "work")
    os.makedirs(work, 0o700, exist_ok=True)
    ck = {"path": path, "at": doc.get("created_at"), "warm": True, "work_path": work}
    mgr.records.update(cid, lambda r: r["state"].update(status="checkpointed", checkpoint=ck))
    return checkpoints.restore_how(ck, doc, criu_bin)


def restored(r):
    """The record of a container restored from its warm checkpoint (and provisioned in it)."""
    from kago.manager import checkpoints
    checkpoints.restored(r, r["state"]["checkpoint"]["path"])
    r["state"]["provisioned"] = True


def store(mgr, record):
    """Checkpoint the ready container ``record`` (leaving it running) as the warm entry of
    its key; a failure is a warning (one line), the container runs on."""
    from kago.manager import checkpoints
    target = os.path.join(mgr.paths.warm(), key_of(record))
    os.makedirs(mgr.paths.warm(), 0o711, exist_ok=True)
    try:
        # a readiness probe's connection may still wait in the listen queue: dropped
        checkpoints.checkpoint(mgr.ctx, record["id"], leave_running=True, skip_in_flight=True)
        own = mgr.paths.checkpoint(record["id"])
        mgr.store.export_changes(record["id"], os.path.join(own, files.DIFF))
        doc = files.read_manifest(own)
        doc["warm_key"] = os.path.basename(target)
        files.write_manifest(own, doc)
        _chmod_readable(own)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(own, target)
    except (KagoError, OSError) as e:
        shutil.rmtree(mgr.paths.checkpoint(record["id"]), ignore_errors=True)
        return f"container {record['name']}: no warm checkpoint: {describe(e)}"
    finally:
        mgr.records.update(record["id"], lambda r: r["state"].pop("checkpoint", None))
    return None


def _chmod_readable(path):
    """A user-namespaced container's root (a host ID that is not root) looks the images up
    on restore: the directories searchable (not listable), as kago-oci makes them."""
    for top, _dirs, _names in os.walk(path):
        os.chmod(top, 0o711)
