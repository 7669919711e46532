"""Where a container's cgroup goes, through the ``kago`` command, on the host's cgroups
(v1/hybrid here; ``./dev test-v2 tests/integration/test_manager_cgroup_parent.py`` on pure v2):
``kago run --cgroup-parent`` puts it at <parent>/kago-<id> in every hierarchy, a definition
file's ``cgroup_parent`` + ``cgroup_layout="name"`` at /<group>/<name> (haconiwa's layout), and
the limits land there; the parent directories the runtime made go with the container.
"""

import os

import pytest

import hostprobe
from conftest import wait_for
from test_manager_define import definition
from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)

CG = "/sys/fs/cgroup"


def own_cgroups(pid):
    """{controller or "unified": path} of process ``pid`` (/proc/PID/cgroup)."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _hid, names, path = line.rstrip("\n").split(":", 2)
            for name in (names.split(",") if names else ["unified"]):
                out[name.replace("name=", "")] = path
    return out


def directories(path):
    """Where cgroup ``path`` is, in each mounted hierarchy that has it."""
    found = []
    for name, (_fstype, _opts, mountpoint) in hostprobe.cgroup_mounts().items():
        if os.path.isdir(mountpoint + path):
            found.append((name, mountpoint + path))
    return found


@pytest.fixture(name="parent")
def parent_fixture(kmt):
    name = f"/kmt-{kmt.tag}-grp"
    yield name
    for _name, d in sorted(directories(name), key=lambda x: -len(x[1])):
        for sub in sorted((os.path.join(d, e) for e in os.listdir(d)
                           if os.path.isdir(os.path.join(d, e))), reverse=True):
            os.rmdir(sub)
        os.rmdir(d)
    assert directories(name) == []


def memory_limit(directory):
    for fname in ("memory.limit_in_bytes", "memory.max"):
        if os.path.exists(os.path.join(directory, fname)):
            with open(os.path.join(directory, fname)) as f:
                return int(f.read())
    return None


def test_run_cgroup_parent_places_the_cgroup_and_its_limits(kmt, parent):
    cid = kmt.kago("run", "-d", "--name", "kmt-cg", "--cgroup-parent", parent.lstrip("/"),
                   "-m", "64m", "busybox", "sleep", "120", check=True).stdout.strip()
    doc = kmt.inspect("kmt-cg")
    want = f"{parent}/kago-{cid}"
    assert doc["Kago"]["CgroupsPath"] == want and doc["HostConfig"]["CgroupParent"] == parent
    where = own_cgroups(doc["State"]["Pid"])
    memory = "memory" if "memory" in where else "unified"
    assert where[memory] == want, where
    placed = dict(directories(want))
    assert memory in placed and memory_limit(placed[memory]) == 64 << 20, placed
    assert not os.path.exists(f"{CG}/{memory}/kago-{cid}") and \
        not os.path.exists(f"{CG}/kago-{cid}")          # not at the top any more
    # the stop and the start keep it there
    kmt.kago("restart", "-t", "0", "kmt-cg", check=True)
    assert own_cgroups(kmt.inspect("kmt-cg")["State"]["Pid"])[memory] == want
    kmt.kago("rm", "-f", "kmt-cg", check=True)
    assert wait_for(lambda: directories(want) == [], 10, 0.05), directories(want)
    assert directories(parent) == []                   # the runtime made it: it went too


def test_a_definition_file_group_and_name_layout(kmt, parent, tmp_path):
    path = definition(tmp_path, f"""\
        from kago.manager.define import Container
        for n in (1, 2):
            Container(f"kmt-g{{n}}", image="busybox", command=["sleep", "120"],
                      network="none", cgroup_parent={parent!r}, cgroup_layout="name",
                      pids_limit=50, stop_signal="SIGKILL")
        """)
    kmt.kago("up", path, check=True, timeout=120)
    for n in (1, 2):
        pid = kmt.inspect(f"kmt-g{n}")["State"]["Pid"]
        where = own_cgroups(pid)
        pids = "pids" if "pids" in where else "unified"
        assert where[pids] == f"{parent}/kmt-g{n}", where
        placed = dict(directories(f"{parent}/kmt-g{n}"))
        with open(os.path.join(placed[pids], "pids.max")) as f:
            assert f.read().strip() == "50"
    kmt.kago("down", "-t", "0", path, check=True, timeout=120)
    assert wait_for(lambda: all(directories(f"{parent}/kmt-g{n}") == [] for n in (1, 2)),
                    10, 0.05)
    assert directories(parent) == []    # the group the runtime made goes with the last one


def test_a_parent_two_containers_share_goes_with_the_last_whichever_made_it(kmt, parent):
    for n in (1, 2):
        kmt.kago("run", "-d", "--name", f"kmt-cs{n}", "--network", "none", "--cgroup-parent",
                 parent, "busybox", "sleep", "120", check=True)
    kmt.kago("rm", "-f", "kmt-cs1", check=True)   # the one that made the parent goes first
    assert [name for name, _d in directories(parent)]  # the other one is still in it
    kmt.kago("rm", "-f", "kmt-cs2", check=True)
    assert directories(parent) == []
    # a parent that was there before kago stays
    mine = [mountpoint + parent for _fstype, _opts, mountpoint
            in hostprobe.cgroup_mounts().values()]
    for d in mine:
        os.makedirs(d, exist_ok=True)
    kmt.kago("run", "-d", "--name", "kmt-cs3", "--network", "none", "--cgroup-parent",
             parent, "busybox", "sleep", "120", check=True)
    kmt.kago("rm", "-f", "kmt-cs3", check=True)
    assert all(os.path.isdir(d) for d in mine)


def test_a_bad_cgroup_parent_is_refused_before_anything(kmt):
    out = kmt.kago("run", "-d", "--cgroup-parent", "/a/../b", "busybox", "true")
    assert out.returncode == 125 and out.stderr.startswith("kago: --cgroup-parent: "), out.stderr
    assert kmt.manager().records.all() == []
