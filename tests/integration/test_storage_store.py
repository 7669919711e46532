"""The image store on the real kernel: imports, names, containers' root filesystems (overlay
with and without ID shifting), garbage collection, locking, a full disk, a filesystem that
overlayfs refuses. Every test checks that it left no mount and no staging behind."""

import io
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from kago.storage import (
    HOST_ROOT,
    IdMap,
    ImageInUse,
    ImageNotFound,
    NameTaken,
    RootfsExists,
    RootfsNotFound,
    StoreError,
    syscalls,
    testkit,
)

SHIFTED = IdMap([(0, 100000, 65536)])


@pytest.fixture
def stores(tmp_path):
    yield from testkit.checked_stores(tmp_path)


@pytest.fixture(scope="module")
def busybox_tar(rootfs_cache, tmp_path_factory):
    """The busybox rootfs as a plain tar (bytes), owned by root, plus a file owned by 1000."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(rootfs_cache, arcname=".", filter=_root_owned)
        info = tarfile.TarInfo("home/user/mine")
        info.uid = info.gid = 1000
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    return buf.getvalue()


def _root_owned(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


@pytest.fixture
def tarball(busybox_tar, tmp_path):
    def make(compression="gzip"):
        return testkit.write_compressed(tmp_path / f"bb.{compression}", busybox_tar, compression)
    return make


def names(store):
    return sorted(n for i in store.images() for n in i.names)


def layer_dirs(store):
    return sorted(e for e in os.listdir(os.path.join(store.root, "layers"))
                  if not e.endswith((".json", ".tar-split.gz")) and e != "empty")


# --- imports ----------------------------------------------------------------------------------

@pytest.mark.parametrize("compression", [None, "gzip", "xz", "zstd"])
def test_import_each_compression_gives_the_same_layer(stores, tarball, busybox_tar, compression):
    store = stores.new()
    img = store.import_archive(tarball(compression), name="bb")
    assert img.names == ["bb:latest"]
    assert img.layers == [testkit.sha256(busybox_tar)]
    assert img.config["Env"][0].startswith("PATH=")
    assert img.size > 1_000_000
    assert img.created.endswith("Z") and img.history[0]["created_by"].startswith("kago import")


def test_same_content_is_one_image_with_one_layer(stores, tarball):
    store = stores.new()
    a = store.import_archive(tarball("gzip"), name="a")
    b = store.import_archive(tarball("zstd"), name="b")
    assert a.layers == b.layers and a.id == b.id  # the config is the content's, not the clock's
    assert store.image("a").names == ["a:latest", "b:latest"]
    assert len(store.images()) == 1 and len(layer_dirs(store)) == 1
    c = store.import_archive(tarball("gzip"), name="c", config={"Cmd": ["sh"]})
    assert c.id != a.id and c.layers == a.layers and len(layer_dirs(store)) == 1


def test_import_a_directory(stores, rootfs_cache):
    store = stores.new()
    img = store.import_archive(rootfs_cache, name="fromdir", config={"Cmd": ["/bin/sh"]})
    assert img.config["Cmd"] == ["/bin/sh"]
    with store:
        r = store.create_rootfs("c1", "fromdir")
        assert os.path.samefile(os.path.join(r.path, "bin/sh"), os.path.join(r.path, "bin/ls")) \
            or os.readlink(os.path.join(r.path, "bin/sh"))
        store.remove_rootfs("c1")


def test_import_of_a_missing_file_or_bad_name(stores, tarball):
    store = stores.new()
    with pytest.raises(StoreError, match="no such file"):
        store.import_archive("/nonexistent/kagotest-st.tar")
    with pytest.raises(StoreError, match="invalid image reference 'Bad Name'"):
        store.import_archive(tarball(), name="Bad Name")
    assert store.images() == []


def test_unsafe_archive_leaves_nothing(stores, tmp_path):
    store = stores.new()
    bad = testkit.TarBuilder().file("ok", "x").hardlink("h", "/etc/shadow").write(
        tmp_path / "bad.tar")
    with pytest.raises(StoreError, match="not in the layer"):
        store.import_archive(bad, name="bad")
    assert store.images() == [] and layer_dirs(store) == []
    assert os.listdir(os.path.join(store.root, "blobs/sha256")) == []


# --- names --------------------------------------------------------------------------------------

def test_lookup_by_name_id_and_prefix(stores, tarball):
    store = stores.new()
    img = store.import_archive(tarball(), name="bb:1")
    for ref in ("bb:1", img.id, img.id[:8], "sha256:" + img.id):
        assert store.image(ref).id == img.id
    for ref in ("bb", "bb:2", "ffff", "nonexistent:1"):
        with pytest.raises(ImageNotFound, match=ref):
            store.image(ref)


def test_name_taken_is_refused_and_leaves_nothing(stores, tarball, rootfs_cache):
    store = stores.new()
    first = store.import_archive(tarball(), name="bb")
    with pytest.raises(NameTaken, match=f"bb:latest is taken by image {first.id[:12]}"):
        store.import_archive(rootfs_cache, name="bb")
    assert [i.id for i in store.images()] == [first.id]
    other = store.import_archive(tarball("xz"), name="other", config={"Cmd": ["sh"]})
    with pytest.raises(NameTaken):
        store.tag(other.id, "bb")
    store.tag(other.id, "other:2")
    assert names(store) == ["bb:latest", "other:2", "other:latest"]


def test_remove_untags_then_removes(stores, tarball):
    store = stores.new()
    img = store.import_archive(tarball(), name="bb")
    store.tag("bb", "bb:two")
    assert store.remove_image("bb:two") == ["name bb:two"]
    removed = store.remove_image("bb")
    assert removed[0] == f"image {img.id}"
    assert any(r.startswith("layer ") for r in removed)
    assert store.images() == [] and layer_dirs(store) == []
    assert os.listdir(os.path.join(store.root, "blobs/sha256")) == []


def test_image_in_use_is_kept_unless_forced(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        store.create_rootfs("c1", "bb")
        with pytest.raises(ImageInUse, match="used by container.*c1"):
            store.remove_image("bb")
        store.remove_image("bb", force=True)
        assert store.images() == []
        assert len(layer_dirs(store)) == 1, "the container still uses the layer"
        store.unmount_rootfs("c1")
        assert os.listdir(store.mount_rootfs("c1")), "it can still be mounted"
        store.remove_rootfs("c1")
        assert any(r.startswith("layer ") for r in store.gc())
        assert layer_dirs(store) == []


# --- containers' root filesystems ---------------------------------------------------------------

def test_rootfs_without_idmap(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        r = store.create_rootfs("c1", "bb")
        assert (r.driver, r.shift, r.mounted) == ("overlay", "none", True)
        with open(os.path.join(r.path, "etc/hostname-kago"), "w") as f:
            f.write("x")
        layer = os.path.join(store.root, "layers", layer_dirs(store)[0])
        assert not os.path.exists(os.path.join(layer, "etc/hostname-kago")), "layers stay read-only"
        assert store.rootfs("c1").image_id == store.image("bb").id
        store.remove_rootfs("c1")
        assert store.rootfs("c1") is None


@pytest.mark.parametrize("shift", ["idmapped", "chown", None])
def test_rootfs_with_an_idmap_is_owned_by_the_containers_root(stores, tarball, shift):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        r = store.create_rootfs("c1", "bb", idmap=SHIFTED, shift=shift)
        assert r.shift == (shift or "idmapped")
        assert r.idmap == SHIFTED
        for rel, owner in (("", 100000), ("bin/busybox", 100000), ("home/user/mine", 101000)):
            st = os.lstat(os.path.join(r.path, rel))
            assert (st.st_uid, st.st_gid) == (owner, owner), rel
        layer = os.path.join(store.root, "layers", layer_dirs(store)[0])
        assert os.lstat(os.path.join(layer, "bin/busybox")).st_uid == 0, "the image is untouched"
        st = os.stat(os.path.join(r.path, "tmp"))
        assert stat.S_IMODE(st.st_mode) == 0o1777
        # the container's root (host uid 100000) can write where its root owns
        out = subprocess.run(["sh", "-c", "echo hi > etc/new && cat etc/new"], cwd=r.path,
                             user=100000, group=100000, extra_groups=[], check=False,
                             capture_output=True, text=True, timeout=30)
        assert out.stdout == "hi\n", out.stderr
        store.remove_rootfs("c1")


def test_idmapped_lowers_attached_where_the_kernel_takes_no_detached_lower(
        stores, tarball, monkeypatch):
    """Older kernels (6.1) refuse a detached mount as an overlay lower (EINVAL): the lowers
    are attached under the container's directory for the mount(2), then detached again."""
    from kago.storage import drivers
    monkeypatch.setattr(drivers.Overlay, "attach_lowers", True)
    with stores.new() as store:
        if store.driver != "overlay":
            pytest.skip(f"the {store.driver} driver stacks no lower layers")
        store.import_archive(tarball(), name="bb")
        r = store.create_rootfs("c1", "bb", idmap=SHIFTED, shift="idmapped")
        assert r.shift == "idmapped"
        for rel, owner in (("bin/busybox", 100000), ("home/user/mine", 101000)):
            st = os.lstat(os.path.join(r.path, rel))
            assert (st.st_uid, st.st_gid) == (owner, owner), rel
        cdir = os.path.dirname(r.path)
        assert not os.path.exists(os.path.join(cdir, "lowers"))
        assert not [m for m in syscalls.mounts() if m[0].startswith(cdir + "/lowers")]
        store.unmount_rootfs("c1")
        store.mount_rootfs("c1")  # a remount (after a reboot) takes the same way
        assert os.lstat(os.path.join(r.path, "home/user/mine")).st_uid == 101000
        assert not os.path.exists(os.path.join(cdir, "lowers"))
        store.remove_rootfs("c1")


