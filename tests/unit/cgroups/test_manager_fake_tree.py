"""Manager logic against a fake cgroupfs in tmp_path: no root, no real cgroups, no signals.

A plain directory tree stands in for the hierarchies. What it cannot imitate (the kernel
creating control files on mkdir, EBUSY while tasks remain, freezing taking time) is covered by
tests/integration/test_cgroups_placement.py.
"""

import errno
import os

import pytest

from kago.errors import CgroupError
from kago.linux.cgroups import V1Manager, V2Manager, v1, v2tree

# the fake trees' parents go to a ledger of the test's own (conftest.own_ledger)
pytestmark = pytest.mark.usefixtures("own_ledger")


def _v1(tmp_path, path="kago-t/c1", names=("memory", "pids", "freezer")):
    for name in names:
        (tmp_path / name).mkdir(exist_ok=True)
    return V1Manager("/" + path, {n: str(tmp_path / n / path) for n in names})


def _tree(tmp_path):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


def test_create_makes_every_directory_and_remembers_them(tmp_path):
    m = _v1(tmp_path)
    m.create()
    assert all(os.path.isdir(d) for d in m.paths().values())
    assert str(tmp_path / "memory/kago-t") in m.created
    assert len(m.created) == 6  # parent and leaf in three hierarchies
    assert m.exists()


def test_create_keeps_what_was_already_there(tmp_path):
    (tmp_path / "memory/kago-t").mkdir(parents=True)
    m = _v1(tmp_path)
    m.create()
    assert str(tmp_path / "memory/kago-t") not in m.created
    m.destroy()
    assert (tmp_path / "memory/kago-t").is_dir()  # not ours: left in place
    assert not (tmp_path / "pids/kago-t").exists()


def test_failed_create_removes_what_it_made(tmp_path):
    m = _v1(tmp_path)
    (tmp_path / "freezer/kago-t").write_text("in the way")  # the third hierarchy fails
    before = _tree(tmp_path)
    with pytest.raises(CgroupError) as info:
        m.create()
    assert info.value.path == str(tmp_path / "freezer/kago-t")
    assert "a file of that name exists" in str(info.value)
    assert _tree(tmp_path) == before
    assert m.created == []


def test_destroy_is_deepest_first_and_idempotent(tmp_path):
    m = _v1(tmp_path)
    m.create()
    m.destroy()
    assert _tree(tmp_path) == ["freezer", "memory", "pids"]
    assert m.created == [] and not m.exists()
    m.destroy()  # already gone is fine


def test_destroy_leaves_a_shared_parent_holding_another_container(tmp_path):
    m = _v1(tmp_path)
    m.create()
    (tmp_path / "memory/kago-t/other").mkdir()
    m.destroy()
    assert _tree(tmp_path) == ["freezer", "memory", "memory/kago-t", "memory/kago-t/other",
                               "pids"]


def test_a_parent_kago_made_goes_with_the_last_container_whichever_made_it(tmp_path):
    first, second = _v1(tmp_path, "grp/c1"), _v1(tmp_path, "grp/c2")
    first.create()
    second.create()                    # the parent was there: not in its own record
    assert str(tmp_path / "memory/grp") not in second.created
    first.destroy()                    # the maker goes first; the parent still holds c2
    assert (tmp_path / "memory/grp/c2").is_dir()
    second.destroy()
    assert _tree(tmp_path) == ["freezer", "memory", "pids"]


def test_a_parent_made_again_by_someone_else_is_not_kagos(tmp_path, own_ledger):
    first = _v1(tmp_path, "grp/c1")
    first.create()
    for name in ("memory", "pids", "freezer"):   # removed and made again behind kago's back
        (tmp_path / name / "grp").rename(tmp_path / "old")  # (kept: no inode reused, as on
        (tmp_path / name / "grp").mkdir()                   # kernfs, which never reuses one)
        (tmp_path / "old/c1").rmdir()
        (tmp_path / "old").rmdir()
    second = _v1(tmp_path, "grp/c2")
    second.create()
    second.destroy()
    assert (tmp_path / "memory/grp").is_dir() and (tmp_path / "pids/grp").is_dir()
    assert os.listdir(own_ledger) == []          # the stale entries went too


