"""Loading definition files: the DSL's values become Definitions; every error names the
file and the line, before anything could start (no root needed: loading touches no host)."""

import textwrap

import pytest

from kago.manager.define.load import load
from kago.manager.definition import Capabilities, CgroupKey, IdRange
from kago.manager.errors import DefinitionError


def write(tmp_path, text, name="def.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_a_loop_defines_many_with_id_ranges_and_cgroups(tmp_path):
    path = write(tmp_path, """\
        from kago.manager.define import Container, id_range, tcp, tmpfs
        for port in range(10001, 10004):
            web = Container(f"web-{port}", image=env.get("IMAGE", "busybox"),
                            command=["httpd", "-p", str(port)], network="host",
                            ids=id_range(port * 100, 100), mounts=[tmpfs("/tmp", size="1m")],
                            cgroup={"cpu.cfs_quota_us": 30000})
            web.ready(tcp(port), timeout=3)
        """)
    d = load(path, {"IMAGE": "debian"})
    assert [c.name for c in d.containers] == ["web-10001", "web-10002", "web-10003"]
    web = d.definitions["web-10002"]
    assert web.image == "debian" and web.ids.uid_map == (IdRange(0, 1000200, 100),)
    assert web.limits.cgroup == (CgroupKey("cpu.cfs_quota_us", 30000, "cpu", "quota"),)
    assert web.hostname == "web-10002" and web.network.mode == "host"
    assert web.mounts[0].options[-1] == f"size={1 << 20}"
    assert d.containers[0].readiness.port == 10001 and not d.resident()


def test_rootfs_and_bind_sources_are_relative_to_the_file(tmp_path):
    path = write(tmp_path, """\
        from kago.manager.define import Container, bind
        Container("c", rootfs="rootfs", command="echo hi", mounts=[bind("data", "/data")])
        """)
    c = load(path).definitions["c"]
    assert c.rootfs == str(tmp_path / "rootfs")
    assert c.mounts[0].source == str(tmp_path / "data")
    assert c.command == ("/bin/sh", "-c", "echo hi")


def test_capabilities_as_an_exact_set(tmp_path):
    path = write(tmp_path, """\
        from kago.manager.define import Container
        Container("c", image="i", command=["x"], capabilities=["NET_BIND_SERVICE"])
        """)
    c = load(path).definitions["c"]
    assert c.capabilities == Capabilities(("CAP_NET_BIND_SERVICE",), ("ALL",))
    assert c.capability_set() == ("CAP_NET_BIND_SERVICE",)


def test_resident_hooks_need_the_agent(tmp_path):
    path = write(tmp_path, """\
        from kago.manager.define import Container
        c = Container("c", image="i", command=["x"])
        @c.every(ms=500, times=2)
        def tick(c):
            pass
        """)
    d = load(path)
    assert d.resident() and d.containers[0].timers[0][:2] == (500, 2)


@pytest.mark.parametrize("body,line,words", [
    ('Container("c", image="i", cgroup={"cpu.cfs_quota_us": "lots"})', 2, "invalid value"),
    ('Container("c", image="i", ports=["nope"])', 2, "port mapping"),
    ('Container("c", image="i", rootfs="/r")', 2, "exactly one of image= and rootfs="),
    ('Container("bad name!", image="i")', 2, "invalid container name"),
    ('Container("c", image="i", ids=(0, 5, 0))', 2, "invalid ID mapping"),
    ('Container("c", image="i", restart="sometimes")', 2, "restart"),
    ('Container("c", image="i", cap_add=["FLY"])', 2, "unknown capability"),
    ('Container("c", image="i", network_etc="maybe")', 2, "network_etc"),
    ('Container("c", image="i", warm="yes")', 2, "warm: 'yes': want True or False"),
    ('Container("c", image="i").on("teatime")(print)', 2, "unknown moment"),
    ('Container("c", image="i").on_pressure("disk")(print)', 2, "use memory, cpu or io"),
    ('x = Container("c", image="i")\nx.ready(42)', 3, "tcp(port)"),
    ("1 / 0", 2, "ZeroDivisionError"),
    ("Container(", 2, "syntax error"),
    ("pass", 0, "defines no container"),
])
def test_errors_name_file_and_line(tmp_path, body, line, words):
    path = write(tmp_path, "from kago.manager.define import Container\n" + body + "\n")
    with pytest.raises(DefinitionError) as err:
        load(path)
    assert err.value.line == line
    assert err.value.file == path
    assert words in str(err.value)


def test_a_missing_file(tmp_path):
    with pytest.raises(DefinitionError, match="cannot read"):
        load(str(tmp_path / "absent.py"))


def test_loading_twice_does_not_mix_definitions(tmp_path):
    a = write(tmp_path, 'from kago.manager.define import Container\nContainer("a", image="i")\n',
              "a.py")
    b = write(tmp_path, 'from kago.manager.define import Container\nContainer("b", image="i")\n',
              "b.py")
    assert [c.name for c in load(a).containers] == ["a"]
    assert [c.name for c in load(b).containers] == ["b"]
