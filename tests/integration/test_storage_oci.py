"""OCI image layouts and docker-save archives: round trips, platforms, digests, missing and
malformed parts. A refused import leaves no image, layer or blob behind."""

import json
import os
import shutil
import tarfile

import pytest

from kago.storage import (
    BadArchive,
    DigestMismatch,
    PlatformNotFound,
    StoreError,
    testkit,
)
from kago.storage.store import host_platform


@pytest.fixture
def stores(tmp_path):
    yield from testkit.checked_stores(tmp_path)


LAYERS = [testkit.TarBuilder().dir("etc").file("etc/one", "1").bytes(),
          testkit.TarBuilder().dir("etc").file("etc/two", "2").whiteout("etc/one").bytes()]


def empty(store):
    return (store.images() == [] and os.listdir(os.path.join(store.root, "blobs/sha256")) == []
            and [e for e in os.listdir(os.path.join(store.root, "layers")) if e != "empty"] == [])


def layer_blob(layout, index):
    """The path of layer ``index``'s blob in a one-image layout."""
    top = json.load(open(os.path.join(layout, "index.json")))
    manifest = json.load(open(os.path.join(layout, "blobs/sha256",
                                           top["manifests"][0]["digest"][7:])))
    return os.path.join(layout, "blobs/sha256", manifest["layers"][index]["digest"][7:])


def tar_dir(src, dest):
    with tarfile.open(dest, "w") as tar:
        for name in sorted(os.listdir(src)):
            tar.add(os.path.join(src, name), arcname=name)
    return dest


def test_import_a_layout_directory_and_tar(stores, tmp_path):
    layout = str(tmp_path / "layout")
    testkit.oci_layout(layout, LAYERS, name="example.com/app:1.0")
    store = stores.new()
    [img] = store.import_oci(layout)
    assert img.names == ["example.com/app:1.0"]
    assert img.layers == [testkit.sha256(t) for t in LAYERS]
    assert img.config == {"Cmd": ["/bin/sh"]}
    [again] = store.import_oci(tar_dir(layout, str(tmp_path / "layout.tar")), name="other")
    assert again.id == img.id and again.names == ["example.com/app:1.0", "other:latest"]
    with store:
        r = store.create_rootfs("c1", "other")
        assert os.listdir(os.path.join(r.path, "etc")) == ["two"]
        store.remove_rootfs("c1")


def test_a_bare_tag_annotation_needs_a_name(stores, tmp_path):
    layout = str(tmp_path / "layout")
    testkit.oci_layout(layout, LAYERS, name="1.0")
    store = stores.new()
    [img] = store.import_oci(layout)
    assert img.names == []
    [named] = store.import_oci(layout, name="mine:1.0")
    assert named.names == ["mine:1.0"]


@pytest.mark.parametrize("form", ["oci-dir", "oci-tar", "docker"])
def test_export_then_import_gives_the_same_image(stores, tmp_path, form):
    src = stores.new("src")
    testkit.oci_layout(str(tmp_path / "in"), LAYERS, name="example.com/app:1.0")
    [img] = src.import_oci(str(tmp_path / "in"))
    out = str(tmp_path / ("out.tar" if form != "oci-dir" else "out"))
    if form == "docker":
        src.export_docker_archive("example.com/app:1.0", out)
        with tarfile.open(out) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["example.com/app:1.0"]
        [back] = stores.new("dst").import_docker_archive(out)
    else:
        src.export_oci(img.id[:12], out)
        [back] = stores.new("dst").import_oci(out)
    assert (back.id, back.names, back.layers) == (img.id, img.names, img.layers)


