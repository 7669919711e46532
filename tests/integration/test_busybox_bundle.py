"""The embedded busybox image: its tree, its config, and that a real runtime (runc) runs it.

The runc test is the image's acceptance test, independent of kago-oci: if runc cannot run
the bundle, kago-oci test failures would be ambiguous. It skips when runc is not installed
or when not root.
"""

import json
import os
import shutil
import stat
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from kago.testing import busybox

RUNC = shutil.which("runc")

needs_busybox = pytest.mark.skipif(
    not os.path.exists(busybox.DEFAULT_BUSYBOX), reason="busybox-static is not installed")


# ---------------------------------------------------------------- the tree


@needs_busybox
def test_bundle_tree(tmp_path):
    bundle = busybox.build_bundle(tmp_path / "b", args=["sh", "-c", "true"])
    rootfs = bundle / "rootfs"

    assert (rootfs / "bin/busybox").is_file()
    assert os.access(rootfs / "bin/busybox", os.X_OK)
    for applet in ("bin/sh", "usr/bin/env", "sbin/ifconfig", "bin/hostname", "usr/bin/id"):
        link = rootfs / applet
        assert link.is_symlink(), applet
        # Relative links resolve inside the rootfs, not to the host's /bin/busybox.
        assert link.resolve() == (rootfs / "bin/busybox").resolve(), applet
    assert len(busybox.applet_paths()) > 200

    passwd = (rootfs / "etc/passwd").read_text().splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in passwd
    assert "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" in passwd
    assert any(line.startswith("user:x:1000:1000:") for line in passwd)
    group = (rootfs / "etc/group").read_text()
    for entry in ("root:x:0:", "tty:x:5:", "users:x:100:", "user:x:1000:", "nogroup:x:65534:"):
        assert entry in group
    assert stat.S_IMODE(os.lstat(rootfs / "tmp").st_mode) == 0o1777
    for d in ("proc", "sys", "dev", "etc", "root", "run", "var/tmp", "home"):
        assert (rootfs / d).is_dir(), d

    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["sh", "-c", "true"]
    assert config["process"]["terminal"] is False
    assert config["root"]["path"] == "rootfs"
    assert config["hostname"] == "kago"


@needs_busybox
def test_overrides_config_and_mutate(tmp_path):
    base = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["x"]}}
    bundle = busybox.build_bundle(tmp_path / "b", config=base, hostname="box",
                                  process__cwd="/tmp",
                                  mutate=lambda spec: spec["process"].update(env=["A=1"]))
    config = json.loads((bundle / "config.json").read_text())
    assert config["hostname"] == "box"
    assert config["process"] == {"args": ["x"], "cwd": "/tmp", "env": ["A=1"]}
    assert base["process"] == {"args": ["x"]}  # the caller's dict is not modified


@needs_busybox
def test_cached_rootfs_and_clone(tmp_path):
    cached = busybox.cached_rootfs(tmp_path / "cache")
    assert busybox.cached_rootfs(tmp_path / "cache") == cached  # built once
    clone = busybox.clone_rootfs(cached, tmp_path / "clone")
    assert not os.path.samefile(clone / "bin/busybox", cached / "bin/busybox")  # no hard links
    assert os.readlink(clone / "bin/sh") == os.readlink(cached / "bin/sh")
    assert stat.S_IMODE(os.lstat(clone / "tmp").st_mode) == 0o1777
    assert os.stat(clone / "home/user").st_uid == os.stat(cached / "home/user").st_uid
    (clone / "etc/passwd").write_text("changed\n")
    assert (cached / "etc/passwd").read_text().startswith("root:")

    bundle = busybox.build_bundle(tmp_path / "b", cache_dir=tmp_path / "cache")
    assert (bundle / "rootfs/bin/sh").is_symlink()


@needs_busybox
def test_refuses_non_empty_target(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "junk").write_text("x")
    with pytest.raises(busybox.BusyboxError, match="not empty"):
        busybox.build_bundle(tmp_path / "b")


# ---------------------------------------------------------------- a missing or dynamic busybox


def test_missing_busybox_is_a_clear_error(tmp_path):
    with pytest.raises(busybox.BusyboxError, match="busybox-static is not installed: apt-get"):
        busybox.build_rootfs(tmp_path / "r", busybox=str(tmp_path / "nope"))
    assert not (tmp_path / "r").exists()


def test_non_elf_busybox_is_a_clear_error(tmp_path):
    fake = tmp_path / "busybox"
    fake.write_text("#!/bin/sh\necho I am not busybox\n")
    fake.chmod(0o755)
    with pytest.raises(busybox.BusyboxError, match="not an ELF"):
        busybox.build_rootfs(tmp_path / "r", busybox=str(fake))


def _fake_elf(path, p_types):
    """A minimal little-endian ELF64 header plus one program header per type in p_types."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"  # ELFCLASS64, ELFDATA2LSB
    struct.pack_into("<Q", header, 32, 64)  # e_phoff: right after the header
    struct.pack_into("<HH", header, 54, 56, len(p_types))  # e_phentsize, e_phnum
    phdrs = b"".join(struct.pack("<I", t) + bytes(52) for t in p_types)
    path.write_bytes(bytes(header) + phdrs)
    path.chmod(0o755)
    return str(path)


def test_dynamic_busybox_is_a_clear_error(tmp_path):
    dynamic = _fake_elf(tmp_path / "busybox", [6, 3, 1])  # PT_PHDR, PT_INTERP, PT_LOAD
    with pytest.raises(busybox.BusyboxError, match="busybox-static is not installed.*dynamic"):
        busybox.build_bundle(tmp_path / "b", busybox=dynamic)
    assert not (tmp_path / "b").exists()


def test_static_check_accepts_an_elf_without_interpreter(tmp_path):
    busybox.check_static(_fake_elf(tmp_path / "busybox", [1, 1, 4]))  # PT_LOAD x2, PT_NOTE
    if os.path.exists(busybox.DEFAULT_BUSYBOX):
        busybox.check_static(busybox.DEFAULT_BUSYBOX)  # the real one, if installed, is static


def test_module_command_line(tmp_path):
    src = str(Path(busybox.__file__).resolve().parents[2])  # .../src, holding kago/
    env = dict(os.environ, PYTHONPATH=src)
    cmd = ["/usr/bin/python3", "-m", "kago.testing.busybox"]
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1
    if not os.path.exists(busybox.DEFAULT_BUSYBOX):
        return
    good = subprocess.run(cmd + [str(tmp_path / "b"), "--", "echo", "hi"],
                          capture_output=True, text=True, env=env, check=False)
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == str(tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["process"]["args"] == ["echo", "hi"]


# ---------------------------------------------------------------- run it with runc


@pytest.fixture
def runc_root(tmp_path, request):
    """A private runc state root; every container created in it is force-deleted at the end."""
    if RUNC is None:
        pytest.skip("runc is not installed")
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = tmp_path / "runc-state"
    root.mkdir()
    ids = []

    def cleanup():
        for cid in ids:
            subprocess.run([RUNC, "--root", str(root), "delete", "-f", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    request.addfinalizer(cleanup)
    return root, ids


@pytest.mark.root
@needs_busybox
def test_runc_runs_the_bundle(tmp_path, runc_root):
    root, ids = runc_root
    bundle = busybox.build_bundle(tmp_path / "b", args=["sh", "-c", "hostname; echo $$; id -u"])
    cid = f"kago-test-{uuid.uuid4().hex[:12]}"
    ids.append(cid)
    proc = subprocess.run([RUNC, "--root", str(root), "run", "--bundle", str(bundle), cid],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "kago\n1\n0\n"
