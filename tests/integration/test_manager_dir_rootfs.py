"""A directory rootfs (a definition's ``rootfs=``, bootstrapped from a tarball or given as a
directory; ``kago run --rootfs``) with an ID range, through the ``kago`` command: shifted as
image layers are (an idmapped bind where the kernel allows it, else its files re-owned), so its
root owns its files, the runtime can make /etc/hosts' mount point, and it survives a stop and a
start. Without the shift this failed with "create /etc/hosts: permission denied".
"""

import os
import shutil
import subprocess
import types

import pytest

from test_manager_define import definition
from kago.manager import rootfs as manager_rootfs
from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)
from kago.runtime import Undo
from kago.storage import IdMap

START = 2_400_000


def copy_rootfs(src, dst):
    subprocess.run(["cp", "-a", src, dst], check=True)
    return dst


def owners(pid):
    with open(f"/proc/{pid}/status") as f:
        return [ln.split()[1] for ln in f if ln.startswith(("Uid:", "Gid:"))]


def test_a_directory_and_a_tarball_rootfs_with_an_id_range_run(kmt, tmp_path, rootfs_cache):
    directory = copy_rootfs(rootfs_cache, str(tmp_path / "dir-rootfs"))
    tarball = str(tmp_path / "rootfs.tar")
    subprocess.run(["tar", "--numeric-owner", "-C", rootfs_cache, "-cf", tarball, "."],
                   check=True)
    before = os.lstat(os.path.join(directory, "bin")).st_uid
    path = definition(tmp_path, f"""\
        from kago.manager.define import Container, id_range, tarball
        Container("kmt-dir", rootfs={directory!r}, command=["sh", "-c",
                  "touch /etc/made-here && id -u && sleep 120"], ids=id_range({START}, 65536),
                  network="bridge", stop_signal="SIGKILL")
        Container("kmt-tar", rootfs={str(tmp_path / "tar-rootfs")!r},
                  bootstrap=[tarball({tarball!r})], command=["sleep", "120"],
                  ids=id_range({START + 65536}, 65536), stop_signal="SIGKILL")
        """)
    kmt.kago("up", path, check=True, timeout=120)
    for name, start in (("kmt-dir", START), ("kmt-tar", START + 65536)):
        doc = kmt.inspect(name)
        assert doc["State"]["Running"], doc["State"]
        assert owners(doc["State"]["Pid"])[0] == str(start)       # its root is the range's
        out = kmt.kago("exec", name, "sh", "-c", "id -u; stat -c %u /bin /etc/passwd; "
                       "touch /root-can-write && echo ok", check=True).stdout.split()
        assert out == ["0", "0", "0", "ok"], out
        assert doc["Kago"]["Rootfs"]["shift"] in ("idmapped", "chown"), doc["Kago"]["Rootfs"]
    rootfs = kmt.inspect("kmt-dir")["Kago"]["Rootfs"]
    if rootfs["shift"] == "idmapped":            # the directory keeps its own owners
        assert os.lstat(os.path.join(directory, "bin")).st_uid == before
        assert os.lstat(os.path.join(directory, "root-can-write")).st_uid == 0
    # a stop releases the idmapped mount, the start makes it again
    kmt.kago("stop", "-t", "0", "kmt-dir", check=True)
    kmt.kago("start", "kmt-dir", check=True)
    assert kmt.kago("exec", "kmt-dir", "stat", "-c", "%u", "/etc/made-here",
                    check=True).stdout.split() == ["0"]
    kmt.kago("down", "-t", "0", path, check=True, timeout=120)
    assert not any(rootfs["path"] in line for line in open("/proc/self/mountinfo"))


def test_run_rootfs_with_a_uid_map(kmt, tmp_path, rootfs_cache):
    directory = copy_rootfs(rootfs_cache, str(tmp_path / "r"))
    out = kmt.kago("run", "--rm", "--uidmap", f"0:{START}:65536", "--rootfs", directory,
                   "sh", "-c", "id -u; stat -c %u /etc/passwd", check=True)
    assert out.stdout.split() == ["0", "0"], out.stdout


def test_the_chown_fallback_re_owns_once(tmp_path, rootfs_cache):
    """Where the kernel cannot idmap: the files become the range's, and a second container
    of the same range finds them so and changes nothing."""
    directory = copy_rootfs(rootfs_cache, str(tmp_path / "c"))
    idmap = IdMap([(0, START, 65536)])
    ctx = types.SimpleNamespace(paths=types.SimpleNamespace(container=lambda cid: str(tmp_path)))
    for _ in range(2):
        made = manager_rootfs._shifted_dir(ctx, {"id": "x"}, directory, idmap, Undo(),
                                           shift="chown")
        assert made == {"kind": "dir", "path": directory, "source": directory,
                        "shift": "chown"}
        assert os.lstat(os.path.join(directory, "bin")).st_uid == START
    shutil.rmtree(directory)


@pytest.fixture(autouse=True)
def _no_leftover_shift_mounts(tmp_path):
    yield
    with open("/proc/self/mountinfo") as f:
        assert not [ln for ln in f if str(tmp_path) in ln]
