"""The btrfs driver on a real btrfs (a loop device made here): a layer is a read-only
subvolume, a container a writable snapshot; ID shifting by an idmapped bind mount."""

import os
import shutil
import subprocess

import pytest

from kago.storage import IdMap, StoreError, syscalls, testkit

pytestmark = pytest.mark.skipif(not shutil.which("mkfs.btrfs"), reason="btrfs-progs missing")

SHIFTED = IdMap([(0, 100000, 65536)])
BASE = testkit.TarBuilder().dir("etc").file("etc/passwd", "root:x:0:0::/:/bin/sh\n") \
    .file("home/u/f", "u", uid=1000, gid=1000).bytes()
TOP = testkit.TarBuilder().dir("etc").file("etc/motd", "hi").whiteout("etc/passwd").bytes()


@pytest.fixture(scope="module")
def btrfs(tmp_path_factory):
    with testkit.loop_btrfs(str(tmp_path_factory.mktemp("btrfs") / "mnt")) as mnt:
        yield mnt


@pytest.fixture
def store(btrfs, tmp_path):
    for made in testkit.checked_stores(btrfs):
        yield made.new(os.path.basename(tmp_path))


def subvolumes(path):
    out = subprocess.run(["btrfs", "subvolume", "list", "-o", path], capture_output=True,
                         text=True, check=True).stdout
    return [line.split(" path ")[-1] for line in out.splitlines()]


def test_btrfs_is_chosen_and_layers_are_read_only_subvolumes(store, tmp_path):
    assert store.driver == "btrfs"
    testkit.oci_layout(str(tmp_path / "l"), [BASE, TOP], name="img:1")
    [img] = store.import_oci(str(tmp_path / "l"))
    layers = [os.path.join(store.root, "layers", e)
              for e in os.listdir(os.path.join(store.root, "layers"))
              if not e.endswith((".json", ".tar-split.gz")) and e != "empty"]
    assert len(layers) == 2 and all(syscalls.is_btrfs_subvolume(p) for p in layers)
    for p in layers:
        with pytest.raises(OSError):
            open(os.path.join(p, "new"), "w").close()
    r = store.create_rootfs("c1", img.id)
    assert sorted(os.listdir(os.path.join(r.path, "etc"))) == ["motd"]
    assert syscalls.is_btrfs_subvolume(os.path.join(store.root, "containers/c1/fs"))
    store.remove_rootfs("c1")
    store.remove_image(img.id)
    assert subvolumes(store.root) == []


@pytest.mark.parametrize("shift", ["idmapped", "chown"])
def test_btrfs_containers_are_shifted_and_committed(store, tmp_path, shift):
    testkit.oci_layout(str(tmp_path / "l"), [BASE], name="img:1")
    store.import_oci(str(tmp_path / "l"))
    with store:
        r = store.create_rootfs("c1", "img:1", idmap=SHIFTED, shift=shift)
        assert r.shift == shift
        assert os.stat(os.path.join(r.path, "home/u/f")).st_uid == 101000
        testkit.as_container_root(r.path, SHIFTED, lambda: (
            open("etc/new", "w").write("x"), os.chown("etc/new", 7, 7),
            os.unlink("etc/passwd")))
        img = store.commit("c1", "snap:1")
        r2 = store.create_rootfs("c2", "snap:1")
        assert os.stat(os.path.join(r2.path, "etc/new")).st_uid == 7
        assert not os.path.exists(os.path.join(r2.path, "etc/passwd"))
        assert os.stat(os.path.join(r2.path, "home/u/f")).st_uid == 1000
        for cid in ("c1", "c2"):
            store.remove_rootfs(cid)
        store.remove_image(img.id)
        store.remove_image("img:1")
        assert subvolumes(store.root) == []


def test_host_root_needs_overlay(store):
    with pytest.raises(StoreError, match="needs the overlay driver"):
        store.create_rootfs("h", "@host")
