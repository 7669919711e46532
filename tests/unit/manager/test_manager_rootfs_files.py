"""Reading a container's /etc files from the host (kago.manager.rootfs_files): inside the
rootfs whatever its symlinks say, and never blocked by what an image put there."""

import os
import subprocess
import sys

import pytest

from kago.manager.rootfs_files import read_in_root


def test_a_symlink_resolves_inside_the_rootfs(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "inside").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    os.symlink("../../../../inside", tmp_path / "etc" / "group")
    assert read_in_root(str(tmp_path), "/etc/group") is None  # the last link: not followed
    os.symlink("/", tmp_path / "up")
    assert read_in_root(str(tmp_path), "/up/../up/inside").startswith(b"root:")
    assert read_in_root(str(tmp_path), "/etc/passwd") is None


def test_a_fifo_for_etc_passwd_does_not_block(tmp_path):
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc" / "passwd")
    code = ("from kago.manager.rootfs_files import read_in_root; "
            f"print(read_in_root({str(tmp_path)!r}, '/etc/passwd'))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except subprocess.TimeoutExpired:
        pytest.fail("reading a FIFO at /etc/passwd blocked")
    assert out == "None\n"
