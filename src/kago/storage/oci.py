"""OCI image layouts and docker-save archives: import and export.

An OCI image layout (image-spec ``image-layout.md``) is ``oci-layout``, ``index.json`` and
``blobs/sha256/<hex>``, as a directory or a tar. A ``docker save`` archive is ``manifest.json``
(``[{"Config", "RepoTags", "Layers"}]``) plus the files it names; Docker 25+ writes both forms
into one tar, and so does ``export_docker_archive``.

Everything read is checked against its digest as it is copied in; a layer's uncompressed
digest must equal the config's ``rootfs.diff_ids`` entry. An index (or manifest list) picks the
host's platform; an image only for another platform is refused with the platforms it has.
"""

import json
import os
import shutil
import tarfile
import uuid

from kago.storage import reference
from kago.storage.errors import BadArchive, DigestMismatch, PlatformNotFound, StoreError
from kago.storage.stream import MEDIA_TYPES, HashingReader, check_digest, hex_of, sniff

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFESTS = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
INDEXES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
MAX_JSON = 4 << 20  # manifests and configs are small; a huge one is not one


def parse_json(data, what):
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadArchive(f"{what} is not valid JSON ({e})") from None
    if not isinstance(doc, (dict, list)):
        raise BadArchive(f"{what} is not a JSON object")
    return doc


def media_type(doc):
    """A manifest's media type, from the field or, where it is missing, from its shape."""
    kind = doc.get("mediaType") if isinstance(doc, dict) else None
    if kind:
        return kind
    if isinstance(doc, dict) and "manifests" in doc:
        return MEDIA_OCI_INDEX
    if isinstance(doc, dict) and "layers" in doc:
        return MEDIA_OCI_MANIFEST
    return None


# --- platforms ----------------------------------------------------------------------------------

def platform_text(p):
    p = p or {}
    out = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return out + (f"/{p['variant']}" if p.get("variant") else "")


def matches_host(p, host):
    return p.get("os") == host[0] and p.get("architecture") == host[1]


def pick_platform(index, host, what):
    """The descriptor of ``index`` for the host platform; PlatformNotFound if none."""
    entries = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    found = [d for d in entries if matches_host(d.get("platform") or {}, host)]
    if not found:
        have = [platform_text(d.get("platform")) for d in entries
                if (d.get("platform") or {}).get("architecture") != "unknown"]
        raise PlatformNotFound(what, f"{host[0]}/{host[1]}", have)
    return found[0]


def check_config_platform(cfg, host, what):
    arch, os_name = cfg.get("architecture"), cfg.get("os")
    if arch and os_name and (os_name, arch) != tuple(host):
        raise PlatformNotFound(what, f"{host[0]}/{host[1]}", [f"{os_name}/{arch}"])


# --- reading a layout: a directory or a tar -------------------------------------------------------

class Source:
    """Files of an OCI layout or docker archive, from a directory or a tar (not compressed)."""

    def __init__(self, path, shown=None):
        self.path = path
        self.shown = shown or path  # what messages call it ("standard input" for a copy)
        self.tar = None
        if os.path.isdir(path):
            return
        try:
            with open(path, "rb") as f:
                kind = sniff(f.read(6))
            if kind is not None:
                raise BadArchive(f"{self.shown}: a {kind}-compressed archive; decompress it "
                                 "first (OCI layouts and docker archives are plain tars)")
            self.tar = tarfile.open(path, "r:")
        except FileNotFoundError:
            raise StoreError(f"{self.shown}: no such file or directory") from None
        except tarfile.TarError as e:
            raise BadArchive(f"{self.shown}: not a tar archive ({e})") from None
        self.members = {}
        for m in self.tar.getmembers():
            name = "/".join(p for p in m.name.split("/") if p not in ("", "."))
            self.members[name] = m

    def close(self):
        if self.tar is not None:
            self.tar.close()

    def _member(self, name):
        m = self.members.get(name)
        for _ in range(8):  # docker-save archives link duplicate layers
            if m is None or not (m.issym() or m.islnk()):
                break
            target = m.linkname if m.islnk() else os.path.join(os.path.dirname(name),
                                                                m.linkname)
            target = os.path.normpath("/" + target).lstrip("/")
            m = self.members.get(target)
        return m

    def exists(self, name):
        if self.tar is None:
            return os.path.isfile(self._local(name))
        m = self._member(name)
        return m is not None and m.isfile()

    def _local(self, name):
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise BadArchive(f"{self.shown}: refers to {name!r}, outside the archive")
        return os.path.join(self.path, *parts)

    def open(self, name, what=None):
        try:
            if self.tar is None:
                return open(self._local(name), "rb")
            m = self._member(name)
            if m is None or not m.isfile():
                raise FileNotFoundError(name)
            return self.tar.extractfile(m)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BadArchive(f"{self.shown}: {what or name} is missing (a missing base layer "
                             "or an incomplete archive)") from None

    def read(self, name, what=None):
        with self.open(name, what) as f:
            data = f.read(MAX_JSON + 1)
        if len(data) > MAX_JSON:
            raise BadArchive(f"{self.shown}: {what or name} is too large for a manifest or config")
        return data

    def blob_name(self, digest):
        return f"blobs/sha256/{hex_of(digest)}"


