"""One copy of each layer: the store keeps a layer's extracted files and its tar-split, not its
blob, and plays the exact tar back (byte for byte, so the same diff_id) for save and push. A
tar that does not play back keeps its blob instead. On overlay and vfs (btrfs: see
test_storage_btrfs)."""

import io
import os
import subprocess
import tarfile

import pytest

from kago.storage import testkit


@pytest.fixture
def stores(tmp_path):
    yield from testkit.checked_stores(tmp_path)


def blobs(store):
    return sorted(os.listdir(os.path.join(store.root, "blobs/sha256")))


def played_back(store, ref):
    out = []
    for chain in store._find(ref)["chain"]:
        tar = store.layer_tar(chain)
        data = tar.read()
        tar.check()
        assert len(data) == tar.expected_size
        out.append(data)
    return out


def every_kind():
    big = os.urandom(3 << 20)
    return (testkit.TarBuilder().dir("etc").file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
            .file("etc/empty").file("usr/lib/big", big, mode=0o755)
            .file("usr/bin/su", "su", mode=0o4755)
            .file("usr/bin/ping", "p", xattrs={"security.capability": b"\x01\x00\x00\x02" +
                                                bytes(16)})
            .hardlink("usr/bin/su2", "usr/bin/su").symlink("usr/link", "../etc/passwd")
            .file("a/" + "long-name/" * 20 + "f", "deep").fifo("run/fifo")
            .device("dev/null", 1, 3).whiteout("etc/gone").opaque("var")
            .symlink("abs", "/usr").file("abs/through-link", "inside").bytes())


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_a_layer_is_kept_once_and_its_tar_played_back_exactly(stores, tmp_path, driver):
    with stores.new(driver=driver) as store:
        base = testkit.TarBuilder().dir("etc").file("etc/gone", "x").dir("var") \
            .file("var/old", "o").bytes()
        top = every_kind()
        testkit.oci_layout(str(tmp_path / "l"), [base, top], name="img:1")
        [img] = store.import_oci(str(tmp_path / "l"))
        assert blobs(store) == [img.id]  # the config only: no layer blob beside the files
        assert played_back(store, "img:1") == [base, top]
        splits = [e for e in os.listdir(os.path.join(store.root, "layers"))
                  if e.endswith(".tar-split.gz")]
        assert len(splits) == 2
        assert sum(os.path.getsize(os.path.join(store.root, "layers", s)) for s in splits) \
            < 8 << 10  # headers and padding, compressed: not the 3 MB of content
        r = store.create_rootfs("c1", "img:1")  # the files are there to run, too
        with open(os.path.join(r.path, "usr/through-link")) as f:  # abs -> /usr, inside
            assert f.read() == "inside"
        store.remove_rootfs("c1")
        out = tmp_path / "out.tar"
        store.export_docker_archive("img:1", str(out))
        [back] = stores.new("back", driver=driver).import_docker_archive(str(out))
        assert back.id == img.id and back.layers == img.layers


def test_a_gnu_tar_with_trailing_blocks_plays_back(stores, tmp_path, rootfs_cache):
    tar = tmp_path / "bb.tar"
    subprocess.run(["tar", "--numeric-owner", "-C", rootfs_cache, "-cf", str(tar), "."],
                   check=True)
    store = stores.new()
    img = store.import_archive(str(tar), name="bb")
    assert played_back(store, "bb") == [tar.read_bytes()]
    assert blobs(store) == [img.id]


def test_a_tar_that_writes_a_path_twice_keeps_its_blob(stores, tmp_path):
    data = testkit.TarBuilder().dir("etc").file("etc/motd", "first").file("etc/motd", "second") \
        .bytes()
    store = stores.new()
    img = store.import_archive(testkit.write_compressed(tmp_path / "twice.tar.gz", data,
                                                        "gzip"), name="twice")
    assert len(blobs(store)) == 2  # the config, and the blob: "first" is in no file
    assert played_back(store, "twice") == [data]
    with tarfile.open(fileobj=io.BytesIO(played_back(store, "twice")[0])) as tar:
        assert [m.name for m in tar.getmembers()] == ["etc", "etc/motd", "etc/motd"]
    store.remove_image(img.id)
    assert blobs(store) == []


def test_commit_layers_are_kept_once(stores, rootfs_cache):
    with stores.new() as store:
        base = store.import_archive(rootfs_cache, name="bb")
        r = store.create_rootfs("c1", "bb")
        with open(os.path.join(r.path, "etc/new"), "w") as f:
            f.write("new")
        img = store.commit("c1", "bb:2")
        assert blobs(store) == sorted([base.id, img.id])
        layer = played_back(store, "bb:2")[-1]
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            assert tar.extractfile("etc/new").read() == b"new"
        store.remove_rootfs("c1")


@pytest.mark.parametrize("form", ["gnu", "posix"])
def test_a_sparse_file_plays_back(stores, tmp_path, form):
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.seek(4 << 20)
        f.write(b"end")
    (src / "after").write_text("after")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", f"--format={form}", "--numeric-owner", "-C", str(src),
                    "-cf", str(tar), "sparse", "after"], check=True)
    store = stores.new()
    img = store.import_archive(str(tar), name="sparse")
    assert played_back(store, "sparse") == [tar.read_bytes()]
    assert blobs(store) == [img.id]
    with store:
        r = store.create_rootfs("c1", "sparse")
        with open(os.path.join(r.path, "sparse"), "rb") as f:
            f.seek(4 << 20)
            assert f.read() == b"end"
        assert open(os.path.join(r.path, "after")).read() == "after"
        store.remove_rootfs("c1")