def test_export_refuses_an_existing_path_and_leaves_nothing_on_failure(stores, tmp_path):
    store = stores.new()
    testkit.oci_layout(str(tmp_path / "in"), LAYERS, name="example.com/app:1.0")
    [img] = store.import_oci(str(tmp_path / "in"))
    (tmp_path / "exists.tar").write_text("x")
    with pytest.raises(StoreError, match="exists; export to a new path"):
        store.export_oci(img.id, str(tmp_path / "exists.tar"))
    # a layer's tar is played back from its files: a changed file is caught, not exported
    layer = os.path.join(store.root, "layers", store._find(img.id)["chain"][0][7:])
    with open(os.path.join(layer, "etc/one"), "w") as f:
        f.write("X")
    with pytest.raises(DigestMismatch, match="played back"):
        store.export_docker_archive(img.id, str(tmp_path / "broken.tar"))
    os.unlink(os.path.join(layer, "etc/one"))
    with pytest.raises(StoreError, match="etc/one: .*no such file"):
        store.export_oci(img.id, str(tmp_path / "broken"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith("broken")]


def test_index_picks_the_host_platform(stores, tmp_path):
    layout = str(tmp_path / "multi")
    digests = testkit.oci_layout(layout, LAYERS, platforms=[("linux", "arm64"), host_platform(),
                                                            ("linux", "s390x")])
    store = stores.new()
    [img] = store.import_oci(layout, name="multi")
    assert img.architecture == host_platform()[1]
    assert digests[host_platform()]


def test_an_image_only_for_another_platform_is_refused(stores, tmp_path):
    layout = str(tmp_path / "arm")
    testkit.oci_layout(layout, LAYERS, platforms=[("linux", "arm64"), ("linux", "riscv64")])
    store = stores.new()
    with pytest.raises(PlatformNotFound, match="has no image for platform linux/amd64 "
                                               r"\(it has: linux/arm64, linux/riscv64\)"):
        store.import_oci(layout)
    assert empty(store)


def test_a_tampered_layer_blob_is_a_digest_mismatch(stores, tmp_path):
    layout = str(tmp_path / "bad")
    testkit.oci_layout(layout, LAYERS)
    blob = layer_blob(layout, 1)
    data = bytearray(open(blob, "rb").read())
    data[-1] ^= 0xFF
    open(blob, "wb").write(bytes(data))
    store = stores.new()
    with pytest.raises(DigestMismatch, match="expected sha256:"):
        store.import_oci(layout, name="x")
    assert empty(store)


def test_a_wrong_diff_id_is_a_digest_mismatch(stores, tmp_path):
    layout = str(tmp_path / "bad")
    testkit.oci_layout(layout, LAYERS, diff_ids=[testkit.sha256(LAYERS[0]),
                                                 testkit.sha256(b"not this layer")])
    store = stores.new()
    with pytest.raises(DigestMismatch, match=r"\(uncompressed\)"):
        store.import_oci(layout, name="x")
    assert empty(store)


def test_a_missing_base_layer_is_named(stores, tmp_path):
    layout = str(tmp_path / "missing")
    testkit.oci_layout(layout, LAYERS)
    os.unlink(layer_blob(layout, 0))
    store = stores.new()
    with pytest.raises(BadArchive, match="layer 1 .* is missing"):
        store.import_oci(layout, name="x")
    assert empty(store)


@pytest.mark.parametrize("damage, message", [
    ("no-oci-layout", "not an OCI image layout"),
    ("index-garbage", "index.json is not valid JSON"),
    ("empty-index", "lists no images"),
    ("gzip-tar", "decompress it first"),
    ("not-a-tar", "not a tar archive"),
])
def test_malformed_layouts_are_one_clear_error(stores, tmp_path, damage, message):
    layout = str(tmp_path / "l")
    testkit.oci_layout(layout, LAYERS)
    path = layout
    if damage == "no-oci-layout":
        os.unlink(os.path.join(layout, "oci-layout"))
    elif damage == "index-garbage":
        open(os.path.join(layout, "index.json"), "w").write("{nope")
    elif damage == "empty-index":
        open(os.path.join(layout, "index.json"), "w").write('{"manifests": []}')
    elif damage == "gzip-tar":
        path = testkit.write_compressed(tmp_path / "l.tar.gz",
                                        open(tar_dir(layout, str(tmp_path / "l.tar")),
                                             "rb").read(), "gzip")
    else:
        path = str(tmp_path / "junk.tar")
        open(path, "wb").write(b"this is not a tar" * 100)
    store = stores.new()
    with pytest.raises(StoreError, match=message):
        store.import_oci(path)
    assert empty(store)


def test_docker_archive_with_a_wrong_config_name(stores, tmp_path):
    src = stores.new("src")
    testkit.oci_layout(str(tmp_path / "in"), LAYERS, name="example.com/app:1.0")
    src.import_oci(str(tmp_path / "in"))
    out = str(tmp_path / "d")
    os.mkdir(out)
    src.export_docker_archive("example.com/app:1.0", str(tmp_path / "d.tar"))
    with tarfile.open(tmp_path / "d.tar") as tar:
        tar.extractall(out)
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    cfg = manifest[0]["Config"]
    shutil.copy(os.path.join(out, cfg), os.path.join(out, "0" * 64 + ".json"))
    manifest[0]["Config"] = "0" * 64 + ".json"
    json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"))
    dst = stores.new("dst")
    with pytest.raises(DigestMismatch):
        dst.import_docker_archive(out)
    assert empty(dst)
    with pytest.raises(BadArchive, match="no manifest.json"):
        dst.import_docker_archive(str(tmp_path / "in"))