def read_verified(source, digest, what):
    """A small blob (config, manifest) by digest, checked."""
    data = source.read(source.blob_name(check_digest(digest, what)), what)
    import hashlib
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise DigestMismatch(f"{source.shown}: {what}", digest, actual)
    return data


def stage_blob(stage, source, name, expected, what, media_type):
    """Copy a layer blob from ``source`` into staging, checking its digest on the way."""
    from kago.storage.model import Layer
    out = stage.path(f"blob-{uuid.uuid4().hex}")
    with source.open(name, what) as src, open(out, "wb") as dst:
        reader = HashingReader(src, tee=dst)
        reader.drain()
    if expected and reader.digest() != expected:
        raise DigestMismatch(f"{source.shown}: {what}", expected, reader.digest())
    if media_type is None:
        with open(out, "rb") as f:
            media_type = MEDIA_TYPES.get(sniff(f.read(6)), MEDIA_TYPES[None])
    return Layer(reader.digest(), reader.size, media_type, path=out)


# --- from manifest to image ---------------------------------------------------------------------

def build_image(store, stage, config_bytes, layer_descs, fetch, names, what):
    """Stage and apply an image's layers, then publish it. ``layer_descs``: [(digest or None,
    media type or None, size)]; ``fetch(index, desc)`` stages layer ``index``'s blob and returns
    a Layer. A layer whose blob and layer are both in the store already is not fetched again."""
    from kago.storage.model import Layer, chain_id
    cfg = parse_json(config_bytes, f"{what}: image config")
    try:
        diff_ids = list(cfg["rootfs"]["diff_ids"])
    except (KeyError, TypeError):
        raise BadArchive(f"{what}: image config has no rootfs.diff_ids") from None
    if len(diff_ids) != len(layer_descs):
        raise BadArchive(f"{what}: {len(layer_descs)} layers but the config lists "
                         f"{len(diff_ids)} diff_ids")
    layers, parent = [], None
    for index, (desc, diff_id) in enumerate(zip(layer_descs, diff_ids)):
        check_digest(diff_id, f"{what}: diff_id {index + 1}")
        chain = chain_id(parent, diff_id)
        digest, mtype, size = desc
        if os.path.exists(store._p("layers", hex_of(chain) + ".json")):
            # the layer (its files, and its tar through them) is in the store: the blob is
            # not needed, whoever compressed it; the descriptor is kept for a push back
            layer = store._layer_of(chain)
            if digest:
                layer.digest, layer.media_type, layer.size = digest, mtype, size
        else:
            layer = fetch(index, desc)
            layer.diff_id = diff_id
        layers.append(layer)
        parent = chain
    stage.apply(layers, what)
    return store.new_image_from_config(stage, config_bytes, layers, names)


