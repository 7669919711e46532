"""The image store: content-addressed blobs, layers shared by images and containers, images
with names, and containers' root filesystems (see records.py for the layout on disk).

Imports stage everything under <root>/tmp without the lock (a long import does not stop
containers from being made), then publish it under the lock by renames; see ``staging.Staging``.
"""

import json
import os

from kago.host.rootless import in_user_namespace
from kago.storage import drivers, fuseovl, idshift, reference, syscalls, tarsplit
from kago.storage.errors import (
    BadArchive,
    DigestMismatch,
    ImageInUse,
    ImageNotFound,
    NameTaken,
    RootfsExists,
    RootfsNotFound,
    StoreError,
)
from kago.storage.model import (  # noqa: F401 - Layer, chain_id, host_platform: also here
    IdMap, ImageInfo, Layer, RootfsInfo, chain_id, host_platform, now_rfc3339, rfc3339)
from kago.storage.records import (
    StoreLock,
    container_half_made,
    pid_alive,
    read_container_record,
    read_json,
    write_json,
)
from kago.storage.stream import CHUNK, MEDIA_TYPES, decompressed, hex_of, is_enospc
from kago.storage.staging import Staging
from kago.storage.tarsplit import SPLIT_SUFFIX
from kago.storage.writer import LayerTar

