"""kago.Client without the kernel: its definition builder (the one function ``run`` and
``create`` use) and its lazy import from the package."""

import subprocess
import sys

import pytest

from kago.client import container_definition
from kago.manager.definition import LogOptions, Mount, Network, Port, RestartPolicy
from kago.manager.errors import BadValue


def test_options_become_a_checked_definition():
    d = container_definition("busybox", "echo hi", name="web", env={"A": "1"},
                             ports=["8080:80"], volumes=["/srv:/data:ro"], tmpfs=["/run"],
                             memory="64m", cpus=0.5, restart="on-failure:3",
                             labels={"tier": "web"}, entrypoint="", cap_drop=["NET_RAW"])
    assert d.command == ("/bin/sh", "-c", "echo hi")
    assert (d.name, d.image, d.network) == ("web", "busybox", Network())
    assert d.env == ("A=1",) and d.ports == (Port(8080, 80),)
    assert d.mounts == (Mount("bind", "/data", "/srv", True),
                        Mount("tmpfs", "/run", "tmpfs", False, ("nosuid", "nodev",
                                                                "mode=1777")))
    assert (d.limits.memory, d.limits.cpus) == (64 << 20, 0.5)
    assert d.restart == RestartPolicy("on-failure", 3)
    assert d.label_dict == {"tier": "web"} and d.entrypoint == ()
    assert d.capabilities.drop == ("CAP_NET_RAW",)
    assert d.seccomp == "default" and d.log == LogOptions()  # the defaults


def test_a_rootfs_directory_is_made_absolute_and_remove_is_auto_remove(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = container_definition(None, ["true"], rootfs="root", remove=True)
    assert d.rootfs == str(tmp_path / "root") and d.auto_remove is True


@pytest.mark.parametrize("options, text", [
    ({"colour": "blue"}, "colour: not a container option"),
    ({"memory": "lots"}, "memory: invalid size"),
    ({"ports": ["80:80:80:80"]}, "ports:"),
    ({"restart": "sometimes"}, "restart"),
    ({"cap_add": ["NOT_A_CAP"]}, "NOT_A_CAP"),
    ({"remove": True, "restart": "always"}, "remove: remove and restart"),
])
def test_a_bad_option_is_one_line_naming_it(options, text):
    with pytest.raises(BadValue) as err:
        container_definition("busybox", **options)
    assert text in str(err.value) and "\n" not in str(err.value)


def test_an_image_or_a_rootfs_is_needed():
    with pytest.raises(BadValue, match="give an image or a rootfs"):
        container_definition()


def test_import_kago_loads_neither_the_client_nor_the_manager():
    code = ("import sys, kago; a = sorted(m for m in sys.modules if m.startswith(('kago.client',"
            " 'kago.manager'))); kago.Client; print(a, 'kago.client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "[] True\n"