def test_a_refused_attached_lower_leaves_no_mount_point(stores, tarball, monkeypatch):
    from kago.errors import KernelError
    from kago.storage import drivers, idshift
    monkeypatch.setattr(drivers.Overlay, "attach_lowers", True)

    def refused(fd, target):
        raise KernelError("move_mount", 22, target)
    monkeypatch.setattr(idshift, "attach", refused)
    with stores.new() as store:
        if store.driver != "overlay":
            pytest.skip(f"the {store.driver} driver stacks no lower layers")
        store.import_archive(tarball(), name="bb")
        with pytest.raises(KernelError):
            store.create_rootfs("c1", "bb", idmap=SHIFTED, shift="idmapped")
        assert store.rootfs("c1") is None


def test_unmapped_owner_is_refused_for_chown(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        with pytest.raises(StoreError, match="owner 1000:1000 is not mapped"):
            store.create_rootfs("c1", "bb", idmap=IdMap([(0, 100000, 1000)]), shift="chown")
        assert store.rootfs("c1") is None
        assert os.listdir(os.path.join(store.root, "containers")) == []


def test_mount_unmount_remove_are_idempotent_and_keep_writes(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        r = store.create_rootfs("c1", "bb", idmap=SHIFTED)
        with open(os.path.join(r.path, "kept"), "w") as f:
            f.write("still here")
        store.unmount_rootfs("c1")
        store.unmount_rootfs("c1")
        assert not store.rootfs("c1").mounted and not os.listdir(r.path)
        assert store.mount_rootfs("c1") == r.path
        assert store.mount_rootfs("c1") == r.path
        assert len(testkit.mounts_under(r.path)) == 1
        with open(os.path.join(r.path, "kept")) as f:
            assert f.read() == "still here"
        assert os.stat(os.path.join(r.path, "bin/busybox")).st_uid == 100000
        store.remove_rootfs("c1")
        store.remove_rootfs("c1")
        store.unmount_rootfs("c1")


def test_a_removal_leaves_no_trash_and_gc_finishes_a_killed_one(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        store.create_rootfs("c1", "bb", idmap=SHIFTED)
        kept = store.create_rootfs("c2", "bb", idmap=SHIFTED)
        store.remove_rootfs("c1")
        assert os.listdir(os.path.join(store.root, "tmp")) == []
        assert os.listdir(os.path.join(store.root, "containers")) == ["c2"]
        # a remover killed right after its rename: the layer in tmp/ under its (dead) pid,
        # its rootfs still mounted
        child = os.fork()
        if child == 0:
            os._exit(0)
        os.waitpid(child, 0)
        trash = os.path.join(store.root, "tmp", f"{child}-removed-c2")
        os.rename(os.path.join(store.root, "containers", "c2"), trash)
        assert testkit.mounts_under(trash)
        assert f"tmp/{child}-removed-c2" in store.gc()
        assert os.listdir(os.path.join(store.root, "tmp")) == []
        assert not testkit.mounts_under(trash)
        assert not os.path.exists(kept.path)


def test_mount_after_a_new_store_object_as_after_a_reboot(stores, tarball):
    store = stores.new("s")
    store.import_archive(tarball(), name="bb")
    store.create_rootfs("c1", "bb", idmap=SHIFTED)
    store.unmount_rootfs("c1")
    store.close()
    again = stores.new("s")
    path = again.mount_rootfs("c1")
    assert os.stat(os.path.join(path, "bin/busybox")).st_uid == 100000
    again.remove_rootfs("c1")


def test_rootfs_bad_inputs_leave_nothing(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        with pytest.raises(ImageNotFound):
            store.create_rootfs("c1", "nothere")
        with pytest.raises(StoreError, match="invalid container id"):
            store.create_rootfs("../c1", "bb")
        with pytest.raises(StoreError, match="shift 'copy'"):
            store.create_rootfs("c1", "bb", shift="copy")
        with pytest.raises(StoreError, match="idmap must be an IdMap"):
            store.create_rootfs("c1", "bb", idmap=[(0, 1, 2)])
        store.create_rootfs("c1", "bb")
        with pytest.raises(RootfsExists):
            store.create_rootfs("c1", "bb")
        store.remove_rootfs("c1")
        assert os.listdir(os.path.join(store.root, "containers")) == []
        assert store.mount_rootfs.__name__ and store.rootfs("c1") is None
        with pytest.raises(StoreError, match="c9 has no root filesystem"):
            store.mount_rootfs("c9")


def test_deep_images_stack_any_number_of_layers(stores, tmp_path):
    """70 layers: each adds a file and deletes the previous layer's (a whiteout)."""
    tars = [testkit.TarBuilder().dir("d").file(f"d/f{i}", str(i))
            .whiteout(f"d/f{i - 1}").bytes() if i else testkit.TarBuilder().dir("d")
            .file("d/f0", "0").bytes() for i in range(70)]
    testkit.oci_layout(str(tmp_path / "deep"), tars, name="deep:1")
    with stores.new() as store:
        [img] = store.import_oci(str(tmp_path / "deep"))
        assert len(img.layers) == 70
        r = store.create_rootfs("c1", "deep:1", idmap=SHIFTED)
        assert os.listdir(os.path.join(r.path, "d")) == ["f69"]
        store.remove_rootfs("c1")


def test_host_root_base_hides_the_store(stores):
    with stores.new() as store:
        r = store.create_rootfs("h1", HOST_ROOT, idmap=SHIFTED)
        assert r.shift == "idmapped" and r.image_id is None
        assert os.path.exists(os.path.join(r.path, "etc/os-release"))
        assert os.stat(os.path.join(r.path, "etc/os-release")).st_uid == 100000
        inside = os.path.join(r.path, os.path.relpath(store.root, "/"))
        assert not os.path.exists(inside)
        assert os.path.isdir(os.path.dirname(inside))
        with open(os.path.join(r.path, "etc/kagotest-st-host"), "w") as f:
            f.write("only in the container")
        assert not os.path.exists("/etc/kagotest-st-host")
        with pytest.raises(StoreError, match="stacked on the host's root"):
            store.commit("h1", "x")
        store.remove_rootfs("h1")



def test_create_rootfs_knows_it_mounted_and_containers_reads_the_mount_table(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        for cid in ("c1", "c2"):
            assert store.create_rootfs(cid, "bb", idmap=SHIFTED).mounted
        store.unmount_rootfs("c2")
        assert {(r.cid, r.mounted) for r in store.containers()} == {("c1", True),
                                                                     ("c2", False)}
        assert store.rootfs("c1").mounted and not store.rootfs("c2").mounted
        cdir = os.path.join(store.root, "containers", "c1")
        assert sorted(os.listdir(cdir)) == ["rootfs", "rootfs.json", "upper", "work"]
        for cid in ("c1", "c2"):
            store.remove_rootfs(cid)


def test_an_empty_record_counts_as_half_made(stores, tarball):
    """Container records are renamed into place but not fsynced: after a power loss one may
    be empty. Such a container is as one whose record was never written; a corrupt non-empty
    record is still an error."""
    with stores.new() as store:
        img = store.import_archive(tarball(), name="bb")
        store.create_rootfs("c1", "bb", idmap=SHIFTED)
        store.create_rootfs("c2", "bb")
        record = os.path.join(store.root, "containers", "c1", "rootfs.json")
        os.truncate(record, 0)
        assert store.rootfs("c1") is None
        assert [r.cid for r in store.containers()] == ["c2"]
        with pytest.raises(RootfsExists):  # its directory is still there until gc
            store.create_rootfs("c1", "bb")
        with pytest.raises(RootfsNotFound):
            store.mount_rootfs("c1")
        assert store.gc() == ["container c1"]
        assert not os.path.exists(os.path.dirname(record))
        assert store.create_rootfs("c1", "bb", idmap=SHIFTED).mounted
        with open(record, "w") as f:
            f.write("{not json")
        with pytest.raises(StoreError, match="corrupt"):
            store.rootfs("c1")
        os.truncate(record, 0)
        store.remove_rootfs("c2")
        store.remove_image(img.id)  # only c1 used it, and c1 is half made
        assert store.gc() == ["container c1"]


def test_a_full_id_reads_only_its_record(stores, tarball, monkeypatch):
    with stores.new() as store:
        img = store.import_archive(tarball(), name="bb")
        monkeypatch.setattr(type(store), "_image_records", lambda self: pytest.fail("scanned"))
        assert store.image(img.id).names == ["bb:latest"]
        r = store.create_rootfs("c1", img.id)
        assert r.image_id == img.id
        monkeypatch.undo()
        with pytest.raises(ImageNotFound):
            store.image("0" * 64)
        with pytest.raises(StoreError, match="64-digit hex"):
            store.tag(img.id, "f" * 64)
        store.remove_rootfs("c1")

# --- gc, locking, full disk, filesystems ----------------------------------------------------------

def test_gc_removes_dead_staging_half_made_containers_and_orphans(stores, tarball):
    with stores.new() as store:
        store.import_archive(tarball(), name="bb")
        store.create_rootfs("c1", "bb")
        dead = os.path.join(store.root, "tmp", "999999999-dead")
        os.makedirs(os.path.join(dead, "layer-0"))
        half = os.path.join(store.root, "containers", "half")
        os.makedirs(os.path.join(half, "rootfs"))
        subprocess.run(["mount", "-t", "tmpfs", "kagotest-st", os.path.join(half, "rootfs")],
                       check=True)
        orphan = os.path.join(store.root, "blobs/sha256", "0" * 64)
        open(orphan, "w").close()
        removed = store.gc()
        assert "tmp/999999999-dead" in removed and "container half" in removed
        assert f"blob sha256:{'0' * 64}" in removed
        assert not os.path.exists(half) and not os.path.exists(orphan)
        assert store.rootfs("c1").mounted and store.images()
        assert store.gc() == []
        store.remove_rootfs("c1")


_CONCURRENT = """
import sys
from kago.storage import Store
store = Store(sys.argv[1])
n = sys.argv[3]
store.import_archive(sys.argv[2], name="img" + n)
store.create_rootfs("c" + n, "img" + n)
store.tag("img" + n, "shared" + n)
"""


def test_concurrent_commands_keep_the_store_consistent(stores, tarball):
    store = stores.new()
    path = tarball()
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, store.root, path, str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert names(store) == sorted([f"img{i}:latest" for i in range(4)]
                                  + [f"shared{i}:latest" for i in range(4)])
    # imports in the same second make the same config, hence the same image: also fine
    assert len({tuple(store.image(f"img{i}").layers) for i in range(4)}) == 1
    assert len(layer_dirs(store)) == 1
    for i in range(4):
        assert store.rootfs(f"c{i}").mounted
        store.remove_rootfs(f"c{i}")


def test_full_disk_during_import_leaves_nothing_and_a_retry_works(stores, tmp_path, busybox_tar):
    big = testkit.TarBuilder().file("big", os.urandom(12 << 20)).write(tmp_path / "big.tar",
                                                                      "gzip")
    with testkit.tmpfs(str(tmp_path / "small"), size="10m") as small:
        store = stores.new(os.path.join(small, "store"))
        with pytest.raises(StoreError, match="no space left in store .* retry"):
            store.import_archive(big, name="big")
        assert store.images() == [] and layer_dirs(store) == []
        assert os.listdir(os.path.join(store.root, "blobs/sha256")) == []
        subprocess.run(["mount", "-o", "remount,size=80m", small], check=True)
        img = store.import_archive(big, name="big")
        assert img.size == 12 << 20
        store.remove_image("big")
        stores.made.remove(store)
        store.close()


def test_store_on_a_filesystem_overlay_refuses(stores, tmp_path):
    """overlayfs cannot use an overlay as its upper layer: the store falls back to vfs."""
    base = tmp_path / "ovl"
    for d in ("lower", "upper", "work", "merged"):
        (base / d).mkdir(parents=True)
    merged = str(base / "merged")
    subprocess.run(["mount", "-t", "overlay", "kagotest-st", "-o",
                    f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work", merged],
                   check=True)
    try:
        with pytest.raises(StoreError, match="overlayfs cannot use .* as its upper layer"):
            stores.new(os.path.join(merged, "a"), driver="overlay")
        assert not os.path.exists(os.path.join(merged, "a", "driver"))
        store = stores.new(os.path.join(merged, "b"))
        assert store.driver == "vfs"
        with pytest.raises(StoreError, match="uses driver vfs, not overlay"):
            stores.new(os.path.join(merged, "b"), driver="overlay")
        stores.cleanup()
        stores.made.clear()
    finally:
        syscalls.unmount(merged)


def test_vfs_driver_copies_and_shifts(stores, tarball):
    with stores.new(driver="vfs") as store:
        store.import_archive(tarball(), name="bb")
        for cid, shift in (("c1", "idmapped"), ("c2", "chown"), ("c3", None)):
            r = store.create_rootfs(cid, "bb", idmap=SHIFTED if shift else None, shift=shift)
            assert r.driver == "vfs" and r.shift == (shift or "none")
            want = 100000 if shift else 0
            assert os.stat(os.path.join(r.path, "bin/busybox")).st_uid == want
            assert os.stat(os.path.join(r.path, "home/user/mine")).st_uid == want + 1000
        for cid in ("c1", "c2", "c3"):
            store.remove_rootfs(cid)


def test_unknown_driver_and_device_policy(stores):
    with pytest.raises(StoreError, match="unknown storage driver 'zfs'"):
        stores.new("z", driver="zfs")
    with pytest.raises(StoreError, match="needs the store on btrfs"):
        stores.new("b", driver="btrfs")


def test_a_full_disk_while_publishing_takes_everything_back(stores, tarball, monkeypatch):
    """The records are written last; if that fails (ENOSPC), the renamed blobs and layer go."""
    from kago.storage.store import Store
    store = stores.new()

    def full(self, rec):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Store, "_write_image", full)
    with pytest.raises(StoreError, match="no space left"):
        store.import_archive(tarball(), name="bb")
    monkeypatch.undo()
    assert layer_dirs(store) == [] and store.images() == []
    assert os.listdir(os.path.join(store.root, "blobs/sha256")) == []
    assert store.import_archive(tarball(), name="bb").names == ["bb:latest"]
