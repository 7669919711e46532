"""maskedPaths, recorded: a masked file gets the container's own /dev/null (resolved in the
rootfs, checked to be the null device), never the host's; a directory an empty read-only tmpfs;
a /dev without a null device fails before anything is mounted (runc 1.3.3 and later)."""

import os
import stat

import pytest

from kago.errors import KagoError, MountError
from kago.kernel import consts as C
from kago.linux import mounts


@pytest.fixture
def root(tmp_path):
    (tmp_path / "dev").mkdir()
    (tmp_path / "proc" / "acpi").mkdir(parents=True)
    (tmp_path / "proc" / "keys").write_text("secret\n")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    yield tmp_path, fd
    os.close(fd)


def mknull(path, rdev=os.makedev(1, 3)):
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, rdev)
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")


@pytest.fixture
def recorded(monkeypatch):
    """Each mount as (source, what the source is: (st_dev, st_ino) or None, target, fstype,
    flags); the source fd is only open during the call, so it is looked at there."""
    calls = []

    def mount(source, target, fstype=None, flags=0, data=None, shown=None):
        try:
            st = os.stat(source)
            what = (st.st_dev, st.st_ino)
        except (OSError, TypeError):
            what = None
        calls.append((source, what, os.readlink(target), fstype, flags))
    monkeypatch.setattr(mounts.libc, "mount", mount)
    return calls


def ident(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_a_masked_file_gets_the_containers_dev_null(root, recorded):
    top, fd = root
    mknull(top / "dev" / "null")
    mounts.mask_paths(fd, ["/proc/keys", "/proc/acpi", "/proc/no-such-file"])
    (source, what, target, fstype, flags), (tsource, _, ttarget, tfstype, tflags) = recorded
    assert source.startswith("/proc/self/fd/") and what == ident(top / "dev" / "null")
    assert what != ident("/dev/null")  # not the host's node
    assert (target, fstype, flags) == (str(top / "proc" / "keys"), None, C.MS_BIND)
    assert (tsource, ttarget, tfstype, tflags) == ("tmpfs", str(top / "proc" / "acpi"),
                                                   "tmpfs", C.MS_RDONLY)


def test_dev_null_is_resolved_inside_the_root(root, recorded):
    """A symlink in the image at /dev/null to the host's path names the rootfs's own."""
    top, fd = root
    (top / "host" / "dev").mkdir(parents=True)
    mknull(top / "host" / "dev" / "null")
    os.symlink("/../../../host/dev/null", top / "dev" / "null")
    mounts.mask_paths(fd, ["/proc/keys"])
    assert recorded[0][1] == ident(top / "host" / "dev" / "null")


def test_no_dev_null_fails_clearly_and_mounts_nothing(root, recorded):
    _top, fd = root
    with pytest.raises(MountError) as err:
        mounts.mask_paths(fd, ["/proc/keys"])
    assert str(err.value).startswith("mask paths: open /dev/null (")
    assert str(err.value).endswith(": no such file or directory")
    assert recorded == []


def test_a_dev_null_symlink_to_the_hosts_path_never_reaches_the_host(root, recorded):
    top, fd = root
    os.symlink("/dev/null", top / "dev" / "null")  # in the root: a loop (ELOOP), not the host's
    with pytest.raises(MountError, match="/dev/null"):
        mounts.mask_paths(fd, ["/proc/keys"])
    assert recorded == []


@pytest.mark.parametrize("make, shown", [
    (lambda p: p.write_text(""), "a regular file"),
    (lambda p: mknull(p, os.makedev(1, 5)), "the device c 1:5"),
    (lambda p: p.mkdir(), "a directory"),
])
def test_something_else_at_dev_null_is_refused(root, recorded, make, shown):
    top, fd = root
    make(top / "dev" / "null")
    with pytest.raises(KagoError, match=r"^mask paths: the container's /dev/null must be the "
                                        rf"null device \(c 1:3\), not {shown}$"):
        mounts.mask_paths(fd, ["/proc/keys"])
    assert recorded == []


def test_nothing_to_mask_needs_no_dev_null(root, recorded):
    _top, fd = root
    mounts.mask_paths(fd, [])
    assert recorded == []