def _manifest_layers(manifest, what):
    out = []
    for i, d in enumerate(manifest.get("layers") or []):
        if not isinstance(d, dict):
            raise BadArchive(f"{what}: layer {i + 1} is not a descriptor")
        mtype = d.get("mediaType")
        if mtype not in LAYER_TYPES:
            raise StoreError(f"{what}: layer {i + 1} has media type {mtype!r}, which is not an "
                             "image layer kago can apply")
        out.append((check_digest(d.get("digest"), f"{what}: layer {i + 1}"), mtype,
                    d.get("size")))
    return out


def resolve_manifest(load, desc, host, what, depth=0):
    """Follow an index to the host's manifest. ``load(digest) -> bytes``. Returns
    (manifest dict, its digest)."""
    if depth > 4:
        raise BadArchive(f"{what}: indexes nest too deep")
    digest = check_digest(desc.get("digest"), what)
    doc = parse_json(load(digest), f"{what}: manifest {digest[:19]}")
    kind = media_type(doc)
    if kind in INDEXES:
        return resolve_manifest(load, pick_platform(doc, host, what), host, what, depth + 1)
    if kind not in MANIFESTS:
        raise StoreError(f"{what}: manifest {digest[:19]} has media type {kind!r} "
                         "(not an image manifest)")
    return doc, digest


# --- OCI layout -----------------------------------------------------------------------------------

def _layout_entries(source, name):
    """[(descriptor, [names])] of the images to import from a layout's index.json."""
    if not source.exists("oci-layout"):
        raise BadArchive(f"{source.shown}: not an OCI image layout (no oci-layout file)")
    index = parse_json(source.read("index.json"), f"{source.shown}: index.json")
    entries = [d for d in index.get("manifests") or [] if isinstance(d, dict)]
    if not entries:
        raise BadArchive(f"{source.shown}: index.json lists no images")
    from kago.storage.model import host_platform
    host = host_platform()
    with_platform = [d for d in entries if d.get("platform")]
    if with_platform and not any(matches_host(d["platform"], host) for d in with_platform) \
            and len(with_platform) == len(entries):
        raise PlatformNotFound(source.shown, f"{host[0]}/{host[1]}",
                               [platform_text(d["platform"]) for d in with_platform])
    chosen = [d for d in entries if not d.get("platform") or matches_host(d["platform"], host)]
    if name and len(chosen) > 1:
        raise StoreError(f"{source.shown}: holds {len(chosen)} images; a name can only be given "
                         "to one (tag them after the import)")
    out = []
    for d in chosen:
        ann = d.get("annotations") or {}
        names = [reference.normalize(name)] if name else _names_from(ann)
        out.append((d, names))
    return out


def _names_from(annotations):
    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key)
        if value and ("/" in value or ":" in value or key == CONTAINERD_NAME):
            try:
                return [reference.normalize(value)]
            except StoreError:
                continue
    return []


def import_oci(store, path, name=None, shown=None):
    """Import the images of an OCI image layout (directory or tar); ``shown``: what messages
    call ``path``."""
    from kago.storage.model import host_platform
    source = Source(path, shown)
    try:
        entries = _layout_entries(source, name)
        images = []
        for desc, names in entries:
            with store.staging() as stage:
                images.append(_import_manifest(store, stage, source, desc, names,
                                               host_platform()))
        return images
    finally:
        source.close()


def _import_manifest(store, stage, source, desc, names, host):
    what = source.shown
    load = lambda digest: read_verified(source, digest, f"manifest {digest[:19]}")
    manifest, _ = resolve_manifest(load, desc, host, what)
    cdesc = manifest.get("config") or {}
    config = read_verified(source, check_digest(cdesc.get("digest"), f"{what}: config"),
                           "image config")
    check_config_platform(parse_json(config, f"{what}: image config"), host, what)
    layers = _manifest_layers(manifest, what)

    def fetch(index, d):
        return stage_blob(stage, source, source.blob_name(d[0]), d[0],
                          f"layer {index + 1} ({d[0][:19]})", d[1])
    return build_image(store, stage, config, layers, fetch, names, what)


# --- either form ---------------------------------------------------------------------------------