DEFAULT_ROOT = "/var/lib/kago/storage"
HOST_ROOT = "@host"  # create_rootfs's image for "the host's own root filesystem"
EPOCH = "1970-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
class Store:
    """An image and layer store rooted at ``root``; see the package docstring for the API."""

    def __init__(self, root=DEFAULT_ROOT, driver=None, devices="allow"):
        self.root = os.path.abspath(root)
        for sub in ("blobs/sha256", "layers", "images", "containers", "tmp"):
            os.makedirs(os.path.join(self.root, sub), mode=0o700, exist_ok=True)
        # a runtime that has entered a container's user namespace still has to reach the
        # rootfs: the way there is traversable (x), not listable
        for sub in ("", "containers"):
            os.chmod(os.path.join(self.root, sub), 0o711)
        self.devices = devices
        self._lock = StoreLock(self._p("lock"))
        self._userns = idshift.UsernsCache()
        with self._lock:
            mounter = fuseovl.initial(driver, fuseovl.remembered(self.root), in_user_namespace())
            self.driver = self._pick_driver(driver)
            self._driver = drivers.DRIVERS[self.driver](self.root)
            if self.driver == "overlay":
                self._driver.mounter = mounter
                if driver == fuseovl.NAME:
                    # the uppers it writes need it (its opaque marks): the store keeps it
                    fuseovl.remember(self.root)

    @property
    def mount_program(self):
        """``fuse-overlayfs`` when the overlay driver's containers are mounted by it, else
        None (overlayfs or another driver)."""
        return fuseovl.NAME if getattr(self._driver, "mounter", None) == fuseovl.NAME else None

    def _p(self, *parts):
        return os.path.join(self.root, *parts)

    def _pick_driver(self, wanted):
        path = self._p("driver")
        try:
            with open(path) as f:
                recorded = f.read().strip()
        except FileNotFoundError:
            recorded = None
        if recorded:
            if wanted == fuseovl.NAME and recorded == "overlay":
                return recorded  # the same layers, mounted by fuse-overlayfs
            if wanted and wanted != recorded:
                raise StoreError(f"store {self.root} uses driver {recorded}, not {wanted} "
                                 "(use another root for another driver)")
            return recorded
        name = drivers.choose(self.root, self._p("tmp"), wanted)
        with open(path, "w") as f:
            f.write(name + "\n")
        return name

    def close(self):
        """Release the user namespaces cached for idmapped mounts."""
        self._userns.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- images: queries ----------------------------------------------------------------------

    def _image_records(self):
        out = []
        for entry in sorted(os.listdir(self._p("images"))):
            if entry.endswith(".json"):
                rec = read_json(self._p("images", entry))
                if rec is not None:
                    out.append(rec)
        return out

    def _find(self, ref):
        """The record of the image ``ref`` names: a name[:tag], an ID or an ID prefix."""
        if not isinstance(ref, str) or not ref:
            raise ImageNotFound(repr(ref))
        if reference.HEX64.match(ref):  # a full ID (never a name): one record to read
            rec = read_json(self._p("images", ref + ".json"))
            if rec is not None:
                return rec
        records = self._image_records()
        try:
            name = reference.normalize(ref)
        except StoreError:
            name = None
        for rec in records:
            if name in rec["names"]:
                return rec
        if reference.looks_like_id(ref):
            prefix = ref.removeprefix("sha256:")
            hits = [r for r in records if r["id"].startswith(prefix)]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise StoreError(f"image id prefix {ref} is ambiguous (it matches "
                                 f"{len(hits)} images); give more digits")
        raise ImageNotFound(ref)

    def _config(self, rec):
        with open(self._blob_path(rec["config"])) as f:
            return json.load(f)

    def _info(self, rec, given=()):
        cfg = self._config(rec)
        return ImageInfo(rec["id"], rec["names"], cfg.get("created") or rec["created"],
                         rec["size"], [layer["diff_id"] for layer in rec["layers"]],
                         cfg.get("config") or {}, cfg.get("author"), cfg.get("history") or (),
                         cfg.get("architecture"), cfg.get("os"), given)

    def images(self):
        """Every image, oldest first."""
        return sorted((self._info(r) for r in self._image_records()),
                      key=lambda i: (i.created, i.id))

    def image(self, ref):
        return self._info(self._find(ref))

    def image_config(self, ref):
        """The whole OCI image config document (rootfs, history, config, ...)."""
        return self._config(self._find(ref))

    # --- images: names ------------------------------------------------------------------------

    def tag(self, ref, name):
        """Give the image ``ref`` the name ``name`` too; NameTaken if another image has it."""
        name = reference.normalize(name)
        with self._lock:
            rec = self._find(ref)
            self._check_names([name], rec["id"])
            if name not in rec["names"]:
                rec["names"].append(name)
                self._write_image(rec)
        return self._info(rec)

    def untag(self, name):
        name = reference.normalize(name)
        with self._lock:
            rec = self._find(name)
            rec["names"].remove(name)
            self._write_image(rec)

    def _check_names(self, names, image_id):
        for rec in self._image_records():
            for name in names:
                if name in rec["names"] and rec["id"] != image_id:
                    raise NameTaken(name, rec["id"])

    def _write_image(self, rec):
        write_json(self._p("images", rec["id"] + ".json"), rec)

    def remove_image(self, ref, force=False):
        """Remove an image, or only one name of it when ``ref`` is a name and it has others.

        An image that containers use is refused unless ``force``; then only its record goes,
        and its layers stay while those containers use them. Returns what was removed.
        """
        with self._lock:
            rec = self._find(ref)
            try:
                name = reference.normalize(ref)
            except StoreError:
                name = None
            if name in rec["names"] and len(rec["names"]) > 1:
                rec["names"].remove(name)
                self._write_image(rec)
                return [f"name {name}"]
            users = [c["cid"] for c in self._container_records() if c["image"] == rec["id"]]
            if users and not force:
                raise ImageInUse(ref, users)
            os.unlink(self._p("images", rec["id"] + ".json"))
            return [f"image {rec['id']}"] + self._prune()

    # --- blobs --------------------------------------------------------------------------------

    def _blob_path(self, digest):
        return self._p("blobs", "sha256", hex_of(digest))

    def has_blob(self, digest):
        return os.path.exists(self._blob_path(digest))

    def blob_path(self, digest):
        """Where the blob ``digest`` is (to read it); StoreError if the store lacks it."""
        path = self._blob_path(digest)
        if not os.path.exists(path):
            raise StoreError(f"blob {digest} is not in the store")
        return path

    # --- imports ------------------------------------------------------------------------------

    def staging(self):
        """A staging area for one command (a context manager); see staging.Staging."""
        return Staging(self)

    def import_archive(self, path, name=None, config=None, message=None, author=None):
        """Import a root filesystem: a tarball (.tar, .tar.gz, .tar.xz, .tar.zst, .tar.bz2,
        the compression found from its first bytes; a path or a binary file object such as
        standard input) or a directory, as a one-layer image.
        ``config`` fills the image config's "config" object (default: PATH in Env).

        The config is a function of the content and the arguments only (its date is the
        newest mtime in the archive), so importing the same content again gives the same
        image ID: the existing image, with ``name`` added to its names."""
        names = [reference.normalize(name)] if name else []  # checked once the ID is known
        stream = hasattr(path, "read")
        if not stream and not os.path.exists(path):
            raise StoreError(f"{path}: no such file or directory")
        with self.staging() as stage:
            if stream:
                layer = stage.blob_from_file(path, "standard input")
                path = "standard input"
            elif os.path.isdir(path):
                layer = stage.blob_from_dir(path)
            else:
                layer = stage.blob_from_file(path)
            stage.apply([layer], source=path)
            # content-addressed: the same tarball with the same options is the same config,
            # so the same image ID (dated by its newest file, not by the clock; no file name)
            created = rfc3339(layer.newest) if layer.newest is not None else EPOCH
            image_config = {"Env": [DEFAULT_PATH]}
            image_config.update(config or {})
            history = {"created": created, "created_by": "kago import"}
            if message:
                history["comment"] = message
            doc = new_config([layer], image_config, created, [history], author)
            return self._info(stage.publish(doc, [layer], names), names)

    def new_image_from_config(self, stage, config, layers, names):
        """Publish an image whose layers ``stage`` has applied, with ``config`` (bytes) as its
        config blob as is: its digest is the image ID (for the OCI, docker and registry code)."""
        return self._info(stage.publish_config(config, layers, names), names)

    def import_oci(self, path, name=None):
        """Import the host platform's images of an OCI image layout (a directory or a tar);
        names from its annotations, or ``name`` when it holds one image."""
        from kago.storage import oci
        return oci.import_oci(self, path, name)

    def load(self, path):
        """Import a docker-save archive or an OCI layout (what ``path`` holds decides), from
        a path or a binary file object (a pipe: copied into staging first, as the archive
        is read out of order). Returns [ImageInfo]."""
        from kago.storage import oci
        if not hasattr(path, "read"):
            return oci.load(self, path)
        with self.staging() as stage:
            copy = stage.path("input.tar")
            with open(copy, "wb") as out:
                while chunk := path.read(CHUNK):
                    out.write(chunk)
            if os.path.getsize(copy) == 0:
                raise BadArchive("standard input is empty (give an archive: -i FILE or "
                                 "redirect it)")
            return oci.load(self, copy, shown="standard input")  # not our copy's path

    def import_docker_archive(self, path):
        """Import the images of a ``docker save`` archive, named by its RepoTags."""
        from kago.storage import oci
        return oci.import_docker_archive(self, path)

    def export_oci(self, ref, path):
        """Write image ``ref`` as an OCI image layout: a directory, or a tar if ``path`` ends
        in .tar. ``path`` must not exist (or be an empty directory)."""
        from kago.storage import oci
        return oci.export(self, ref, path)

    def export_docker_archive(self, ref, path):
        """Write image ``ref`` as a tar that ``docker load`` reads (and that is an OCI layout)."""
        from kago.storage import oci
        return oci.export(self, ref, path, docker=True)

    def manifest(self, ref):
        """(OCI manifest bytes, image record) of a stored image as export writes it: its
        layers as uncompressed tars (push sends compressed blobs: see registry.push)."""
        from kago.storage import oci
        rec = self._find(ref)
        return oci.manifest_of(self, rec), rec

    # --- containers' root filesystems ---------------------------------------------------------

    def _cdir(self, cid):
        return self._p("containers", reference.validate_cid(cid))

    def _container_records(self):
        out = []
        for cid in sorted(os.listdir(self._p("containers"))):
            rec = read_container_record(self._p("containers", cid, "rootfs.json"))
            if rec is not None:
                out.append(rec)
        return out

    def _layer_paths(self, chain):
        if not chain:
            empty = self._p("layers", "empty")
            os.makedirs(empty, mode=0o755, exist_ok=True)
            return [empty]
        return [self._p("layers", hex_of(c)) for c in chain]

    def _lowers(self, record):
        """The paths a container's root is stacked on, bottom first."""
        if record.get("base") == "host":
            return ["/"]
        return self._layer_paths(record["chain"])

    def _host_hide(self):
        """What a container on the host's root must not see: the store, when it is on the
        root filesystem (overlayfs takes the root mount alone, without the mounts on it)."""
        if os.stat(self.root).st_dev != os.stat("/").st_dev:
            return []
        return [os.path.relpath(self.root, "/")]

    def create_rootfs(self, cid, image_ref, idmap=None, shift=None):
        """Make the container's writable layer on ``image_ref`` and mount it.

        ``idmap`` (an IdMap) shifts the image's files to the container's IDs; ``shift`` forces
        how: "idmapped" or "chown" (default: idmapped where the kernel allows it, else chown).
        ``image_ref`` HOST_ROOT ("@host") stacks the container on the host's own root
        filesystem (read-only beneath its writable layer; overlay driver only), hiding the
        store.
        """
        if image_ref == HOST_ROOT:
            return self._create_rootfs(cid, None, idmap, shift)
        if shift not in (None, "idmapped", "chown"):
            raise StoreError(f"shift {shift!r}: use idmapped or chown")
        if idmap is not None and not isinstance(idmap, IdMap):
            raise StoreError(f"idmap must be an IdMap, not {type(idmap).__name__}")
        return self._create_rootfs(cid, image_ref, idmap, shift)

    def _create_rootfs(self, cid, image_ref, idmap, shift):
        if shift is None and idmap is not None and in_user_namespace():
            # root of a user namespace (the rootless manager's holder): the kernel refuses
            # idmapped mounts of the host's filesystems to it, so the files are re-owned
            shift = "chown"
        cdir = self._cdir(cid)
        if image_ref is None and self.driver != "overlay":
            raise StoreError(f"a container on the host's root needs the overlay driver; store "
                             f"{self.root} uses {self.driver}")
        with self._lock:
            rec = self._find(image_ref) if image_ref is not None else None
            try:
                os.mkdir(cdir, 0o711)
            except FileExistsError:
                raise RootfsExists(cid) from None
            try:
                os.mkdir(os.path.join(cdir, "rootfs"), 0o755)
                record = {"cid": cid, "image": rec["id"] if rec else None,
                          "chain": rec["chain"] if rec else [],
                          "base": "image" if rec else "host", "driver": self.driver,
                          "idmap": idmap.to_json() if idmap else None, "created": now_rfc3339()}
                lowers = self._lowers(record)
                if rec:
                    used, options = self._driver.create(cdir, lowers, idmap, shift,
                                                        self._userns)
                else:
                    used, options = self._driver.create(cdir, lowers, idmap, shift,
                                                        self._userns, hide=self._host_hide())
                record.update(shift=used, options=options)
                # atomic (tmp + rename) but not fsynced: see read_container_record
                write_json(os.path.join(cdir, "rootfs.json"), record, sync=False)
            except BaseException as e:
                self._destroy_container_dir(cdir)
                self._driver.unmounted(cdir)
                if is_enospc(e):
                    raise StoreError(f"no space left in store {self.root} for container "
                                     f"{cid}'s layer (free some space)") from None
                raise
        return self._rootfs_info(record, mounted=True)

    def _rootfs_info(self, record, mounted=None):
        """``mounted``: known by the caller, else read from the mount table (whose size is
        the number of mounts: containers() reads it once for all)."""
        path = self._p("containers", record["cid"], "rootfs")
        if mounted is None:
            mounted = syscalls.is_mountpoint(path)
        return RootfsInfo(record["cid"], path, record["driver"], record["shift"],
                          record["image"], IdMap.from_json(record["idmap"]), mounted)

    def _container(self, cid):
        record = read_container_record(os.path.join(self._cdir(cid), "rootfs.json"))
        if record is None:
            raise RootfsNotFound(cid)
        return record

    def rootfs(self, cid):
        """The container's RootfsInfo, or None if it has none here."""
        try:
            return self._rootfs_info(self._container(cid))
        except RootfsNotFound:
            return None

    def containers(self):
        points = {mp for mp, _t, _s in syscalls.mounts()}
        return [self._rootfs_info(r, os.path.realpath(self._p("containers", r["cid"], "rootfs"))
                                  in points) for r in self._container_records()]

    def mount_rootfs(self, cid):
        """Mount the container's root filesystem if it is not (after a reboot); its path."""
        with self._lock:
            record = self._container(cid)
            cdir = self._cdir(cid)
            path = os.path.join(cdir, "rootfs")
            if not syscalls.is_mountpoint(path):
                self._driver.mount(cdir, self._lowers(record), _Record(record), self._userns)
            return path

    def unmount_rootfs(self, cid):
        """Unmount the container's root filesystem; nothing to do if it is not mounted."""
        with self._lock:
            syscalls.unmount(os.path.join(self._cdir(cid), "rootfs"))
            self._driver.unmounted(self._cdir(cid))

    def remove_rootfs(self, cid):
        """Unmount and delete the container's layer; nothing to do if it has none.

        Only a rename into tmp/ runs under the store's lock (there the store has forgotten
        the container; gc deletes what a killed remover left): the unmount before it and the
        deletion after it do not, so removals in parallel do not queue behind each other's
        RCU grace periods (one per unmount) and rmtree."""
        cdir = self._cdir(cid)
        if not os.path.lexists(cdir):
            return
        syscalls.unmount(os.path.join(cdir, "rootfs"))
        self._driver.unmounted(cdir)
        trash = self._p("tmp", f"{os.getpid()}-removed-{cid}")
        with self._lock:
            try:
                os.rename(cdir, trash)
            except FileNotFoundError:
                return  # removed meanwhile
        self._destroy_container_dir(trash)  # unmounts again: mounted meanwhile, it fails here

    def _destroy_container_dir(self, cdir):
        syscalls.unmount(os.path.join(cdir, "rootfs"))
        self._driver.remove(cdir)

    # --- commit -------------------------------------------------------------------------------

    def commit(self, cid, name, message=None, author=None, config=None):
        """Make the container's changes (running or stopped) a new layer on its image, and
        that an image named ``name``. ``config`` overrides keys of the image config's
        "config" (Cmd, Env, ...). A running container's files are read as they are: pause it
        for a consistent snapshot."""
        names = [reference.normalize(name)] if name else []
        with self._lock:
            record = self._container(cid)
            self._check_names(names, None)
        if record.get("base") == "host":
            raise StoreError(f"container {cid} is stacked on the host's root; only containers "
                             "made from an image can be committed")
        base_layers = [self._layer_of(chain) for chain in record["chain"]]
        base_doc = self._base_config(record)
        with self.staging() as stage:
            layer = self._diff_layer(stage, cid, record)
            stage.apply([layer], f"container {cid}'s changes", parent=record["chain"][-1]
                        if record["chain"] else None)
            created = now_rfc3339()
            image_config = dict(base_doc.get("config") or {})
            image_config.update(config or {})
            history = {"created": created, "created_by": f"kago commit {cid}"}
            if message:
                history["comment"] = message
            if author:
                history["author"] = author
            doc = new_config(base_layers + [layer], image_config, created, [history], author,
                             base=base_doc)
            return self._info(stage.publish(doc, base_layers + [layer], names), names)

    def _layer_of(self, chain):
        """A Layer for a layer in the store, from its record."""
        rec = self._layer_record(chain)
        source = rec.get("source") or rec.get("blob") or {}
        blob = rec.get("blob")
        layer = Layer(source.get("digest"), source.get("size"), source.get("media_type"),
                      rec["diff_id"], self._blob_path(blob["digest"]) if blob else None)
        layer.chain = chain
        layer.content_size = rec["size"]
        layer.tar_size = rec.get("tar_size")
        return layer

    def _layer_record(self, chain):
        rec = read_json(self._p("layers", hex_of(chain) + ".json"))
        if rec is None or not (rec.get("blob") or rec.get("split")):
            raise StoreError(f"layer {chain} is missing from the store (run gc, re-import "
                             "the image)")
        return rec

    def layer_tar(self, chain):
        """The uncompressed tar of layer ``chain`` (its diff_id's bytes), to read: a reader
        with ``read(n)``, ``size`` (bytes it will give), ``diff_id``, and ``check()`` to call
        after the last byte (DigestMismatch if what was read is not the layer's tar). Played
        back from the layer's files and tar-split, or decompressed from its kept blob."""
        rec = self._layer_record(chain)
        if rec.get("split"):
            path = self._p("layers", hex_of(chain))
            chunks = tarsplit.chunks(path + SPLIT_SUFFIX, path)
        else:
            chunks = _decompressed_chunks(self._blob_path(rec["blob"]["digest"]))
        size = rec.get("tar_size")
        if size is None:  # a record from before sizes were kept: count once
            size = sum(len(c) for c in _decompressed_chunks(
                self._blob_path(rec["blob"]["digest"])))
        return _LayerTar(chunks, size, rec["diff_id"], chain)

    def pushed_blob(self, chain):
        """The descriptor (digest, size, media_type) of the gzip blob kago made of layer
        ``chain`` for its last push, if any (a push that finds it in the registry sends
        nothing)."""
        rec = read_json(self._p("layers", hex_of(chain) + ".json")) or {}
        return rec.get("pushed")

    def remember_pushed_blob(self, chain, desc):
        with self._lock:
            path = self._p("layers", hex_of(chain) + ".json")
            rec = read_json(path)
            if rec is not None:
                rec["pushed"] = desc
                write_json(path, rec)

    def layers(self, ref):
        """Image ``ref``'s layers as Layer values, bottom first: what a new image made on the
        same layers (another config) publishes."""
        return [self._layer_of(chain) for chain in self._find(ref)["chain"]]

    def layer_chains(self, ref):
        """The chain IDs of image ``ref``'s layers, bottom first."""
        return list(self._find(ref)["chain"])

    def _base_config(self, record):
        """The config document of the container's image; a bare one if it was removed."""
        path = self._blob_path("sha256:" + record["image"])
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def changes(self, cid):
        """``docker diff``: [(A|C|D, path)] of the container's own tree over its image."""
        from kago.storage import diff
        record = self._container(cid)
        layers = self._layer_paths(record["chain"])
        own = self._driver.own_tree(self._cdir(cid))
        if self.driver == "overlay":
            return diff.changes(own, list(reversed(layers)), True,
                                IdMap.from_json(record["idmap"]))
        back = IdMap.from_json(record["idmap"]) if record["shift"] == "chown" else None
        return diff.changes(own, [layers[-1]], False, back)

    def export_changes(self, cid, out):
        """The container's own changes over its image, as the gzip layer tar ``out`` (what
        ``commit`` would stack; a checkpoint's export carries it)."""
        with self._lock:
            record = self._container(cid)
        if record.get("base") == "host":
            raise StoreError(f"container {cid} is stacked on the host's root: it has no "
                             "changes of its own to export")
        with self.staging() as stage:
            layer = self._diff_layer(stage, cid, record)
            import shutil
            shutil.move(layer.path, out)

    def _diff_layer(self, stage, cid, record):
        from kago.storage import diff
        cdir = self._cdir(cid)
        out = stage.path("commit.tar.gz")
        tar = LayerTar(out)
        idmap = IdMap.from_json(record["idmap"])
        own = self._driver.own_tree(cdir)
        layers = self._layer_paths(record["chain"])
        try:
            if self.driver == "overlay":
                diff.overlay_changes(tar, own, list(reversed(layers)), idmap)
            else:
                back = idmap if record["shift"] == "chown" else None
                diff.tree_changes(tar, own, layers[-1], back)
            digest, size, diff_id = tar.close()
        except BaseException:
            tar.abort()
            raise
        return Layer(digest, size, MEDIA_TYPES["gzip"], diff_id, out)

    # --- garbage --------------------------------------------------------------------------------

    def gc(self):
        """Remove what nothing references: staging of dead commands, half-made containers,
        layers no image or container uses, blobs no image lists. Returns what was removed."""
        removed = []
        with self._lock:
            for entry in os.listdir(self._p("tmp")):
                pid = entry.split("-", 1)[0]
                if not (pid.isdigit() and pid_alive(int(pid))):
                    if "-removed-" in entry:  # a container's layer, maybe still mounted
                        syscalls.unmount(self._p("tmp", entry, "rootfs"))
                    drivers._rmtree(self._p("tmp", entry))
                    removed.append(f"tmp/{entry}")
            for cid in os.listdir(self._p("containers")):
                cdir = self._p("containers", cid)
                if container_half_made(os.path.join(cdir, "rootfs.json")):
                    self._destroy_container_dir(cdir)
                    removed.append(f"container {cid}")
            removed += self._prune()
        return removed

    def _prune(self):
        """Delete layers and blobs nothing references (the caller holds the lock)."""
        images = self._image_records()
        used_chains = {c for r in images for c in r["chain"]}
        used_chains |= {c for r in self._container_records() for c in r["chain"]}
        used_blobs = {r["config"] for r in images}
        removed = []
        for entry in os.listdir(self._p("layers")):
            stem = entry.removesuffix(".json").removesuffix(SPLIT_SUFFIX)
            if stem == "empty" or "sha256:" + stem in used_chains:
                if entry.endswith(".json"):  # a layer without a tar-split keeps its blob
                    blob = (read_json(self._p("layers", entry)) or {}).get("blob")
                    if blob:
                        used_blobs.add(blob["digest"])
                continue
            path = self._p("layers", entry)
            if entry.endswith((".json", SPLIT_SUFFIX)):
                os.unlink(path)
            else:
                self._driver.remove_layer(path)
                removed.append(f"layer sha256:{stem}")
        for entry in os.listdir(self._p("blobs", "sha256")):
            if "sha256:" + entry not in used_blobs:
                os.unlink(self._p("blobs", "sha256", entry))
                removed.append(f"blob sha256:{entry}")
        return removed