def test_destroy_removes_child_cgroups_of_the_leaf(tmp_path):
    m = _v1(tmp_path)
    m.create()
    (tmp_path / "memory/kago-t/c1/inner/deeper").mkdir(parents=True)
    m.destroy()
    assert _tree(tmp_path) == ["freezer", "memory", "pids"]


def test_destroy_reports_the_leaf_it_cannot_remove_and_removes_the_rest(tmp_path):
    m = _v1(tmp_path)
    m.create()
    (tmp_path / "pids/kago-t/c1/stray").write_text("")
    with pytest.raises(CgroupError) as info:
        m.destroy(timeout=0.05)
    assert info.value.path == str(tmp_path / "pids/kago-t/c1")
    assert info.value.errno == errno.ENOTEMPTY
    assert not (tmp_path / "memory/kago-t").exists()
    assert m.created == [str(tmp_path / "pids/kago-t"), str(tmp_path / "pids/kago-t/c1")]


def test_pids_walks_child_cgroups_and_deduplicates(tmp_path):
    m = _v1(tmp_path)
    m.create()
    leaf = tmp_path / "pids/kago-t/c1"
    (leaf / "cgroup.procs").write_text("30\n10\n")
    (leaf / "sub").mkdir()
    (leaf / "sub/cgroup.procs").write_text("20\n10\n")
    (leaf / "sub/empty").mkdir()  # a cgroup that went away between listing and reading
    assert m.pids() == [10, 20, 30]


def test_pids_of_a_removed_cgroup_is_empty(tmp_path):
    assert _v1(tmp_path).pids() == []


def test_v1_pids_prefer_the_pids_hierarchy_then_freezer(tmp_path):
    assert _v1(tmp_path)._pids_dir().endswith("/pids/kago-t/c1")
    assert _v1(tmp_path, names=("memory", "freezer"))._pids_dir().endswith("/freezer/kago-t/c1")
    assert _v1(tmp_path, names=("memory",))._pids_dir().endswith("/memory/kago-t/c1")


def test_add_names_the_file_on_failure(tmp_path):
    m = _v1(tmp_path)
    with pytest.raises(CgroupError) as info:
        m.add(1234)
    assert info.value.path.endswith("/memory/kago-t/c1/cgroup.procs")
    assert info.value.errno == errno.ENOENT


def test_fill_cpuset_copies_from_the_nearest_filled_ancestor(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)
    for d, cpus, mems in ((tmp_path, "0-3\n", "0\n"), (tmp_path / "a", "", ""),
                          (tmp_path / "a/b", "", "")):
        (d / "cpuset.cpus").write_text(cpus)
        (d / "cpuset.mems").write_text(mems)
    v1.fill_cpuset(str(tmp_path / "a/b"))
    assert (tmp_path / "a/b/cpuset.cpus").read_text() == "0-3"
    assert (tmp_path / "a/cpuset.mems").read_text() == "0"


def test_v1_freeze_writes_and_reads_freezer_state(tmp_path):
    (tmp_path / "freezer.state").write_text("THAWED\n")
    v1.freeze_dir(str(tmp_path))  # a plain file "freezes" at once
    assert v1.freezer_state(str(tmp_path)) == "FROZEN"
    v1.thaw_dir(str(tmp_path))
    assert v1.freezer_state(str(tmp_path)) == "THAWED"


