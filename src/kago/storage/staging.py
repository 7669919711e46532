"""One command's staging area in the image store: blobs and layers written and checked under
<root>/tmp without the store's lock, then published into the store by renames under it
(``Staging.publish``), so a long import does not stop containers from being made and a failed
one leaves nothing behind. ``Store.staging()`` makes one.
"""

import hashlib
import json
import os
import uuid

from kago.storage import drivers, tarsplit
from kago.storage.apply import Applier
from kago.storage.errors import BadArchive, DigestMismatch, StoreError
from kago.storage.model import Layer, chain_id, now_rfc3339
from kago.storage.records import read_json, write_json
from kago.storage.stream import (
    CHUNK,
    MEDIA_TYPES,
    HashingReader,
    Peek,
    decompressed,
    gzip_copy,
    hex_of,
    is_enospc,
    sniff,
)
from kago.storage.tarsplit import SPLIT_SUFFIX
from kago.storage.writer import LayerTar


class Staging:
    """One command's staging area, <root>/tmp/<pid>-<random>: blobs and layers are written
    and checked here, then ``publish`` renames them into the store under its lock. Leaving the
    block removes whatever was not published, so a failure leaves nothing behind."""

    def __init__(self, store):
        self.store = store
        self.dir = store._p("tmp", f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
        self._staged_layers = {}   # chain -> staged path (not yet in the store)

    def __enter__(self):
        os.mkdir(self.dir, 0o700)
        return self

    def __exit__(self, kind, err, tb):
        drivers._rmtree(self.dir)
        if err is not None and is_enospc(err):
            raise StoreError(f"no space left in store {self.store.root} (free some space and "
                             "retry; nothing was kept)") from None
        return False

    def path(self, name):
        return os.path.join(self.dir, name)

    # blobs

    def blob_from_file(self, path, what=None):
        """Stage a rootfs tarball (a path or a binary file object, read once) as a layer blob:
        kept as is if plain, gzip or zstd (OCI media types exist for those), else
        recompressed to gzip."""
        if hasattr(path, "read"):
            return self._blob_from_stream(path, what or "standard input")
        with open(path, "rb") as f:
            return self._blob_from_stream(f, what or path)

    def _blob_from_stream(self, f, what):
        head = f.read(6)
        kind = sniff(head)
        src = Peek(f, head)
        out = self.path(f"blob-{uuid.uuid4().hex}")
        if kind in MEDIA_TYPES:
            with open(out, "wb") as dst:
                reader = HashingReader(src, tee=dst)
                reader.drain()
            return Layer(reader.digest(), reader.size, MEDIA_TYPES[kind], path=out)
        try:
            digest, size = gzip_copy(decompressed(src)[0], out)
        except (EOFError, OSError, ValueError) as e:
            if is_enospc(e):
                raise
            raise BadArchive(f"{what}: corrupt or truncated {kind} stream ({e})") from None
        return Layer(digest, size, MEDIA_TYPES["gzip"], path=out)

    def copy_blob(self, path, media_type, expected=None, what=None):
        out = self.path(f"blob-{uuid.uuid4().hex}")
        with open(path, "rb") as src, open(out, "wb") as dst:
            reader = HashingReader(src, tee=dst)
            reader.drain()
        digest = reader.digest()
        if expected and digest != expected:
            raise DigestMismatch(what or path, expected, digest)
        return Layer(digest, reader.size, media_type, path=out)

    def blob_from_dir(self, path):
        out = self.path(f"blob-{uuid.uuid4().hex}")
        tar = LayerTar(out)
        try:
            tar.add_tree(path)
            digest, size, diff_id = tar.close()
        except BaseException:
            tar.abort()
            raise
        return Layer(digest, size, MEDIA_TYPES["gzip"], diff_id, out)

    # layers

    def apply(self, layers, source, parent=None):
        """Apply each layer's blob on top of the one before (the first on ``parent``, a chain
        id in the store); sets diff_id, chain and size. A layer whose chain is already in the
        store (known diff_id) is not applied again."""
        for index, layer in enumerate(layers):
            what = f"{source} layer {index + 1} ({layer.digest[:19]})"
            if layer.diff_id:
                chain = chain_id(parent, layer.diff_id)
                existing = self.store._p("layers", hex_of(chain) + ".json")
                if os.path.exists(existing):
                    layer.chain, parent = chain, chain
                    rec = read_json(existing)
                    layer.content_size, layer.newest = rec["size"], rec.get("newest")
                    continue
            staged = self.path(f"layer-{index}")
            self.store._driver.stage_layer(staged, self._path_of(parent))
            recorder = tarsplit.Recorder(self.path(f"split-{index}"))
            try:
                with open(layer.path, "rb") as f:
                    reader = HashingReader(decompressed(f)[0], tee=recorder)
                    applier = Applier(staged, self.store._driver.apply_mode, what,
                                      self.store.devices, recorder=recorder)
                    layer.content_size = applier.run(reader)
                    layer.newest = applier.newest
                    try:
                        reader.drain()
                    except (EOFError, OSError, ValueError) as e:
                        if is_enospc(e):
                            raise
                        raise BadArchive(f"{what}: corrupt or truncated stream ({e})") from None
                layer.tar_size = recorder.finish()
            except BaseException:
                recorder.abort()
                raise
            diff_id = reader.digest()
            if layer.diff_id and layer.diff_id != diff_id:
                raise DigestMismatch(f"{what} (uncompressed)", layer.diff_id, diff_id)
            layer.diff_id = diff_id
            layer.chain = parent = chain_id(parent, diff_id)
            layer.split = recorder.path if _plays_back(recorder.path, staged, diff_id) else None
            self._staged_layers[layer.chain] = staged

    def _path_of(self, chain):
        if chain is None:
            return None
        return self._staged_layers.get(chain) or self.store._p("layers", hex_of(chain))

    # publication

    def publish(self, config_doc, layers, names):
        """Rename blobs and layers into the store, write the config and the image record."""
        config = json.dumps(config_doc, sort_keys=True, separators=(",", ":")).encode()
        return self.publish_config(config, layers, names)

    def publish_config(self, config, layers, names):
        image_id = hashlib.sha256(config).hexdigest()
        cfg_path = self.path("config")
        with open(cfg_path, "wb") as f:
            f.write(config)
        store = self.store
        self._added = []
        with store._lock:
            store._check_names(names, image_id)
            try:
                parent = None
                for layer in layers:
                    self._publish_layer(layer, parent)
                    parent = layer.chain
                self._publish_blob(cfg_path, "sha256:" + image_id)
                rec = read_json(store._p("images", image_id + ".json")) or {
                    "id": image_id, "names": [], "created": now_rfc3339(),
                    "config": "sha256:" + image_id, "layers": [l.to_json() for l in layers],
                    "chain": [l.chain for l in layers],
                    "size": sum(l.content_size for l in layers)}
                rec["names"] += [n for n in names if n not in rec["names"]]
                store._write_image(rec)
            except BaseException:
                self._unpublish()
                raise
        return rec

    def _unpublish(self):
        """Take back what this publication renamed into the store (a record could not be
        written: a full disk): no blob or layer of a failed import stays visible."""
        for kind, path in reversed(self._added):
            if kind == "layer":
                if os.path.exists(path + ".json"):
                    os.unlink(path + ".json")
                self.store._driver.remove_layer(path)
            elif os.path.exists(path):
                os.unlink(path)

    def _publish_blob(self, staged, digest):
        final = self.store._blob_path(digest)
        if staged == final or os.path.exists(final):
            return
        os.rename(staged, final)
        self._added.append(("blob", final))

    def _publish_layer(self, layer, parent):
        """Rename a staged layer into the store with one copy of its content: the extracted
        files and its tar-split (the tar plays back from them), or, for a tar that does not
        play back, the extracted files and the blob."""
        store = self.store
        record = store._p("layers", hex_of(layer.chain) + ".json")
        staged = self._staged_layers.pop(layer.chain, None)
        if os.path.exists(record):
            return
        final = store._p("layers", hex_of(layer.chain))
        if staged is None:
            raise StoreError(f"layer {layer.chain} vanished from the store while an image "
                             "using it was imported (retry the import)")
        if os.path.lexists(final):  # a leftover without a record (a crash): replace it
            store._driver.remove_layer(final)
        blob = None
        if layer.split:
            os.rename(layer.split, final + SPLIT_SUFFIX)
            self._added.append(("blob", final + SPLIT_SUFFIX))
        else:
            self._publish_blob(layer.path, layer.digest)
            blob = layer.to_json()
        store._driver.publish_layer(staged, final)
        self._added.append(("layer", final))
        write_json(record, {"chain_id": layer.chain, "diff_id": layer.diff_id,
                            "parent": parent, "size": layer.content_size,
                            "tar_size": layer.tar_size, "split": bool(layer.split),
                            "blob": blob, "source": layer.to_json(), "created": now_rfc3339(),
                            "newest": layer.newest})


def _plays_back(split, layer_dir, diff_id):
    """Whether ``split`` and the layer's files give back the tar whose digest is ``diff_id``
    (a tar that writes one path twice, say, does not: its layer keeps its blob)."""
    reader = tarsplit.Reader(tarsplit.chunks(split, layer_dir))
    try:
        while reader.read(CHUNK):
            pass
    except StoreError:
        return False
    return reader.digest() == diff_id
