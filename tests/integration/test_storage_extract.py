"""Layer extraction is safe and faithful: malicious archives never write outside the layer,
and what a layer carries (owners, modes, xattrs, links, devices, whiteouts) is kept."""

import io
import os
import stat

import pytest

from kago.storage import BadArchive, StoreError, UnsafeArchive
from kago.storage.apply import apply_layer
from kago.storage.testkit import TarBuilder, write_compressed


@pytest.fixture
def layer(tmp_path):
    path = tmp_path / "layer"
    path.mkdir()
    return path


@pytest.fixture
def outside(tmp_path):
    """A directory beside the layer that no archive may touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_text("host file")
    return path


def apply(tar, root, mode="overlay", devices="allow"):
    data = tar.bytes() if isinstance(tar, TarBuilder) else tar
    return apply_layer(io.BytesIO(data), str(root), mode, "test.tar", devices)


def tree(path):
    return sorted(os.path.relpath(os.path.join(d, n), path)
                  for d, dirs, files in os.walk(path) for n in dirs + files)


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "./../escape", "a/b/../../.."])
def test_dotdot_refuses_the_archive(layer, outside, name):
    tar = TarBuilder().file("ok", "1").file(name, "evil")
    with pytest.raises(UnsafeArchive, match="'..' component"):
        apply(tar, layer)
    assert not (layer.parent / "escape").exists()
    assert tree(outside) == ["secret"]


def test_absolute_paths_are_confined_to_the_layer(layer, outside):
    apply(TarBuilder().file(str(outside / "secret"), "evil").file("/abs", "x"), layer)
    assert (outside / "secret").read_text() == "host file"
    assert (layer / str(outside).lstrip("/") / "secret").read_text() == "evil"
    assert (layer / "abs").read_text() == "x"


@pytest.mark.parametrize("target", ["/", "../../..", "OUTSIDE"])
def test_writing_through_a_symlink_stays_inside_the_layer(layer, outside, target):
    target = str(outside) if target == "OUTSIDE" else target
    tar = TarBuilder().symlink("esc", target).file("esc/secret", "evil").dir("esc/newdir")
    apply(tar, layer)
    assert (outside / "secret").read_text() == "host file"
    assert tree(outside) == ["secret"]
    inside = layer / (str(outside).lstrip("/") if target == str(outside) else "")
    assert (inside / "secret").read_text() == "evil"
    assert os.path.islink(layer / "esc")


def test_a_file_replaces_a_symlink_instead_of_following_it(layer, outside):
    tar = TarBuilder().symlink("passwd", str(outside / "secret")).file("passwd", "new")
    apply(tar, layer)
    assert (outside / "secret").read_text() == "host file"
    assert not os.path.islink(layer / "passwd")
    assert (layer / "passwd").read_text() == "new"


def test_a_hardlink_planted_earlier_is_replaced_not_written_through(layer):
    tar = TarBuilder().file("a", "original").hardlink("b", "a").file("b", "replaced")
    apply(tar, layer)
    assert (layer / "a").read_text() == "original"
    assert (layer / "b").read_text() == "replaced"


@pytest.mark.parametrize("target", ["../outside/secret", "/etc/passwd", "etc/passwd",
                                    "esc/passwd"])
def test_hardlinks_out_of_the_layer_are_refused(layer, outside, target):
    nlink = os.stat("/etc/passwd").st_nlink
    tar = TarBuilder().symlink("esc", "/etc").hardlink("h", target)
    with pytest.raises(UnsafeArchive):
        apply(tar, layer)
    assert os.stat("/etc/passwd").st_nlink == nlink
    assert os.stat(outside / "secret").st_nlink == 1
    assert not (layer / "h").exists()


def test_hardlink_to_a_directory_is_refused(layer):
    with pytest.raises(UnsafeArchive, match="hard link to a directory"):
        apply(TarBuilder().dir("d").hardlink("h", "d"), layer)


def test_device_nodes_follow_the_policy(layer):
    tar = lambda: TarBuilder().device("dev/null", 1, 3).device("dev/loop9", 7, 9, char=False)
    apply(tar(), layer)
    st = os.lstat(layer / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_ISBLK(os.lstat(layer / "dev/loop9").st_mode)

    skipped = layer.parent / "skip"
    skipped.mkdir()
    apply(tar(), skipped, devices="skip")
    assert tree(skipped) == ["dev"]

    refused = layer.parent / "refuse"
    refused.mkdir()
    with pytest.raises(UnsafeArchive, match="device node"):
        apply(tar(), refused, devices="refuse")


def test_owners_modes_xattrs_times_links_and_fifos_are_kept(layer):
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw, v2
    tar = (TarBuilder()
           .dir("usr", mode=0o755, uid=0).dir("usr/bin", mode=0o711, uid=0)
           .file("usr/bin/ping", b"\x7fELF", mode=0o4755, uid=0, gid=0,
                 xattrs={"security.capability": cap, "user.note": b"\xff\x00bin"})
           .file("home/u/f", "data", mode=0o600, uid=1000, gid=1001)
           .hardlink("home/u/g", "home/u/f")
           .symlink("home/u/l", "f", uid=1000, gid=1000)
           .fifo("run/fifo", mode=0o620))
    size = apply(tar, layer)
    ping = layer / "usr/bin/ping"
    st = os.stat(ping)
    assert stat.S_IMODE(st.st_mode) == 0o4755, "setuid survives the chown"
    assert os.getxattr(ping, "security.capability") == cap, "capabilities survive the chown"
    assert os.getxattr(ping, "user.note") == b"\xff\x00bin"
    assert st.st_mtime == 1_700_000_000
    assert stat.S_IMODE(os.stat(layer / "usr/bin").st_mode) == 0o711
    assert os.stat(layer / "usr/bin").st_mtime == 1_700_000_000, "dir times set last"
    f = os.stat(layer / "home/u/f")
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (1000, 1001, 0o600)
    assert f.st_ino == os.stat(layer / "home/u/g").st_ino
    assert os.lstat(layer / "home/u/l").st_uid == 1000
    assert os.readlink(layer / "home/u/l") == "f"
    assert stat.S_ISFIFO(os.lstat(layer / "run/fifo").st_mode)
    assert size == 4 + 4


def test_overlay_private_xattrs_in_an_archive_are_dropped(layer):
    apply(TarBuilder().dir("d", xattrs={"trusted.overlay.redirect": b"/etc",
                                        "trusted.overlay.opaque": b"y",
                                        "user.kept": b"1"}), layer)
    assert os.listxattr(layer / "d") == ["user.kept"]


def test_whiteouts_become_overlay_whiteouts_in_overlay_mode(layer):
    apply(TarBuilder().dir("etc").whiteout("etc/passwd").opaque("var").file("var/x", "1")
          .file("etc/.wh..wh.plnk", ""), layer)
    st = os.lstat(layer / "etc/passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(layer / "var", "trusted.overlay.opaque") == b"y"
    assert tree(layer) == ["etc", "etc/passwd", "var", "var/x"]


def test_whiteouts_delete_in_merge_mode(layer):
    apply(TarBuilder().file("etc/passwd", "x").file("etc/group", "g").file("var/old", "1")
          .dir("var/olddir").file("var/olddir/f", "2").symlink("link", "etc"), layer, "merge")
    apply(TarBuilder().whiteout("etc/passwd").whiteout("link").file("var/new", "3")
          .opaque("var").whiteout("nothing/here"), layer, "merge")
    assert tree(layer) == ["etc", "etc/group", "var", "var/new"]


def test_entries_replace_each_other_by_type(layer):
    apply(TarBuilder().dir("a").file("a/inner", "1").file("b", "2"), layer, "merge")
    apply(TarBuilder().file("a", "now a file").dir("b").file("b/x", "3"), layer, "merge")
    assert (layer / "a").read_text() == "now a file"
    assert (layer / "b/x").read_text() == "3"


def test_missing_parents_are_made(layer):
    apply(TarBuilder().file("deep/er/file", "x"), layer)
    assert stat.S_IMODE(os.stat(layer / "deep/er").st_mode) == 0o755


def test_entry_below_a_file_is_a_clear_error(layer):
    with pytest.raises(BadArchive, match="not a directory"):
        apply(TarBuilder().file("f", "x").file("f/g", "y"), layer)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
@pytest.mark.parametrize("compression", ["gzip", "xz", "zstd", None])
def test_corrupt_or_truncated_streams_are_one_clear_error(tmp_path, layer, damage, compression):
    from kago.storage.stream import decompressed
    data = TarBuilder().file("a", os.urandom(20000)).file("b", "x" * 5000).bytes()
    path = write_compressed(tmp_path / "t", data, compression)
    raw = open(path, "rb").read()
    if damage == "truncate":
        raw = raw[:len(raw) // 2]
    else:
        raw = raw[:12] + bytes(b ^ 0x5A for b in raw[12:200]) + raw[200:]
    with pytest.raises(StoreError) as err:
        apply_layer(decompressed(io.BytesIO(raw))[0], str(layer), "overlay", "t.tar")
    assert isinstance(err.value, BadArchive)
    assert "t.tar" in str(err.value) and "\n" not in str(err.value)