def test_v2_freeze_timeout_thaws_again(tmp_path):
    (tmp_path / "cgroup.freeze").write_text("0")
    (tmp_path / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    with pytest.raises(CgroupError, match="not frozen after 0.05s, thawed again") as info:
        v2tree.freeze_dir(str(tmp_path), timeout=0.05)
    assert info.value.path.endswith("cgroup.events")
    assert (tmp_path / "cgroup.freeze").read_text() == "0"


def test_v2_frozen_reads_cgroup_events(tmp_path):
    m = V2Manager("/c", {"unified": str(tmp_path)})
    (tmp_path / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    assert m.frozen()


def _v2_leaf(tmp_path, procs="", kill_file=True):
    d = tmp_path / "kago-t"
    d.mkdir()
    (d / "cgroup.procs").write_text(procs)
    (d / "cgroup.freeze").write_text("0")
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")  # "freezes" at once
    if kill_file:
        (d / "cgroup.kill").write_text("")
    return V2Manager("/kago-t", {"unified": str(d)}), d


def test_v2_kill_all_writes_cgroup_kill_and_signals_nobody_by_pid(tmp_path, monkeypatch):
    """Linux 5.14+: one write kills every task, frozen ones and those forking included."""
    m, d = _v2_leaf(tmp_path, "4242\n")
    monkeypatch.setattr(os, "kill", lambda *a: pytest.fail(f"os.kill{a}"))
    m.kill_all()
    assert (d / "cgroup.kill").read_text() == "1"


def test_v2_kill_all_without_cgroup_kill_freezes_signals_each_and_thaws(tmp_path, monkeypatch):
    """Before 5.14, as runc's signalAllProcesses: frozen, a task cannot fork behind the list."""
    m, d = _v2_leaf(tmp_path, "4242\n4343\n", kill_file=False)
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append(
        (pid, sig, (d / "cgroup.freeze").read_text())))
    m.kill_all()
    assert sent == [(4242, 9, "1"), (4343, 9, "1")]  # while frozen
    assert (d / "cgroup.freeze").read_text() == "0"  # thawed: the SIGKILLs land


def test_v2_other_signals_go_to_each_pid_without_freezing(tmp_path, monkeypatch):
    m, d = _v2_leaf(tmp_path, "4242\n")
    sent = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append((pid, sig)))
    m.kill_all(15)
    assert sent == [(4242, 15)] and (d / "cgroup.kill").read_text() == ""
    assert (d / "cgroup.freeze").read_text() == "0"


def test_v1_without_freezer_cannot_freeze(tmp_path):
    m = _v1(tmp_path, names=("memory",))
    assert not m.can_freeze() and not m.frozen()
    with pytest.raises(CgroupError, match="no freezer hierarchy is mounted"):
        m.freeze()


# --- a cgroup already at the container's path (another tool's, or left behind) ------------

def _v2(tmp_path, path="kago-t"):
    (tmp_path / "unified").mkdir(exist_ok=True)
    return V2Manager("/" + path, {"unified": str(tmp_path / "unified" / path)})


def test_an_empty_cgroup_at_the_path_is_reused_and_removed_at_destroy(tmp_path):
    """As runc: the container takes it over, and destroy() removes the path it used."""
    for name in ("memory", "pids", "freezer"):
        (tmp_path / name / "kago-t/c1").mkdir(parents=True)
        (tmp_path / name / "kago-t/c1/cgroup.procs").write_text("")
    (tmp_path / "freezer/kago-t/c1/freezer.state").write_text("THAWED\n")
    m = _v1(tmp_path)
    assert m.exists()
    m.check_reusable()
    m.create()
    leaves = sorted(m.paths().values())
    assert sorted(d for d in m.created if d in leaves) == leaves
    assert str(tmp_path / "memory/kago-t") not in m.created  # a parent that was there
    for d in leaves:  # a fake tree keeps the files the kernel would drop at rmdir
        os.unlink(d + "/cgroup.procs")
    os.unlink(str(tmp_path / "freezer/kago-t/c1/freezer.state"))
    m.destroy()
    assert not any(os.path.exists(d) for d in leaves)
    assert (tmp_path / "memory/kago-t").is_dir()


def test_a_cgroup_with_processes_is_refused(tmp_path):
    (tmp_path / "pids/kago-t/c1/sub").mkdir(parents=True)
    (tmp_path / "pids/kago-t/c1/cgroup.procs").write_text("")
    (tmp_path / "pids/kago-t/c1/sub/cgroup.procs").write_text("4242\n4243\n")
    m = _v1(tmp_path)
    with pytest.raises(CgroupError) as info:
        m.check_reusable()
    assert str(info.value) == ("cgroup /kago-t/c1: container's cgroup is not empty: "
                               "2 process(es) found")


