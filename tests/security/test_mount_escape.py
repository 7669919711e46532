"""Symlinks in an image must not let a spec mount, device, cwd or masked path reach the host.

Every path the runtime creates or mounts on inside the rootfs is resolved with the rootfs as
"/" (openat2 RESOLVE_IN_ROOT). Each test plants a symlink in the bundle's rootfs that points at a
host-side canary directory (absolutely, relatively, through a chain, or in a parent component),
runs a container that mounts or writes through it, and asserts the canary is untouched and no
mount appeared on it on the host.
"""

import os
import subprocess
import uuid

import pytest


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


class Canary:
    """A host directory with one file; ``assert_untouched`` checks contents and mounts."""

    def __init__(self, base):
        self.path = base / f"canary-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self.file = self.path / "keep"
        self.file.write_text("host data\n")
        self.snapshot = self._state()

    def _state(self):
        entries = {}
        for dirpath, dirnames, filenames in os.walk(self.path):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                entries[full] = (st.st_mode, st.st_size, st.st_mtime_ns)
        return entries

    def assert_untouched(self):
        assert self._state() == self.snapshot, "the host canary changed"
        assert self.file.read_text() == "host data\n"
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                                text=True, check=True).stdout
        assert str(self.path) not in mounts, "a mount appeared on the host canary"


@pytest.fixture
def canary(tmp_path):
    return Canary(tmp_path)


def bundle_with_link(make_bundle, script, link, target, mutate=None):
    b = make_bundle(["sh", "-c", script], mutate=mutate)
    full = os.path.join(b.rootfs, link.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.symlink(target, full)
    return b


def add_mount(destination, type_="tmpfs", source="tmpfs", options=("size=1m",)):
    def mutate(cfg):
        cfg["mounts"].append({"destination": destination, "type": type_, "source": str(source),
                              "options": list(options)})
    return mutate


def relative_to_host(path):
    """A relative symlink target that climbs far enough to reach ``path`` from anywhere."""
    return "../" * 20 + str(path).lstrip("/")


@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_tmpfs_on_symlink_destination_writes_stay_inside(oci, make_bundle, canary, how):
    target = str(canary.path) if how == "absolute" else relative_to_host(canary.path)
    b = bundle_with_link(make_bundle, "echo pwned > /evil/pwned && ls /evil", "/evil", target,
                         add_mount("/evil"))
    assert ok(oci("run", "--bundle", b.path, oci.new_id())).split() == ["pwned"]
    canary.assert_untouched()


def test_symlink_chain_destination(oci, make_bundle, canary):
    b = bundle_with_link(make_bundle, "echo pwned > /a/pwned", "/a", "b", add_mount("/a"))
    os.symlink("/c", os.path.join(b.rootfs, "b"))
    os.symlink(relative_to_host(canary.path), os.path.join(b.rootfs, "c"))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()


def test_symlink_in_parent_component(oci, make_bundle, canary):
    b = bundle_with_link(make_bundle, "echo pwned > /etc/evil/sub/pwned", "/etc/evil",
                         str(canary.path), add_mount("/etc/evil/sub"))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()
    assert not (canary.path / "sub").exists()


def test_bind_mount_onto_symlinked_destination(oci, make_bundle, canary, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("container data\n")
    b = bundle_with_link(make_bundle, "cat /evil/payload", "/evil", str(canary.path),
                         add_mount("/evil", "bind", src, ("rbind", "ro")))
    assert ok(oci("run", "--bundle", b.path, oci.new_id())) == "container data\n"
    canary.assert_untouched()


def test_file_bind_onto_symlink_to_host_file(oci, make_bundle, canary, tmp_path):
    src = tmp_path / "motd"
    src.write_text("container motd\n")
    b = bundle_with_link(make_bundle, "cat /etc/motd", "/etc/motd", str(canary.file),
                         add_mount("/etc/motd", "bind", src, ("bind",)))
    assert ok(oci("run", "--bundle", b.path, oci.new_id())) == "container motd\n"
    canary.assert_untouched()


def test_device_path_through_symlink(oci, make_bundle, canary):
    def mutate(cfg):
        cfg["linux"]["devices"] = [{"path": "/evil/null0", "type": "c", "major": 1,
                                    "minor": 3, "fileMode": 0o666}]
    b = bundle_with_link(make_bundle, "echo x > /evil/null0", "/evil", str(canary.path),
                         mutate)
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()


def test_device_path_that_is_a_symlink_to_a_host_file(oci, make_bundle, canary):
    def mutate(cfg):
        cfg["linux"]["devices"] = [{"path": "/etc/evil", "type": "c", "major": 1, "minor": 3,
                                    "fileMode": 0o666}]
    b = bundle_with_link(make_bundle, "stat -c %F /etc/evil", "/etc/evil", str(canary.file),
                         mutate)
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert out.strip() == "character special file"  # the link was replaced, not followed
    canary.assert_untouched()


def test_cwd_through_symlink(oci, make_bundle, canary):
    def mutate(cfg):
        cfg["process"]["cwd"] = "/evil/work"
    b = bundle_with_link(make_bundle, "pwd", "/evil", str(canary.path), mutate)
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()


def test_masked_path_through_symlink(oci, make_bundle, canary):
    def mutate(cfg):
        cfg["linux"]["maskedPaths"].append("/evil")
    b = bundle_with_link(make_bundle, "true", "/evil", str(canary.file), mutate)
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()


def test_readonly_path_through_symlink(oci, make_bundle, canary):
    def mutate(cfg):
        cfg["linux"]["readonlyPaths"].append("/evil")
    b = bundle_with_link(make_bundle, "true", "/evil", str(canary.path), mutate)
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()


def test_destination_through_proc_magic_link_is_refused(oci, make_bundle):
    # /proc/self/root is a magic link: following it would leave the rootfs (runc refuses
    # mounts on /proc's magic links too)
    b = make_bundle(["sh", "-c", "true"],
                    mutate=add_mount("/proc/self/root/kago-escape"))
    proc = oci("run", "--bundle", b.path, oci.new_id())
    assert proc.returncode != 0
    assert "/proc/self/root/kago-escape" in proc.stderr, proc.stderr
    assert not os.path.exists("/kago-escape")


def test_dotdot_destination_does_not_reach_host(oci, make_bundle, canary):
    dest = "/../../../../../../" + str(canary.path).lstrip("/")
    b = make_bundle(["sh", "-c", f"echo pwned > {canary.path}/pwned"], mutate=add_mount(dest))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()


def test_symlink_swapped_in_rootfs_between_runs_is_still_resolved(oci, make_bundle, canary):
    # the same bundle, first with a real directory, then with the directory replaced by a
    # symlink to the host: the second run must not follow it out
    b = make_bundle(["sh", "-c", "echo pwned > /swap/pwned"], mutate=add_mount("/swap"))
    os.mkdir(os.path.join(b.rootfs, "swap"))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    os.rmdir(os.path.join(b.rootfs, "swap"))
    os.symlink(str(canary.path), os.path.join(b.rootfs, "swap"))
    ok(oci("run", "--bundle", b.path, oci.new_id()))
    canary.assert_untouched()
