"""Where a container's cgroup goes: ``--cgroup-parent`` (docker's), the definition file's
``cgroup_parent`` and ``cgroup_layout`` (haconiwa's /group/name), their checks, the record's
cgroups path, and the JSON a record stores."""

import argparse
import textwrap

import pytest

from kago.cli.flags import _add_container_flags
from kago.manager.create import cgroups_path_of
from kago.manager.define.load import load
from kago.manager.definition import Definition, from_flags, from_json, to_json
from kago.manager.definition import docker_values as DV
from kago.manager.errors import BadValue, DefinitionError

CID = "ab" * 32


def flags(*argv):
    parser = argparse.ArgumentParser()
    _add_container_flags(parser)
    return from_flags(parser.parse_args(list(argv)), environ={})


def write(tmp_path, body):
    path = tmp_path / "def.py"
    path.write_text("from kago.manager.define import Container\n" + textwrap.dedent(body))
    return str(path)


@pytest.mark.parametrize("text,expected", [
    ("/kago.slice/web", "/kago.slice/web"), ("web", "/web"), ("/a//b/./", "/a/b"),
    ("/", ""), ("", "")])
def test_parent_paths_are_made_absolute_and_plain(text, expected):
    assert DV.cgroup_parent(text, "--cgroup-parent") == expected


@pytest.mark.parametrize("text", ["/a/../b", "a\0b", 5, "x" * 256])
def test_bad_parents_name_the_flag(text):
    with pytest.raises(BadValue, match="^--cgroup-parent: "):
        DV.cgroup_parent(text, "--cgroup-parent")


def test_the_flag_and_the_record_path():
    d = flags("--cgroup-parent", "kmt/web", "busybox")
    assert d.cgroup_parent == "/kmt/web" and d.cgroup_layout == "id"
    assert cgroups_path_of(d, CID, "c1") == f"/kmt/web/kago-{CID}"
    assert cgroups_path_of(flags("busybox"), CID, "c1") == f"/kago-{CID}"   # as before
    assert from_json(to_json(d)) == d
    assert "cgroup_parent" not in to_json(flags("busybox"))   # defaults are left out


def test_the_dsl_group_and_name_layout(tmp_path):
    path = write(tmp_path, """\
        Container("w1", image="busybox", cgroup_parent="/web", cgroup_layout="name")
        c = Container("w2", image="busybox")
        c.cgroup_parent = "web"
        """)
    defs = load(path).definitions
    assert cgroups_path_of(defs["w1"], CID, "w1") == "/web/w1"
    assert cgroups_path_of(defs["w2"], CID, "w2") == f"/web/kago-{CID}"
    assert cgroups_path_of(Definition(image="i", cgroup_layout="name"), CID, "w3") == "/w3"


@pytest.mark.parametrize("body,line,message", [
    ('Container("c", image="i", cgroup_layout="flat")\n', 2, 'cgroup_layout: "flat": use'),
    ('c = Container("c", image="i")\nc.cgroup_parent = "/a/../b"\n', 3,
     'cgroup_parent: "/a/../b": a cgroup path must not contain ".."'),
])
def test_dsl_errors_name_the_line(tmp_path, body, line, message):
    path = write(tmp_path, body)
    with pytest.raises(DefinitionError) as err:
        load(path)
    assert err.value.line == line and message in str(err.value), str(err.value)