def _decompressed_chunks(path):
    with open(path, "rb") as f:
        src = decompressed(f)[0]
        while chunk := src.read(CHUNK):
            yield chunk


class _LayerTar(tarsplit.Reader):
    """Store.layer_tar's reader."""

    def __init__(self, chunks, size, diff_id, chain):
        super().__init__(chunks)
        self.expected_size = size
        self.diff_id = diff_id
        self.chain = chain

    def check(self):
        if self.read(1):
            raise StoreError(f"layer {self.chain}: its tar is longer than recorded "
                             "(re-import the image)")
        if self.digest() != self.diff_id:
            raise DigestMismatch(f"layer {self.chain} played back", self.diff_id,
                                 self.digest())


class _Record:
    """A container record as the drivers read it."""

    __slots__ = ("idmap", "options", "shift")

    def __init__(self, record):
        self.shift = record["shift"]
        self.idmap = IdMap.from_json(record["idmap"])
        self.options = record.get("options", "")


def new_config(layers, image_config, created, history, author=None, base=None):
    """An OCI image config document for ``layers`` (with their diff_ids)."""
    os_name, arch = host_platform()
    doc = dict(base or {})
    doc.update({"created": created, "architecture": doc.get("architecture", arch),
                "os": doc.get("os", os_name), "config": image_config,
                "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
                "history": list(doc.get("history", [])) + list(history)})
    if author:
        doc["author"] = author
    return doc
