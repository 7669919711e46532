"""devices_v2 (attaching the v2 device filter) and limits' v2 device path, against a recording
fake of the bpf(2) seam: which calls are made, in which order, and what errors become. The
real kernel runs the same code in tests/integration/test_device_filter_kernel.py."""

import errno
import os

import pytest

from kago.errors import CgroupError, KernelError
from kago.kernel import bpf
from kago.linux.cgroups import V2Manager, devices_v2


class FakeBpf:
    """Programs attached to directories, by id; every call recorded."""

    def __init__(self, attached=(), replace=True, fail=None, hidden=(), races=0):
        self.attached = list(attached)
        self.replace = replace
        self.fail = fail or {}  # call name -> errno
        self.hidden = set(hidden)
        self.calls = []
        self.fds = {}  # fd -> program id
        self.next_id = 100
        self.races = races  # times another runtime swaps the program just before our attach

    def _maybe_fail(self, name, path=None):
        if name in self.fail:
            raise KernelError(f"bpf({name})", self.fail[name], path)

    def _fd(self, prog_id):
        fd = os.open("/dev/null", os.O_RDONLY)  # a real fd, so os.close works and leaks show
        self.fds[fd] = prog_id
        return fd

    def prog_query(self, fd, path=None):
        self.calls.append("query")
        self._maybe_fail("BPF_PROG_QUERY", path)
        return list(self.attached)

    def prog_load(self, code, license, name=b""):
        self.calls.append(("load", license, name, len(code) // 8))
        self._maybe_fail("BPF_PROG_LOAD")
        self.next_id += 1
        return self._fd(self.next_id)

    def prog_attach(self, fd, prog_fd, replace_fd=None, path=None):
        new = self.fds[prog_fd]
        self._maybe_fail("BPF_PROG_ATTACH", path)
        if replace_fd is None:
            self.calls.append(("attach", new))
            self.attached.append(new)
        else:
            old = self.fds[replace_fd]
            if self.races:
                self.races -= 1
                self.attached = [500 + self.races]
                self.calls.append("raced")
                raise KernelError("bpf(BPF_PROG_ATTACH)", errno.ENOENT, path)
            self.calls.append(("replace", old, new))
            self.attached[self.attached.index(old)] = new

    def prog_detach(self, fd, prog_fd, path=None):
        self.calls.append(("detach", self.fds[prog_fd]))
        self.attached.remove(self.fds[prog_fd])

    def prog_fd_by_id(self, prog_id):
        if prog_id in self.hidden:
            raise KernelError("bpf(BPF_PROG_GET_FD_BY_ID)", errno.EPERM)
        return self._fd(prog_id)

    def replace_supported(self):
        return self.replace


@pytest.fixture
def fake(monkeypatch):
    def install(**kw):
        f = FakeBpf(**kw)
        for name in ("prog_query", "prog_load", "prog_attach", "prog_detach", "prog_fd_by_id",
                     "replace_supported"):
            monkeypatch.setattr(bpf, name, getattr(f, name))
        return f
    return install


def _open_fds():
    return set(os.listdir("/proc/self/fd"))


def test_a_new_filter_is_loaded_with_runcs_license_and_attached(fake, tmp_path):
    f = fake()
    before = _open_fds()
    assert devices_v2.set_filter(str(tmp_path), "deny a\nallow c 1:3 rwm") is True
    assert f.calls == [("load", "Apache", b"kago_devices", 13), "query", ("attach", 101)]
    assert f.attached == [101]
    assert _open_fds() == before  # the directory's and the programs' fds are closed


def test_one_old_program_is_replaced_in_one_step(fake, tmp_path):
    f = fake(attached=[7])
    devices_v2.set_filter(str(tmp_path), "allow a")
    assert f.calls[-1] == ("replace", 7, 101)
    assert f.attached == [101]


def test_a_program_replaced_by_someone_else_meanwhile_is_looked_up_again(fake, tmp_path):
    f = fake(attached=[7], races=2)
    devices_v2.set_filter(str(tmp_path), "allow a")
    assert f.calls[1:] == ["query", "raced", "query", "raced", "query", ("replace", 500, 101)]
    assert f.attached == [101]
    f = fake(attached=[7], races=50)
    with pytest.raises(CgroupError, match="the attached program kept changing, 8 tries"):
        devices_v2.set_filter(str(tmp_path), "allow a")


@pytest.mark.parametrize("old, replace", [([7], False), ([7, 8], True), ([7, 8], False)])
def test_otherwise_attach_first_then_detach_the_old_ones(fake, tmp_path, old, replace):
    f = fake(attached=old, replace=replace)
    devices_v2.set_filter(str(tmp_path), "allow a")
    assert f.calls[2:] == [("attach", 101)] + [("detach", i) for i in old]
    assert f.attached == [101]


def test_programs_hidden_by_an_lsm_are_left_as_runc_leaves_them(fake, tmp_path):
    f = fake(attached=[7, 8], hidden={8})
    devices_v2.set_filter(str(tmp_path), "allow a")
    assert f.attached == [8, 101]
    f = fake(attached=[8], hidden={8})
    devices_v2.set_filter(str(tmp_path), "allow a")
    assert f.calls[2:] == [("attach", 101)]
    assert f.attached == [8, 101]


def test_a_refused_load_is_a_cgroup_error_on_one_line(fake, tmp_path):
    fake(fail={"BPF_PROG_LOAD": errno.EINVAL})
    with pytest.raises(CgroupError) as info:
        devices_v2.set_filter(str(tmp_path), "deny a\nallow c 1:3 rw")
    assert str(info.value) == (f"cgroup {tmp_path}: cannot set the eBPF device filter: "
                               "bpf(BPF_PROG_LOAD): invalid argument")
    assert info.value.errno == errno.EINVAL


def test_eperm_is_skipped_only_where_runc_skips_it(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(devices_v2, "in_user_namespace", lambda: False)
    fake(fail={"BPF_PROG_ATTACH": errno.EPERM})
    assert devices_v2.set_filter(str(tmp_path), "deny a\nallow c 1:3 rwm") is False
    with pytest.raises(CgroupError, match="operation not permitted"):
        devices_v2.set_filter(str(tmp_path), "deny a\nallow c 1:3 rw")  # restricts access
    fake(fail={"BPF_PROG_ATTACH": errno.EINVAL})
    with pytest.raises(CgroupError, match="invalid argument"):
        devices_v2.set_filter(str(tmp_path), "allow a")
    monkeypatch.setattr(devices_v2, "in_user_namespace", lambda: True)
    fake(fail={"BPF_PROG_LOAD": errno.EPERM})
    assert devices_v2.set_filter(str(tmp_path), "deny a") is False


def test_this_process_is_in_the_initial_user_namespace():
    assert devices_v2.in_user_namespace() is False


def test_detach_all_and_attached(fake, tmp_path):
    f = fake(attached=[3, 4])
    assert devices_v2.attached(str(tmp_path)) == [3, 4]
    devices_v2.detach_all(str(tmp_path))
    assert f.attached == []


# --- Manager.apply / update on a fake v2 tree --------------------------------------------------

def _v2(tmp_path):
    """A cgroup2 root offering pids, and the container's directory below it."""
    (tmp_path / "cgroup.controllers").write_text("pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("pids\n")
    d = tmp_path / "c1"
    d.mkdir()
    for name in ("cgroup.type", "cgroup.subtree_control", "pids.max"):
        (d / name).write_text("")
    (d / "cgroup.controllers").write_text("pids\n")
    return V2Manager("/c1", {"unified": str(d)})


def test_apply_attaches_the_planned_filter_to_the_cgroup2_directory(fake, tmp_path):
    f = fake()
    m = _v2(tmp_path)
    writes = m.apply({"devices": [{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 1, "minor": 3}],
                      "pids": {"limit": 9}})
    assert [tuple(w) for w in writes] == [("unified", "<eBPF device filter>",
                                           "deny a\nallow c 1:3 rwm"),
                                          ("unified", "pids.max", "9")]
    assert f.attached == [101]
    assert (tmp_path / "c1/pids.max").read_text() == "9"
    assert not (tmp_path / "c1/<eBPF device filter>").exists()


def test_update_leaves_the_filter_alone_as_runc_update(fake, tmp_path):
    f = fake()
    m = _v2(tmp_path)
    m.update({"devices": [{"allow": True, "access": "rwm"}], "pids": {"limit": 3}})
    assert f.calls == [] and f.attached == []


def test_an_attach_failure_names_the_field_and_nothing_after_is_written(fake, tmp_path):
    fake(fail={"BPF_PROG_ATTACH": errno.EBUSY})
    m = _v2(tmp_path)
    with pytest.raises(CgroupError) as info:
        m.apply({"devices": [{"allow": False, "access": "rwm"}], "pids": {"limit": 9}})
    assert info.value.field == "linux.resources.devices"
    assert (tmp_path / "c1/pids.max").read_text() == ""


def test_a_missing_cgroup2_directory_is_refused_before_any_bpf_call(fake, tmp_path):
    f = fake()
    m = V2Manager("/gone", {"unified": str(tmp_path / "gone")})
    with pytest.raises(CgroupError, match="the cgroup does not exist"):
        m.apply({"devices": [{"allow": False, "access": "rwm"}]})
    assert f.calls == []
