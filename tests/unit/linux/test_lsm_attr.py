"""kago.linux.lsm against a fake /proc (the development host has no AppArmor or SELinux)."""

import os

import pytest

from kago.errors import KernelError
from kago.linux import lsm


def _proc(tmp_path, apparmor_dir=True):
    attr = tmp_path / "thread-self" / "attr"
    (attr / "apparmor").mkdir(parents=True) if apparmor_dir else attr.mkdir(parents=True)
    for name in ("exec",) + (("apparmor/exec",) if apparmor_dir else ()):
        (attr / name).write_text("")
    return str(tmp_path)


def test_apparmor_profile_goes_to_attr_apparmor_exec(tmp_path):
    proc = _proc(tmp_path)
    lsm.apply(apparmor_profile="docker-default", proc=proc)
    assert (tmp_path / "thread-self/attr/apparmor/exec").read_text() == "exec docker-default"
    assert (tmp_path / "thread-self/attr/exec").read_text() == ""


def test_apparmor_before_linux_5_8_uses_attr_exec(tmp_path):
    proc = _proc(tmp_path, apparmor_dir=False)
    lsm.apply(apparmor_profile="p", proc=proc)
    assert (tmp_path / "thread-self/attr/exec").read_text() == "exec p"


def test_selinux_label_goes_to_attr_exec(tmp_path):
    proc = _proc(tmp_path)
    lsm.apply(selinux_label="system_u:system_r:container_t:s0", proc=proc)
    assert (tmp_path / "thread-self/attr/exec").read_text() == "system_u:system_r:container_t:s0"


def test_nothing_to_apply_writes_nothing(tmp_path):
    lsm.apply(proc=str(tmp_path))  # no attr tree at all: must not even look
    assert os.listdir(tmp_path) == []


def test_a_refused_write_names_the_file(tmp_path):
    with pytest.raises(KernelError) as e:
        lsm.apply(selinux_label="x", proc=str(tmp_path))  # no such attr file
    assert "thread-self/attr/exec" in str(e.value)
