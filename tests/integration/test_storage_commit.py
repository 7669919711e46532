"""commit: a container's changes become a layer and an image, for each driver and ID shift,
also while a process runs in the container."""

import io
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import time

import pytest

from kago.storage import IdMap, NameTaken, StoreError, testkit

SHIFTED = IdMap([(0, 100000, 65536)])


@pytest.fixture
def stores(tmp_path):
    yield from testkit.checked_stores(tmp_path)


@pytest.fixture(scope="module")
def base_tar():
    """A small image: dirs with modes, a big file, a setuid binary, a tree to rename."""
    return (testkit.TarBuilder()
            .dir("etc").file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
            .file("etc/hosts", "127.0.0.1 localhost\n")
            .dir("tmp", mode=0o1777).dir("home").dir("home/old").file("home/old/f", "old")
            .dir("usr").dir("usr/lib").file("usr/lib/big", os.urandom(256 << 10))
            .file("usr/lib/small", "s").dir("usr/bin").file("usr/bin/su", "su", mode=0o4755)
            .file("usr/bin/tool", "t", uid=1000, gid=1000)
            .bytes())


def change(root, idmap):
    """Make one change of each kind, as the container's root (in its user namespace)."""
    def changes():
        with open("etc/new", "w") as f:
            f.write("new file")
        os.chown("etc/new", 33, 33)
        os.unlink("etc/passwd")
        with open("etc/hosts", "a") as f:
            f.write("10.0.0.1 db\n")
        shutil.move("home/old", "home/moved")  # as mv: a copy where overlay says EXDEV
        os.chmod("tmp", 0o700)
        os.symlink("../etc/new", "usr/link")
        os.mkdir("var")
    testkit.as_container_root(root, idmap, changes)


def check(root):
    """What a container made from the committed image sees (no idmap: container IDs)."""
    st = os.stat(os.path.join(root, "etc/new"))
    assert open(os.path.join(root, "etc/new")).read() == "new file"
    assert (st.st_uid, st.st_gid) == (33, 33)
    assert not os.path.exists(os.path.join(root, "etc/passwd"))
    assert open(os.path.join(root, "etc/hosts")).read().endswith("10.0.0.1 db\n")
    assert sorted(os.listdir(os.path.join(root, "home"))) == ["moved"]
    assert open(os.path.join(root, "home/moved/f")).read() == "old"
    assert stat.S_IMODE(os.stat(os.path.join(root, "tmp")).st_mode) == 0o700
    assert os.readlink(os.path.join(root, "usr/link")) == "../etc/new"
    assert stat.S_IMODE(os.stat(os.path.join(root, "usr/bin/su")).st_mode) == 0o4755
    assert os.stat(os.path.join(root, "usr/bin/tool")).st_uid == 1000
    assert os.path.getsize(os.path.join(root, "usr/lib/big")) == 256 << 10


def layer_entries(store, img):
    layer = store.layer_tar(store._find(img.id)["chain"][-1])  # played back, checked
    data = layer.read()
    layer.check()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


@pytest.mark.parametrize("driver, shift", [("overlay", None), ("overlay", "idmapped"),
                                           ("overlay", "chown"), ("vfs", None),
                                           ("vfs", "idmapped"), ("vfs", "chown")])
def test_commit_keeps_every_kind_of_change(stores, tmp_path, base_tar, driver, shift):
    idmap = SHIFTED if shift else None
    path = testkit.write_compressed(tmp_path / "base.tar", base_tar)
    with stores.new(driver=driver) as store:
        base = store.import_archive(path, name="base", config={"Env": ["A=1"],
                                                               "Cmd": ["/bin/sh"]})
        r = store.create_rootfs("c1", "base", idmap=idmap, shift=shift)
        change(r.path, idmap)
        img = store.commit("c1", "snap:1", message="after changes", author="kago tests",
                           config={"Cmd": ["/bin/true"]})
        assert img.names == ["snap:1"]
        assert img.layers[:-1] == base.layers and len(img.layers) == 2
        assert img.author == "kago tests"
        assert img.history[-1]["comment"] == "after changes"
        assert img.config == {"Env": ["A=1"], "Cmd": ["/bin/true"]}
        entries = layer_entries(store, img)
        assert "usr/lib/big" not in entries, "unchanged files are not in the new layer"
        assert "usr/bin/su" not in entries
        assert entries["etc/new"].uid == 33, "owners as the container sees them"
        assert "etc/.wh.passwd" in entries
        r2 = store.create_rootfs("c2", "snap:1")
        check(r2.path)
        store.remove_rootfs("c2")
        store.remove_rootfs("c1")


def test_commit_of_an_unchanged_container_is_an_empty_layer(stores, tmp_path, base_tar):
    with stores.new() as store:
        store.import_archive(testkit.write_compressed(tmp_path / "b.tar", base_tar), name="b")
        store.create_rootfs("c1", "b", idmap=SHIFTED, shift="chown")
        img = store.commit("c1", "same")
        assert set(layer_entries(store, img)) <= {"etc", "home", "home/old", "tmp", "usr",
                                                   "usr/bin", "usr/lib"}, \
            "a chown-only copy-up is no change"
        store.remove_rootfs("c1")


def test_commit_while_a_process_runs_in_the_container(stores, rootfs_cache):
    with stores.new() as store:
        store.import_archive(rootfs_cache, name="bb")
        r = store.create_rootfs("live", "bb")
        proc = subprocess.Popen(["chroot", r.path, "/bin/sh", "-c",
                                 "echo running > /state; exec sleep 60"])
        try:
            for _ in range(200):
                if os.path.exists(os.path.join(r.path, "state")):
                    break
                time.sleep(0.01)
            img = store.commit("live", "live:snap")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        r2 = store.create_rootfs("check", img.id)
        assert open(os.path.join(r2.path, "state")).read() == "running\n"
        store.remove_rootfs("check")
        store.remove_rootfs("live")


def test_commit_bad_inputs_leave_nothing(stores, tmp_path, base_tar):
    with stores.new() as store:
        store.import_archive(testkit.write_compressed(tmp_path / "b.tar", base_tar), name="b")
        store.create_rootfs("c1", "b")
        with pytest.raises(NameTaken):
            store.commit("c1", "b")
        with pytest.raises(StoreError, match="nothere has no root filesystem"):
            store.commit("nothere", "x")
        with pytest.raises(StoreError, match="invalid image reference"):
            store.commit("c1", "UPPER")
        assert [i.names for i in store.images()] == [["b:latest"]]
        store.remove_rootfs("c1")


def test_commit_after_the_image_was_force_removed(stores, tmp_path, base_tar):
    with stores.new() as store:
        store.import_archive(testkit.write_compressed(tmp_path / "b.tar", base_tar), name="b")
        r = store.create_rootfs("c1", "b")
        with open(os.path.join(r.path, "x"), "w") as f:
            f.write("x")
        store.remove_image("b", force=True)
        img = store.commit("c1", "rescued")
        assert len(img.layers) == 2
        store.export_oci("rescued", str(tmp_path / "out"))
        store.remove_rootfs("c1")
