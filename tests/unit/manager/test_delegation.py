"""Where a rootless manager's containers get cgroups (kago.manager.delegation), on fake
cgroup2 trees: delegated only when the parent of the command's cgroup is writable on a pure
v2 host, containers placed beside the command, limits of missing controllers dropped."""

from kago.manager import delegation as D


def _tree(tmp_path, own, controllers="cpu memory pids"):
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    leaf = tmp_path / own.strip("/")
    leaf.mkdir(parents=True)
    (leaf.parent / "cgroup.procs").write_text("")
    (leaf.parent / "cgroup.controllers").write_text(controllers + "\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text(f"0::{own}\n")
    return str(proc)


def test_hybrid_or_v1_delegates_nothing_and_says_why(tmp_path):
    found = D.find(str(tmp_path), str(tmp_path / "none"))
    assert found.path is None and found.controllers == ()
    assert "pure v2" in found.why and "hybrid" in found.why
    assert D.describe(found).startswith("none (this host delegates no cgroup v2 subtree")


def test_a_writable_parent_is_the_subtree_and_its_controllers_are_listed(tmp_path):
    proc = _tree(tmp_path, "/user.slice/app/runner", "memory pids")
    found = D.find(str(tmp_path), proc)
    assert found.path == "/user.slice/app"
    assert found.dir == str(tmp_path / "user.slice/app")
    assert found.controllers == ("memory", "pids")
    assert D.describe(found) == f"memory pids (delegated at {tmp_path}/user.slice/app)"
    assert D.place(found, "/kago-abc") == "/user.slice/app/kago-abc"
    assert D.place(found, "/web/w1") == "/user.slice/app/web/w1"


def test_a_command_at_the_top_of_the_tree_is_not_delegated(tmp_path):
    proc = _tree(tmp_path, "/runner")
    found = D.find(str(tmp_path), proc)
    assert found.path is None and "/runner" in found.why and "Delegate=yes" in found.why
    assert D.place(found, "/kago-abc") == "/kago-abc"


def test_a_missing_parent_is_not_delegated(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/a/b/c\n")
    assert D.find(str(tmp_path), str(proc)).path is None


def test_limits_of_controllers_not_handed_down_are_dropped():
    res = {"memory": {"limit": 1 << 25}, "pids": {"limit": 50},
           "cpu": {"quota": 50000, "period": 100000, "cpus": "0"},
           "unified": {"io.weight": "100", "memory.high": "1000000"},
           "devices": [{"allow": False, "access": "rwm"}]}
    assert sorted(D.needs(res)) == ["cpu", "cpuset", "io", "memory", "pids"]
    kept, missing = D.drop_unavailable(res, ("memory", "pids"))
    assert missing == ["cpu", "cpuset", "io"]
    assert kept == {"memory": {"limit": 1 << 25}, "pids": {"limit": 50},
                    "unified": {"memory.high": "1000000"},
                    "devices": [{"allow": False, "access": "rwm"}]}
    assert res["cpu"] == {"quota": 50000, "period": 100000, "cpus": "0"}  # not changed
    same, none = D.drop_unavailable(res, ("cpu", "cpuset", "io", "memory", "pids"))
    assert same is res and none == []
