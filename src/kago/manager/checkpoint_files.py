"""What a kago checkpoint is on disk: its manifest (``checkpoint.json``, pure: made and
checked here) and its one-file export (a tar: the manifest, CRIU's images under ``criu/``,
the writable layer's changes as a layer tar ``rootfs-diff.tar.gz``).

    checkpoint.json  {"kind": "kago-checkpoint", "format": 1, "id", "name", "image",
                      "image_id", "definition", "kernel", "created_at", "ip",
                      "tcp_established", "leave_running", "log_size"}

A checkpoint restores only on the kernel release it was made on (CRIU's images hold the
kernel's view of sockets, vDSO and mappings): ``check_kernel`` refuses another one in one line.
"""

import os
import tarfile
import time

from kago.manager.errors import ManagerError

KIND = "kago-checkpoint"
FORMAT = 1
MANIFEST = "checkpoint.json"
CRIU_DIR = "criu"
DIFF = "rootfs-diff.tar.gz"


def manifest(record, kernel, ip, tcp_established, leave_running, log_size, now=None):
    """The manifest of a checkpoint of ``record`` (pure)."""
    return {"kind": KIND, "format": FORMAT, "id": record["id"], "name": record["name"],
            "image": record.get("image") or "", "image_id": record.get("image_id") or "",
            "definition": record.get("definition"), "kernel": kernel,
            "created_at": time.time() if now is None else now, "ip": ip,
            "tcp_established": bool(tcp_established), "leave_running": bool(leave_running),
            "log_size": log_size}


def check(doc, where):
    """``doc`` if it is a kago checkpoint manifest this kago reads; else one line."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ManagerError(f"{where}: not a kago checkpoint (no {MANIFEST} of kind {KIND})")
    if doc.get("format") != FORMAT:
        raise ManagerError(f"{where}: a kago checkpoint in format {doc.get('format')!r}: "
                           f"this kago reads format {FORMAT}")
    for key in ("id", "name", "definition", "kernel"):
        if not doc.get(key):
            raise ManagerError(f"{where}: the kago checkpoint's manifest has no {key!r}")
    return doc


def check_kernel(doc, release, where):
    """Refuse a checkpoint made on another kernel release."""
    if doc["kernel"] != release:
        raise ManagerError(f"{where}: checkpointed on kernel {doc['kernel']}, this is "
                           f"{release}: CRIU restores only on the kernel it dumped on")


def read_manifest(path):
    """The manifest in checkpoint dir ``path``, checked."""
    from kago import jsonio
    try:
        with open(os.path.join(path, MANIFEST), "rb") as f:
            doc = jsonio.loads(f.read(), what=path)
    except FileNotFoundError:
        raise ManagerError(f"{path}: not a kago checkpoint (no {MANIFEST})") from None
    return check(doc, path)


def write_manifest(path, doc):
    from kago import jsonio
    from kago.manager import perms
    with perms.private_file(os.path.join(path, MANIFEST) + ".tmp") as f:
        f.write(jsonio.dumps(doc))
    os.rename(os.path.join(path, MANIFEST) + ".tmp", os.path.join(path, MANIFEST))


# --- the export: one tar -----------------------------------------------------------------------

def check_export_target(out, what):
    """Before anything is dumped: one line if the export file ``out`` cannot be written (a
    directory, its directory missing or not writable), so a refused export leaves the
    container as it was."""
    from kago.errors import describe
    if os.path.isdir(out):
        raise ManagerError(f"cannot export {what} to {out}: it is a directory")
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb"):
            pass
        os.unlink(tmp)
    except OSError as e:
        raise ManagerError(f"cannot export {what} to {out}: {describe(e)}") from None


def export(path, criu_dir, diff_tar, out):
    """Write the tar ``out`` (via ``out.tmp``, renamed when complete)."""
    tmp = out + ".tmp"
    try:
        with tarfile.open(tmp, "w") as tar:
            tar.add(os.path.join(path, MANIFEST), MANIFEST)
            tar.add(criu_dir, CRIU_DIR)
            tar.add(diff_tar, DIFF)
        os.rename(tmp, out)
    except BaseException:
        _unlink(tmp)
        raise


def import_manifest(file):
    """The checked manifest of the export ``file`` (one line if it is not one)."""
    from kago import jsonio
    try:
        with tarfile.open(file, "r") as tar:
            member = tar.extractfile(MANIFEST)
            doc = jsonio.loads(member.read(), what=file)
    except FileNotFoundError:
        raise ManagerError(f"{file}: no such file") from None
    except tarfile.TarError:
        raise ManagerError(f"{file}: not a kago checkpoint (not a tar file)") from None
    except KeyError:
        raise ManagerError(f"{file}: not a kago checkpoint (no {MANIFEST})") from None
    except (AttributeError, ValueError, OSError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ManagerError(f"{file}: not a kago checkpoint ({why})") from None
    return check(doc, file)


def unpack(file, dest):
    """CRIU's images and the diff of the export ``file`` into ``dest`` (made here): only
    plain files and directories under ``criu/`` and the diff itself are taken."""
    os.makedirs(dest, 0o700)
    with tarfile.open(file, "r") as tar:
        members = [m for m in tar.getmembers() if _wanted(m)]
        tar.extractall(dest, members=members)  # vetted: plain files and dirs, no ".."


def _wanted(m):
    name = os.path.normpath(m.name)
    if name.startswith(("/", "..")):
        return False
    if name in (MANIFEST, DIFF):
        return m.isfile()
    return (name == CRIU_DIR or name.startswith(CRIU_DIR + "/")) and (m.isfile() or m.isdir())


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
