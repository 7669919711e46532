"""kago.Client without the kernel: its configuration builder (the one function ``run`` and
``create`` use) and its lazy import from the package."""

import subprocess
import sys

import pytest

from kago.client import ClientError, container_config
from kago.manager.errors import BadValue


def test_options_become_the_managers_checked_configuration():
    cfg = container_config("busybox", "echo hi", name="web", env={"A": "1"}, ports=["8080:80"],
                           volumes=["/srv:/data:ro"], tmpfs=["/run"], memory="64m", cpus=0.5,
                           restart="on-failure:3", labels={"tier": "web"}, entrypoint="",
                           cap_drop=["NET_RAW"])
    assert cfg["command"] == ["/bin/sh", "-c", "echo hi"]
    assert (cfg["name"], cfg["image"], cfg["network"]) == ("web", "busybox", "bridge")
    assert cfg["env"] == ["A=1"] and cfg["ports"] == ["8080:80/tcp"]
    assert [m["destination"] for m in cfg["mounts"]] == ["/data", "/run"]
    assert (cfg["memory"], cfg["cpus"], cfg["restart"]) == (64 << 20, 0.5, "on-failure:3")
    assert cfg["labels"] == {"tier": "web"} and cfg["entrypoint"] == []
    assert cfg["seccomp"] == "default" and cfg["log"]["max_files"] == 3  # new_config's defaults


def test_a_rootfs_directory_is_made_absolute_and_remove_is_auto_remove(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = container_config(None, ["true"], rootfs="root", remove=True)
    assert cfg["rootfs"] == str(tmp_path / "root") and cfg["auto_remove"] is True


@pytest.mark.parametrize("options, error, text", [
    ({"colour": "blue"}, ClientError, "colour: not a container option"),
    ({"memory": "lots"}, BadValue, "memory: invalid size"),
    ({"ports": ["80:80:80:80"]}, BadValue, "ports:"),
    ({"restart": "sometimes"}, BadValue, "restart"),
    ({"cap_add": ["NOT_A_CAP"]}, BadValue, "NOT_A_CAP"),
    ({"remove": True, "restart": "always"}, BadValue, "--rm and --restart"),
])
def test_a_bad_option_is_one_line_naming_it(options, error, text):
    with pytest.raises(error) as err:
        container_config("busybox", **options)
    assert text in str(err.value) and "\n" not in str(err.value)


def test_an_image_or_a_rootfs_is_needed():
    with pytest.raises(BadValue, match="give an image or a rootfs"):
        container_config()


def test_import_kago_loads_neither_the_client_nor_the_manager():
    code = ("import sys, kago; a = sorted(m for m in sys.modules if m.startswith(('kago.client',"
            " 'kago.manager'))); kago.Client; print(a, 'kago.client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "[] True\n"
