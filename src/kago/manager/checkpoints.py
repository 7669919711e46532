"""``kago checkpoint`` and ``kago restore``: a running container to CRIU images and back,
with its writable layer, record, network address and log.

    checkpoint  running -> kago.runtime.checkpoint's dump into ROOT/checkpoints/<id>/criu
                (+ checkpoint.json) -> the supervisor records the end as ``checkpointed``
                (no restart policy applies) and releases rootfs and network as at a stop;
                ``leave_running``: it keeps running. ``export``: one tar besides.
    restore     checkpointed -> prepare (rootfs, network again, asking for the address it
                had) -> the supervisor restores it as it starts one (its FIFOs, its log,
                its exit watched) -> running, ``State.Restored``.
    import      an export on another root: the container made again from its image and
                definition, the diff applied to its writable layer, then restored.

A refused or failed checkpoint leaves the container running and untouched and no new
checkpoint; a failed restore leaves the container checkpointed (an import: nothing).
"""

import os
import shutil
import time

from kago.errors import KagoError, describe
from kago.manager import checkpoint_files as files
from kago.manager import events, supervisor
from kago.manager.definition import of
from kago.manager.errors import ManagerError, NameInUse, NoSuchContainer, StateError


def find_criu():
    """criu on PATH (as kago-oci), else one line naming what to do."""
    from kago.runtime import criu
    try:
        return criu.find()
    except KagoError as e:
        raise ManagerError(str(e)) from None


def kernel():
    return os.uname().release


def checkpoint(ctx, ref, export=None, leave_running=False, tcp_established=False,
               criu_bin=None, skip_in_flight=False):
    """Checkpoint the running container ``ref``; returns its record."""
    record = ctx.resolve(ref)
    cid, name = record["id"], record["name"]
    status = ctx.live(record)
    if status not in ("running", "paused"):
        raise StateError(f"cannot checkpoint container {name}: it is {status}, not running")
    _check_checkpointable(record)
    if export:
        files.check_export_target(os.path.abspath(export), f"the checkpoint of {name}")
    criu_bin = criu_bin or find_criu()
    target = ctx.paths.checkpoint(cid)
    new = target + ".new"
    shutil.rmtree(new, ignore_errors=True)
    os.makedirs(new, 0o711)  # searchable: a user-namespaced restore looks the images up
    if not leave_running:  # what the supervisor records at the end CRIU's dump makes
        pending = {"path": target, "at": time.time(), "leave_running": False}
        ctx.records.update(cid, lambda r: _mark_checkpointing(r, pending))
    try:
        try:
            _dump(ctx, record, os.path.join(new, files.CRIU_DIR), leave_running,
                  tcp_established, criu_bin, skip_in_flight)
        except ManagerError as e:
            raise _keep_log(ctx, cid, new, e) from None
        att = record.get("network") or {}
        files.write_manifest(new, files.manifest(
            record, kernel(), att.get("ipv4"), tcp_established, leave_running,
            _size(ctx.paths.log(cid))))
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        if not leave_running:
            ctx.records.update(cid, _unmark_checkpointing)
        raise
    _replace(new, target)
    if leave_running:
        record = ctx.records.update(cid, lambda r: _checkpointed(r, target))
    else:
        from kago.manager.lifecycle import wait_exit
        wait_exit(ctx, record, 10)  # the supervisor records it checkpointed, then releases it
        record = ctx.records.load(cid)
    events.container(ctx.paths, "checkpoint", record)
    if export:
        export_to(ctx, record, export)
    return record


def _keep_log(ctx, cid, new, error):
    """A failed dump's CRIU log, kept in the container's directory (the failed checkpoint
    goes): the error names it there."""
    from kago.runtime import criu
    log = os.path.join(new, files.CRIU_DIR, criu.DUMP_LOG)
    kept = os.path.join(ctx.paths.container(cid), "criu-" + criu.DUMP_LOG)
    try:
        shutil.move(log, kept)
    except OSError:
        return error
    return ManagerError(str(error).replace(log, kept))


def _check_checkpointable(record):
    name = record["name"]
    if of(record).tty:
        raise ManagerError(f"cannot checkpoint container {name}: it has a terminal (-t), "
                           "and CRIU cannot restore its pty here (docs/checkpoint.md)")
    if record.get("runtime"):
        raise ManagerError(f"cannot checkpoint container {name}: it runs under "
                           f"{record['runtime']}; checkpoints need kago's own runtime")


def _dump(ctx, record, image_path, leave_running, tcp_established, criu_bin, skip_in_flight):
    from kago.runtime import checkpoint as rc
    from kago.runtime.criu import CriuOptions
    from kago.runtime.store import Store
    opts = CriuOptions(image_path, leave_running=leave_running,
                       tcp_established=tcp_established, skip_in_flight=skip_in_flight)
    try:
        rc.checkpoint(Store(record["runtime_root"]), record["id"], opts, criu_bin)
    except KagoError as e:
        raise ManagerError(f"cannot checkpoint container {record['name']}: "
                           f"{describe(e)}") from None


def _mark_checkpointing(r, pending):
    """No restart policy for the end the dump makes; the supervisor's record of it says
    ``checkpointed`` with ``pending`` as its checkpoint (supervisor/state.ended)."""
    r["state"].update(checkpointing=True, stopped_by_user=True, checkpoint_pending=pending)


def _unmark_checkpointing(r):
    r["state"].pop("checkpointing", None)
    r["state"].pop("checkpoint_pending", None)
    r["state"]["stopped_by_user"] = False


def _checkpointed(r, path):
    r["state"]["checkpoint"] = {"path": path, "at": time.time(), "leave_running": True}


