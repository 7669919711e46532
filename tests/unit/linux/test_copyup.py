"""copyup.copy_tree (tmpcopyup): what is copied, kept, and never followed."""

import errno
import os
import stat

import pytest

from kago.errors import MountError
from kago.linux import copyup

ROOT = os.geteuid() == 0


def _dirfd(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def copy(src, dst):
    s, d = _dirfd(src), _dirfd(dst)
    try:
        copyup.copy_tree(s, d, "/tmp")
        copyup.copy_root_mode(s, d)
    finally:
        os.close(s)
        os.close(d)


@pytest.fixture
def trees(tmp_path):
    src, dst, outside = tmp_path / "src", tmp_path / "dst", tmp_path / "outside"
    for d in (src, dst, outside):
        d.mkdir()
    (outside / "secret").write_text("host file\n")
    return src, dst, outside


def test_files_dirs_modes_and_times(trees):
    src, dst, _ = trees
    (src / "a").write_bytes(b"x" * 3_000_000)
    os.chmod(src / "a", 0o640)
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "e" / "f").write_text("deep\n")
    os.chmod(src / "d", 0o1777)
    os.chmod(src / "d" / "e", 0o500)  # read-only: filled before its mode is set
    os.utime(src / "a", ns=(1_000_000_000, 2_000_000_000))
    os.chmod(src, 0o1777)
    copy(src, dst)
    assert (dst / "a").read_bytes() == b"x" * 3_000_000
    assert stat.S_IMODE(os.stat(dst / "a").st_mode) == 0o640
    assert os.stat(dst / "a").st_mtime_ns == 2_000_000_000
    assert stat.S_IMODE(os.stat(dst / "d").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(dst / "d" / "e").st_mode) == 0o500
    assert (dst / "d" / "e" / "f").read_text() == "deep\n"
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o1777  # the root takes the directory's mode


def test_symlinks_are_copied_never_followed(trees):
    src, dst, outside = trees
    os.symlink(str(outside / "secret"), src / "abs")
    os.symlink("../outside", src / "dirlink")
    os.symlink("missing", src / "dangling")
    copy(src, dst)
    assert os.readlink(dst / "abs") == str(outside / "secret")
    assert os.readlink(dst / "dirlink") == "../outside"
    assert os.readlink(dst / "dangling") == "missing"
    assert sorted(os.listdir(dst)) == ["abs", "dangling", "dirlink"]
    assert os.listdir(outside) == ["secret"]  # nothing written through a link


def test_fifo_is_made_and_socket_skipped(trees, tmp_path):
    src, dst, _ = trees
    os.mkfifo(src / "fifo")
    os.chmod(src / "fifo", 0o620)
    import socket
    s = socket.socket(socket.AF_UNIX)
    path = src / "sock"
    try:
        s.bind(str(path))
    except OSError as e:  # a path too long for sun_path: nothing to test there
        pytest.skip(f"cannot bind a socket under {tmp_path}: {e}")
    finally:
        s.close()
    copy(src, dst)
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(dst / "fifo").st_mode) == 0o620
    assert not os.path.lexists(dst / "sock")


@pytest.mark.skipif(not ROOT, reason="chown to other owners needs root")
def test_owners_and_setuid_are_kept(trees):
    src, dst, _ = trees
    (src / "suid").write_text("#!/bin/sh\n")
    os.chown(src / "suid", 1000, 1000)
    os.chmod(src / "suid", 0o4755)
    os.symlink("suid", src / "link")
    os.chown(src / "link", 1001, 1002, follow_symlinks=False)
    (src / "dir").mkdir()
    os.chown(src / "dir", 7, 8)
    copy(src, dst)
    st = os.stat(dst / "suid")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o4755)
    st = os.lstat(dst / "link")
    assert (st.st_uid, st.st_gid) == (1001, 1002)
    st = os.stat(dst / "dir")
    assert (st.st_uid, st.st_gid) == (7, 8)


def test_xattrs_are_kept(trees):
    src, dst, _ = trees
    (src / "f").write_text("x")
    try:
        os.setxattr(src / "f", "user.kago", b"value")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            pytest.skip("no user xattrs on this filesystem")
        raise
    copy(src, dst)
    assert os.getxattr(dst / "f", "user.kago") == b"value"


def test_an_error_names_the_path_in_the_container(trees):
    src, dst, _ = trees
    (src / "sub").mkdir()
    (src / "sub" / "f").write_text("x")
    (dst / "sub").mkdir()  # already there: mkdir fails with EEXIST
    with pytest.raises(MountError) as e:
        copy(src, dst)
    assert e.value.errno == errno.EEXIST
    assert str(e.value) == "tmpcopyup /tmp/sub: file exists"
