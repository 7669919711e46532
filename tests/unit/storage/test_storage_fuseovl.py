"""fuse-overlayfs as the overlay driver's mount in a user namespace (kago.storage.fuseovl):
which mount a store uses, when a native mount's failure falls back, the one line when the
binary is missing, and how diff reads what fuse-overlayfs writes in an upper directory."""

import errno
import os
import stat

import pytest

from kago.errors import KernelError
from kago.storage import diff, drivers, fuseovl
from kago.storage.errors import StoreError


def test_the_setting_forces_it_and_a_learned_fallback_is_kept_in_a_user_namespace():
    assert fuseovl.initial(None, None, True) == "native"
    assert fuseovl.initial("fuse-overlayfs", None, True) == "fuse-overlayfs"
    assert fuseovl.initial(None, "fuse-overlayfs", True) == "fuse-overlayfs"
    assert fuseovl.initial("overlay", "fuse-overlayfs", True) == "fuse-overlayfs"


def test_root_stays_native_and_is_told_the_setting_is_for_the_rootless_manager():
    assert fuseovl.initial(None, "fuse-overlayfs", False) == "native"
    assert fuseovl.initial("overlay", None, False) == "native"
    with pytest.raises(StoreError, match="for the rootless manager"):
        fuseovl.initial("fuse-overlayfs", None, False)


@pytest.mark.parametrize("err", [errno.EPERM, errno.EINVAL, errno.ENODEV])
def test_the_kernels_refusal_in_a_user_namespace_falls_back(err):
    assert fuseovl.falls_back(err, True, "chown")
    assert fuseovl.falls_back(err, True, "none")
    assert not fuseovl.falls_back(err, False, "chown")  # root: unchanged
    assert not fuseovl.falls_back(err, True, "idmapped")


def test_other_failures_do_not_fall_back():
    for err in (errno.EIO, errno.ENOSPC, errno.ENOENT, errno.EBUSY):
        assert not fuseovl.falls_back(err, True, "chown")


def test_a_missing_binary_is_one_line_naming_the_package():
    line = fuseovl.missing_message(None)
    assert "\n" not in line and "apt-get install fuse-overlayfs" in line
    assert fuseovl.missing_message("/usr/bin/fuse-overlayfs") is None
    line = fuseovl.missing_message(None, errno.EPERM)
    assert "\n" not in line and "refuses overlayfs" in line and "(EPERM)" in line
    assert "apt-get install fuse-overlayfs" in line


def test_mount_data_lists_the_top_layer_first_and_refuses_separators():
    data = fuseovl.mount_data(["/s/l/a", "/s/l/b"], "/s/c/upper", "/s/c/work")
    assert data.startswith("lowerdir=/s/l/b:/s/l/a,upperdir=/s/c/upper,workdir=/s/c/work,")
    assert "allow_other" in data.split(",")
    with pytest.raises(StoreError, match="',' or ':'"):
        fuseovl.mount_data(["/s/l/a:b"], "/u", "/w")


@pytest.fixture
def refused(tmp_path, monkeypatch):
    """An Overlay driver in a (pretend) user namespace whose native mounts fail with EPERM;
    fuse-overlayfs mounts are recorded, not made."""
    calls = {"native": 0, "fuse": []}

    def native(*_a):
        calls["native"] += 1
        raise KernelError("mount", errno.EPERM, "rootfs")

    monkeypatch.setattr(drivers, "in_user_namespace", lambda: True)
    monkeypatch.setattr(drivers.Overlay, "_mount_native", native)
    monkeypatch.setattr(fuseovl, "mount", lambda *a: calls["fuse"].append(a))
    driver = drivers.Overlay(str(tmp_path))
    driver.mounter = fuseovl.NATIVE
    return driver, calls, tmp_path


def test_a_refused_mount_warns_once_remembers_and_goes_straight_to_fuse_later(
        refused, monkeypatch, capsys):
    driver, calls, root = refused
    monkeypatch.setattr(fuseovl.shutil, "which", lambda _n: "/usr/bin/fuse-overlayfs")
    driver._mount(str(root / "c1"), ["/l/a"], None, None, "chown")
    driver._mount(str(root / "c2"), ["/l/a"], None, None, "chown")
    assert calls["native"] == 1 and len(calls["fuse"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "using fuse-overlayfs" in err[0] and "EPERM" in err[0]
    assert fuseovl.remembered(str(root)) == "fuse-overlayfs"
    assert fuseovl.initial(None, fuseovl.remembered(str(root)), True) == "fuse-overlayfs"


def test_a_refused_mount_without_the_binary_is_the_install_line(refused, monkeypatch):
    driver, calls, root = refused
    monkeypatch.setattr(fuseovl.shutil, "which", lambda _n: None)
    with pytest.raises(StoreError, match=r"refuses overlayfs .*\(EPERM\).*apt-get install "
                       "fuse-overlayfs"):
        driver._mount(str(root / "c1"), ["/l/a"], None, None, "chown")
    assert calls["fuse"] == [] and fuseovl.remembered(str(root)) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a whiteout needs root")
def test_diff_reads_fuse_overlayfs_whiteouts_and_opaque_directories(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "home" / "user").mkdir(parents=True)
    (lower / "bin").mkdir()
    (lower / "bin" / "true").write_text("x")
    (upper / "home").mkdir(parents=True)
    (upper / "bin").mkdir()
    (upper / "home" / "new").write_text("n")
    # what fuse-overlayfs wrote for `rm -rf /home; mkdir /home` and `rm /bin/true`
    os.setxattr(upper / "home", fuseovl.OPAQUE_XATTR, b"y")
    (upper / "home" / ".wh..wh..opq").write_text("")
    os.mknod(upper / "home" / ".wh..opq", stat.S_IFCHR | 0o700, os.makedev(0, 0))
    os.mknod(upper / "bin" / "true", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    assert diff.changes(str(upper), [str(lower)]) == [
        ("C", "/bin"), ("D", "/bin/true"), ("C", "/home"), ("A", "/home/new")]
