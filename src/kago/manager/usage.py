"""What the root's images, containers and volumes take on disk (``kago system df``), and an
image's history (``kago history``), as docker shows them."""

import os


def tree_size(path):
    """Bytes of the files under ``path`` (hard links once, nothing followed, no mounts)."""
    total, seen = 0, set()
    try:
        top = os.lstat(path).st_dev
    except OSError:
        return 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames
                       if _same_dev(os.path.join(dirpath, d), top)]
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def _same_dev(path, dev):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return st.st_dev == dev


def disk_usage(mgr):
    """[{"type", "total", "active", "size", "reclaimable"}] for Images, Containers and
    Local Volumes (sizes in bytes)."""
    records = [(r, live) for r, live in mgr.list(all=True)]
    used_images = {r.get("image_id") for r, _ in records}
    images = mgr.store.images() if os.path.isdir(mgr.paths.storage()) else []
    active_images = [i for i in images if i.id in used_images]
    image_size = sum(i.size for i in images)
    rows = [{"type": "Images", "total": len(images), "active": len(active_images),
             "size": image_size,
             "reclaimable": image_size - sum(i.size for i in active_images)}]
    sizes = {}
    for r, _live in records:
        sizes[r["id"]] = _own_size(mgr, r)
    running = [r for r, live in records if live in ("running", "paused", "restarting")]
    total = sum(sizes.values())
    rows.append({"type": "Containers", "total": len(records), "active": len(running),
                 "size": total,
                 "reclaimable": total - sum(sizes[r["id"]] for r in running)})
    from kago.manager import volumes
    found = volumes.list_volumes(mgr)
    vsize = {v.name: tree_size(v.mountpoint) for v in found}
    active = [v.name for v in found if v.users]
    total = sum(vsize.values())
    rows.append({"type": "Local Volumes", "total": len(found), "active": len(active),
                 "size": total, "reclaimable": total - sum(vsize[n] for n in active)})
    return rows


def _own_size(mgr, record):
    """The bytes of a container's writable layer (its own tree in the store)."""
    rootfs = record.get("rootfs") or {}
    if rootfs.get("kind") != "image":
        return 0
    try:
        cdir = mgr.store._cdir(record["id"])
        own = mgr.store._driver.own_tree(cdir)
    except Exception:  # a half-made or half-removed container: nothing to count
        return 0
    return tree_size(own)


def history(mgr, ref):
    """docker history's rows, newest first."""
    from kago.manager.images import store_of
    store = store_of(mgr, ref)
    info = store.image(ref)
    layers = store.layers(ref)
    entries = list(info.history or ())
    if not entries:
        entries = [{"created": info.created, "created_by": "", "comment": ""}
                   for _ in layers] or [{"created": info.created}]
    rows, i = [], 0
    for entry in entries:
        size = 0
        if not entry.get("empty_layer") and i < len(layers):
            size = layers[i].content_size or 0
            i += 1
        rows.append({"id": "<missing>", "created": entry.get("created") or info.created,
                     "created_by": entry.get("created_by", ""), "size": size,
                     "comment": entry.get("comment", "")})
    rows.reverse()
    rows[0]["id"] = info.id
    return rows