def load(store, path, shown=None):
    """Import what ``path`` holds: a docker-save archive (manifest.json; Docker 25's are OCI
    layouts too) or an OCI layout, a directory or a tar. Returns [ImageInfo]. ``shown``: what
    messages call ``path``."""
    source = Source(path, shown)
    try:
        docker = source.exists("manifest.json")
        oci = source.exists("oci-layout")
    finally:
        source.close()
    if oci and not docker:
        return import_oci(store, path, shown=shown)
    return import_docker_archive(store, path, shown)


# --- docker save archives -----------------------------------------------------------------------

def import_docker_archive(store, path, shown=None):
    """Import the images of a ``docker save`` archive (directory or tar); ``shown``: what
    messages call ``path``."""
    from kago.storage.model import host_platform
    source = Source(path, shown)
    try:
        if not source.exists("manifest.json"):
            raise BadArchive(f"{source.shown}: not a docker archive (no manifest.json)")
        entries = parse_json(source.read("manifest.json"), f"{source.shown}: manifest.json")
        if not isinstance(entries, list) or not entries:
            raise BadArchive(f"{source.shown}: manifest.json lists no images")
        images = []
        for entry in entries:
            with store.staging() as stage:
                images.append(_import_docker_entry(store, stage, source, entry,
                                                   host_platform()))
        return images
    finally:
        source.close()


def _import_docker_entry(store, stage, source, entry, host):
    what = source.shown
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
            or not isinstance(entry.get("Layers"), list):
        raise BadArchive(f"{what}: manifest.json entry {entry!r:.80} lacks Config or Layers")
    config = source.read(entry["Config"], f"config {entry['Config']}")
    import hashlib
    stem = os.path.basename(entry["Config"]).removesuffix(".json")
    actual = hashlib.sha256(config).hexdigest()
    if reference.HEX64.match(stem) and stem != actual:
        raise DigestMismatch(f"{what}: config {entry['Config']}", "sha256:" + stem,
                             "sha256:" + actual)
    check_config_platform(parse_json(config, f"{what}: image config"), host, what)
    names = [reference.normalize(t) for t in entry.get("RepoTags") or []]
    descs = [(None, None, None)] * len(entry["Layers"])

    def fetch(index, _d):
        name = entry["Layers"][index]
        return stage_blob(stage, source, name, None, f"layer {name}", None)
    return build_image(store, stage, config, descs, fetch, names, what)


# --- export ---------------------------------------------------------------------------------------

def manifest_of(store, rec, layers=None):
    """The OCI manifest (bytes) of a stored image: with ``layers`` (descriptors: mediaType,
    digest, size), else with its layers as uncompressed tars (digest = diff_id), as docker
    save writes them and as the store can always give them back."""
    config_path = store._blob_path(rec["config"])
    if layers is None:
        layers = [uncompressed_descriptor(store, chain) for chain in rec["chain"]]
    doc = {"schemaVersion": 2, "mediaType": MEDIA_OCI_MANIFEST,
           "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": rec["config"],
                      "size": os.path.getsize(config_path)},
           "layers": layers}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def uncompressed_descriptor(store, chain):
    tar = store.layer_tar(chain)
    tar.close()
    return {"mediaType": MEDIA_TYPES[None], "digest": tar.diff_id, "size": tar.expected_size}