def _replace(new, target):
    """``new`` becomes ``target``; the old one is removed after (not while the caller
    waits for the rename)."""
    old = target + ".old"
    shutil.rmtree(old, ignore_errors=True)
    try:
        os.rename(target, old)
    except FileNotFoundError:
        old = None
    os.rename(new, target)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def export_to(ctx, record, out):
    """The container's checkpoint as one tar ``out``."""
    path = ctx.paths.checkpoint(record["id"])
    diff = os.path.join(path, files.DIFF)
    try:
        ctx.store.export_changes(record["id"], diff)
        files.export(path, os.path.join(path, files.CRIU_DIR), diff, os.path.abspath(out))
    except (KagoError, OSError) as e:
        raise ManagerError(f"export the checkpoint of {record['name']} to {out}: "
                           f"{describe(e)}") from None
    finally:
        try:
            os.unlink(diff)
        except FileNotFoundError:
            pass


# --- restore -------------------------------------------------------------------------------

def restore(ctx, ref, criu_bin=None):
    """Restore the checkpointed container ``ref``; returns its record (running)."""
    record = ctx.resolve(ref)
    cid, name = record["id"], record["name"]
    status = ctx.live(record)
    ck = record["state"].get("checkpoint")
    if status in ("running", "paused", "restarting"):
        raise StateError(f"cannot restore container {name}: it is {status}")
    if not ck or status not in ("checkpointed", "exited", "created"):
        raise StateError(f"cannot restore container {name}: it is {status}, with no "
                         "checkpoint to restore (kago checkpoint it while it runs)")
    doc = files.read_manifest(ck["path"])
    files.check_kernel(doc, kernel(), f"checkpoint of {name}")
    how = restore_how(ck, doc, criu_bin or find_criu())
    from kago.manager.lifecycle import started
    from kago.manager.release import prepare
    ctx.records.update(cid, lambda r: r["state"].update(restoring={"ip": doc.get("ip")}))
    try:
        prepare(ctx, cid)
        conn = supervisor.connect(ctx.paths)
        try:
            reply = conn.request("start", id=cid, restore=how)
        finally:
            conn.close()
        started(reply)
    finally:
        ctx.records.update(cid, lambda r: r["state"].pop("restoring", None))
    record = ctx.records.update(cid, lambda r: restored(r, ck["path"]))
    events.container(ctx.paths, "restore", record)
    return record


def restore_how(ck, doc, criu_bin):
    """The supervisor's ``restore`` field of a start request: where the images are, CRIU,
    and how they were dumped (``ck``: the record's checkpoint, ``doc``: its manifest)."""
    return {"image_path": os.path.join(ck["path"], files.CRIU_DIR), "criu": criu_bin,
            "tcp_established": doc.get("tcp_established", False),
            "work_path": ck.get("work_path")}


def restored(r, path):
    """The record of a container its supervisor restored from the checkpoint at ``path``."""
    s = r["state"]
    s["restored"] = {"from": path, "at": time.time()}
    if s.get("status") == "checkpointed":
        s["status"] = "running"


def import_from(ctx, file, name=None, criu_bin=None):
    """Make a container from the export ``file`` and restore it; returns its record. A
    failure leaves nothing: the container made for it is removed."""
    from kago.manager.definition import from_json
    where = f"checkpoint {file}"
    doc = files.import_manifest(file)
    files.check_kernel(doc, kernel(), where)
    criu_bin = criu_bin or find_criu()
    image = doc.get("image_id") or doc.get("image")
    try:
        ctx.store.image(image)
    except KagoError:
        raise ManagerError(f"{where}: its image {doc.get('image') or image} "
                           f"({(doc.get('image_id') or '?')[:12]}) is not on this root: kago "
                           "load or pull it first") from None
    new_name = name or doc["name"]
    try:
        owner = ctx.records.resolve(new_name)
    except NoSuchContainer:
        owner = None
    if owner is not None and owner["name"] == new_name:
        raise NameInUse(new_name, owner["id"])
    definition = from_json(doc["definition"]).but(name=new_name)
    from kago.manager import create
    record = create.create(ctx, definition)
    cid = record["id"]
    try:
        _fill(ctx, record, file, doc)
        return restore(ctx, cid, criu_bin)
    except BaseException:
        from kago.manager import removal
        try:
            removal.remove(ctx, cid, force=True)
        except (KagoError, OSError):
            pass
        raise


def _fill(ctx, record, file, doc):
    """The new container's writable layer and checkpoint, from the export."""
    import gzip

    from kago.storage.apply import apply_layer
    cid = record["id"]
    path = ctx.paths.checkpoint(cid)
    shutil.rmtree(path, ignore_errors=True)
    try:
        files.unpack(file, path)
        diff = os.path.join(path, files.DIFF)
        with gzip.open(diff, "rb") as stream:
            apply_layer(stream, record["rootfs"]["path"], "merge", f"{file}'s {files.DIFF}")
        os.unlink(diff)
        os.chmod(os.path.join(path, files.CRIU_DIR), 0o700)
        files.write_manifest(path, doc)
    except (KagoError, OSError) as e:
        raise ManagerError(f"checkpoint {file}: {describe(e)}") from None
    # a fresh attachment: the restore asks again, for the checkpoint's address if free
    ctx.nets.detach(cid)

    def checkpointed(r):
        r["state"].update(status="checkpointed", stopped_by_user=True,
                          checkpoint={"path": path, "at": doc.get("created_at"),
                                      "imported_from": os.path.abspath(file)})
    ctx.records.update(cid, checkpointed)