def test_a_frozen_cgroup_is_refused_v1_and_v2(tmp_path):
    (tmp_path / "freezer/kago-t/c1").mkdir(parents=True)
    (tmp_path / "freezer/kago-t/c1/freezer.state").write_text("FROZEN\n")
    with pytest.raises(CgroupError) as info:
        _v1(tmp_path).check_reusable()
    assert "container's cgroup unexpectedly frozen" in str(info.value)
    m = _v2(tmp_path)
    os.makedirs(m.dirs["unified"])
    (tmp_path / "unified/kago-t/cgroup.events").write_text("populated 0\nfrozen 1\n")
    with pytest.raises(CgroupError) as info:
        m.check_reusable()
    assert "unexpectedly frozen" in str(info.value)
    (tmp_path / "unified/kago-t/cgroup.events").write_text("populated 0\nfrozen 0\n")
    m.check_reusable()


def test_reusable_when_only_some_hierarchies_have_it(tmp_path):
    (tmp_path / "memory/kago-t/c1").mkdir(parents=True)  # no freezer directory yet
    _v1(tmp_path).check_reusable()


def test_v2_an_empty_cgroup_at_the_path_is_reused_and_removed_at_destroy(tmp_path):
    m = _v2(tmp_path)
    os.makedirs(m.dirs["unified"])
    (tmp_path / "unified/kago-t/cgroup.events").write_text("populated 0\nfrozen 0\n")
    m.check_reusable()
    m.create()
    assert m.created == [m.dirs["unified"]]
    os.unlink(tmp_path / "unified/kago-t/cgroup.events")
    m.destroy()
    assert not os.path.exists(m.dirs["unified"])


# --- exec into a container whose cgroup hands controllers down ---------------------------------

def _exec_tree(tmp_path, monkeypatch, subtree, init_cgroup):
    """A v2 container cgroup at <mount>/kago/c1 with an init.scope child; /proc/<pid>/cgroup
    of the init says ``init_cgroup``."""
    from kago.linux.cgroups import V2Manager, common
    mount = tmp_path / "cg"
    leaf = mount / "kago" / "c1"
    (leaf / "init.scope").mkdir(parents=True)
    (leaf / "cgroup.subtree_control").write_text(subtree)
    real = common.read_text

    def fake_read(path):
        return f"0::{init_cgroup}\n" if path == "/proc/4242/cgroup" else real(path)
    monkeypatch.setattr(common, "read_text", fake_read)
    return leaf, V2Manager("/kago/c1", {"unified": str(leaf)}, [str(leaf)])


def test_exec_joins_the_containers_cgroup_when_it_hands_nothing_down(tmp_path, monkeypatch):
    leaf, m = _exec_tree(tmp_path, monkeypatch, "", "/kago/c1/init.scope")
    assert m.for_exec(4242) is m


def test_exec_joins_the_inits_cgroup_where_no_process_may_join(tmp_path, monkeypatch):
    """runc's fallback for cgroup v2 nesting (EBUSY on cgroup.procs): the init's own cgroup."""
    leaf, m = _exec_tree(tmp_path, monkeypatch, "memory pids\n", "/kago/c1/init.scope")
    e = m.for_exec(4242)
    assert e.path_in("unified") == str(leaf / "init.scope")
    assert e.created == m.created and e.path == m.path
    assert m.path_in("unified") == str(leaf)  # the container's own manager is unchanged


@pytest.mark.parametrize("init_cgroup", ["/other/init.scope", "/kago/c1/../../x", "/kago/c1x",
                                         "/kago/c1/missing"])
def test_exec_never_joins_a_cgroup_outside_the_containers(tmp_path, monkeypatch, init_cgroup):
    leaf, m = _exec_tree(tmp_path, monkeypatch, "pids\n", init_cgroup)
    assert m.for_exec(4242) is m