class _Writer:
    """Writes an export into a directory or a tar, next to its final path, then renames it:
    a failed export leaves nothing at ``path``. ``path`` may also be a binary file object
    (a pipe: stdout), which gets the tar as a stream."""

    def __init__(self, path, as_tar):
        if hasattr(path, "write"):
            self.path = self.tmp = None
            self.as_tar = True
            self.tar = tarfile.open(fileobj=path, mode="w|", format=tarfile.PAX_FORMAT)
            self.written = set()
            return
        self.path = os.path.abspath(path)
        self.tmp = f"{self.path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.as_tar = as_tar
        if os.path.exists(self.path) and not (os.path.isdir(self.path)
                                              and not os.listdir(self.path)):
            raise StoreError(f"{path} exists; export to a new path")
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.PAX_FORMAT) if self.as_tar \
            else None
        if not self.as_tar:
            os.mkdir(self.tmp, 0o755)
        self.written = set()

    def bytes(self, name, data):
        if name in self.written:
            return
        self.written.add(name)
        if self.tar is None:
            os.makedirs(os.path.dirname(os.path.join(self.tmp, name)), exist_ok=True)
            with open(os.path.join(self.tmp, name), "wb") as f:
                f.write(data)
            return
        import io
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        self.tar.addfile(info, io.BytesIO(data))

    def file(self, name, src):
        if name in self.written:
            return
        self.written.add(name)
        if self.tar is None:
            os.makedirs(os.path.dirname(os.path.join(self.tmp, name)), exist_ok=True)
            shutil.copyfile(src, os.path.join(self.tmp, name))
            return
        info = self.tar.gettarinfo(src, name)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o644
        with open(src, "rb") as f:
            self.tar.addfile(info, f)

    def stream(self, name, reader, size):
        """``size`` bytes read from ``reader`` (a Store.layer_tar, checked at the end)."""
        if name in self.written:
            reader.close()
            return
        self.written.add(name)
        if self.tar is None:
            os.makedirs(os.path.dirname(os.path.join(self.tmp, name)), exist_ok=True)
            with open(os.path.join(self.tmp, name), "wb") as f:
                while chunk := reader.read(1 << 20):
                    f.write(chunk)
        else:
            info = tarfile.TarInfo(name)
            info.size, info.mode = size, 0o644
            self.tar.addfile(info, reader)
        reader.check()

    def finish(self):
        if self.tar is not None:
            self.tar.close()
        if self.path is None:
            return
        if os.path.isdir(self.path):
            os.rmdir(self.path)
        os.rename(self.tmp, self.path)

    def abort(self):
        if self.tar is not None and self.path is not None:
            self.tar.close()
        if self.tmp is None:
            return  # a stream: what was written is out; the caller reports the error
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)


def _write_blobs(out, store, rec, manifest):
    import hashlib
    mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    for chain in rec["chain"]:
        tar = store.layer_tar(chain)
        out.stream(f"blobs/sha256/{hex_of(tar.diff_id)}", tar, tar.expected_size)
    out.file(f"blobs/sha256/{hex_of(rec['config'])}", store.blob_path(rec["config"]))
    out.bytes(f"blobs/sha256/{hex_of(mdigest)}", manifest)
    return mdigest


def _diff_ids(store, rec):
    return [store._layer_of(chain).diff_id for chain in rec["chain"]]


def _index(rec, manifest, mdigest, name):
    from kago.storage.model import host_platform
    os_name, arch = host_platform()
    ann = {}
    if name:
        ann = {CONTAINERD_NAME: name, REF_NAME: reference.parse(name).tag or "latest"}
    desc = {"mediaType": MEDIA_OCI_MANIFEST, "digest": mdigest, "size": len(manifest),
            "platform": {"os": os_name, "architecture": arch}}
    if ann:
        desc["annotations"] = ann
    return {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": [desc]}


def export(store, ref, path, docker=False):
    """Write image ``ref`` as an OCI layout (a directory, or a tar if ``path`` ends in
    .tar or is a binary file object) or, with ``docker``, as a docker-save tar that is an
    OCI layout too."""
    rec = store._find(ref)
    name = ref if ref in rec["names"] else (rec["names"][0] if rec["names"] else None)
    try:
        name = reference.normalize(ref) if reference.normalize(ref) in rec["names"] else name
    except StoreError:
        pass
    out = _Writer(path, docker or hasattr(path, "write") or path.endswith(".tar"))
    try:
        manifest = manifest_of(store, rec)
        mdigest = _write_blobs(out, store, rec, manifest)
        out.bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        out.bytes("index.json", json.dumps(_index(rec, manifest, mdigest, name)).encode())
        if docker:
            entry = {"Config": f"blobs/sha256/{hex_of(rec['config'])}",
                     "RepoTags": [name] if name else [],
                     "Layers": [f"blobs/sha256/{hex_of(d)}" for d in _diff_ids(store, rec)]}
            out.bytes("manifest.json", json.dumps([entry]).encode())
        out.finish()
    except BaseException:
        out.abort()
        raise
    return path
