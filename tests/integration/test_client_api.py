"""kago.Client on the real kernel: each method, against its own manager root
(kago.manager.testing.KagoEnv: its own nft table, bridge and netns names), leaving nothing
behind; and the code blocks of docs/api.md, run as they are written."""

import os
import re
import textwrap

import pytest

import kago
from conftest import wait_for
from kago.client import ClientError
from kago.errors import KagoError
from kago.manager.errors import BadValue, NoSuchContainer
from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api.md")


@pytest.fixture(name="client")
def client_fixture(kmt, monkeypatch):
    monkeypatch.setenv("KAGO_SUPERVISOR_IDLE", "3")  # the supervisor this process spawns
    yield kago.Client(root=kmt.root)
    pid = kmt.supervisor_pid()  # the fixture's end waits for the one this process spawned
    if pid:
        kmt.pids_seen.add(pid)


def test_run_detached_gives_a_container_and_its_methods_work(client):
    c = client.run("busybox", ["sh", "-c", "echo out; echo err >&2; trap 'exit 0' TERM; "
                               "while :; do sleep 0.1; done"],
                   name="kmt-api", network="none", labels={"role": "test"}, env={"A": "1"})
    assert isinstance(c, kago.Container)
    assert (c.name, c.image, c.state, c.labels) == ("kmt-api", "busybox", "running",
                                                   {"role": "test"})
    assert c.pid > 0 and c.exit_code is None and c.status.startswith("Up ")
    assert c.attrs["State"]["Pid"] == c.pid and "A=1" in c.attrs["Config"]["Env"]
    assert client.container("kmt-api") == c and client.container(c.id[:12]).name == "kmt-api"
    assert c in client.containers() and c in client.containers(all=True)
    assert wait_for(lambda: "err\n" in list(c.logs()), 10, 0.05)
    assert sorted(c.logs()) == ["err\n", "out\n"] and len(list(c.logs(tail=1))) == 1
    entries = list(client.log_entries(c.id))
    assert sorted((e["stream"], e["log"]) for e in entries) == [("stderr", "err\n"),
                                                                ("stdout", "out\n")]
    assert client.inspect("kmt-api")["Id"] == c.id
    assert any("sleep" in line or "sh" in line for line in client.top("kmt-api"))
    [row] = client.stats([c.id], interval=0.1)
    assert row["Name"] == "kmt-api"
    stopped = c.stop(timeout=5)
    assert (stopped.state, stopped.exit_code, stopped.pid) == ("exited", 0, 0)
    assert c not in client.containers() and c in client.containers(all=True)
    assert sorted(c.logs(follow=True)) == ["err\n", "out\n"]  # ended: follow returns
    restarted = client.restart("kmt-api")
    assert restarted.state == "running" and restarted.pid not in (0, c.pid)
    client.kill("kmt-api")
    assert client.wait("kmt-api") == 137
    assert c.reload().exit_code == 137
    c.remove()
    with pytest.raises(NoSuchContainer) as err:
        client.container("kmt-api")
    assert "\n" not in str(err.value) and "kmt-api" in str(err.value)


def test_run_attached_returns_the_ended_container(client):
    c = client.run("busybox", "echo done; exit 3", name="kmt-api-fg", detach=False,
                   network="none")
    assert (c.state, c.exit_code, c.pid) == ("exited", 3, 0)
    assert list(c.logs()) == ["done\n"]
    c.remove()
    gone = client.run("busybox", ["true"], name="kmt-api-rm", detach=False, network="none",
                      remove=True)
    assert (gone.name, gone.exit_code) == ("kmt-api-rm", 0)
    assert client.containers(all=True) == []  # removed before run returned


def test_create_start_pause_and_errors_are_kago_errors(client):
    c = client.create("busybox", ["sleep", "30"], name="kmt-api-c", network="none",
                      memory="32m", cpus=0.5)
    assert c.state == "created" and c.pid == 0
    assert c.attrs["HostConfig"]["Memory"] == 32 << 20
    assert c.start().state == "running"
    client.pause("kmt-api-c")
    assert c.reload().state == "paused"
    client.unpause("kmt-api-c")
    assert c.reload().state == "running"
    client.remove("kmt-api-c", force=True)
    with pytest.raises(BadValue, match="^colour: not a container option"):
        client.create("busybox", colour="blue")
    with pytest.raises(BadValue, match="memory"):
        client.run("busybox", memory="lots")
    with pytest.raises(KagoError):
        client.run("no-such-image", network="none")
    with pytest.raises(ClientError, match="tty"):
        client.run("busybox", tty=True)
    assert client.containers(all=True) == []


def test_images_commit_export_save_load_and_networks(client, kmt, tmp_path):
    names = [n for info in client.images.list() for n in info.names]
    assert "busybox" in " ".join(names)
    client.images.tag("busybox", "kmt-api-tagged:v1")
    assert client.images.get("kmt-api-tagged:v1")["RepoTags"]
    assert client.images.remove("kmt-api-tagged:v1") == ["Untagged: kmt-api-tagged:v1"]
    c = client.run("busybox", ["sh", "-c", "echo hello > /made"], detach=False, network="none",
                   name="kmt-api-commit")
    info = client.commit(c.id, "kmt-api-made", changes=['CMD ["cat", "/made"]'])
    assert client.images.get("kmt-api-made")["Config"]["Cmd"] == ["cat", "/made"]
    client.export(c.id, str(tmp_path / "fs.tar"))
    assert os.path.getsize(tmp_path / "fs.tar") > 0
    c.remove()
    made = client.run("kmt-api-made", detach=False, network="none")
    assert list(made.logs()) == ["hello\n"]
    made.remove()
    client.images.save("kmt-api-made", str(tmp_path / "img.tar"))
    client.images.remove("kmt-api-made")
    [loaded] = client.images.load(str(tmp_path / "img.tar"))
    assert loaded.id == info.id
    imported = client.images.import_(kmt.rootfs, "kmt-api-imported", changes=["ENV B=2"])
    assert "B=2" in client.images.get(imported.id)["Config"]["Env"]
    net_id = client.networks.create(f"kmt{kmt.tag}x", bridge=f"km{kmt.tag}x0",
                                    subnet="10.250.251.0/24", internal=True)
    assert len(net_id) == 12
    assert f"kmt{kmt.tag}x" in [n["name"] for n in client.networks.list()]
    assert client.networks.get(f"kmt{kmt.tag}x")["containers"] == []
    client.networks.remove(f"kmt{kmt.tag}x")
    assert f"kmt{kmt.tag}x" not in [n["name"] for n in client.networks.list()]
    assert client.prune()["errors"] == []


def test_up_group_and_down_of_a_definition_file(client, tmp_path):
    path = tmp_path / "def.py"
    path.write_text(textwrap.dedent("""
        from kago.manager.define import Container, env

        for i in range(2):
            Container(f"kmt-api-g{i}", image="busybox", network="none",
                      command=["sh", "-c", "echo " + env.get("WORD", "none") + "; sleep 30"],
                      stop_signal="SIGKILL")
        """))
    lines = []
    run = client.up(str(path), env={"WORD": "hi"}, out=lines.append)
    assert run.exit_code == 0 and "kmt-api-g0" in lines[0] and "kmt-api-g1" in lines[0]
    assert [c.name for c in run.containers] == ["kmt-api-g0", "kmt-api-g1"]
    assert all(c.state == "running" for c in client.group(str(path)))
    assert wait_for(lambda: list(client.logs("kmt-api-g1")) == ["hi\n"], 10, 0.05)
    client.down(str(path), timeout=2)
    assert client.group(str(path)) == [] and client.containers(all=True) == []


def code_blocks(path):
    with open(path) as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_code_blocks_of_docs_api_md_run(client, kmt, tmp_path, monkeypatch):
    """Each block runs in one namespace, in order, as a reader would paste them; the root is
    this test's (KAGO_ROOT), the working directory a scratch one."""
    blocks = code_blocks(DOCS)
    assert len(blocks) >= 3
    monkeypatch.setenv("KAGO_ROOT", kmt.root)
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "docs_api"}
    for block in blocks:
        exec(compile(block, DOCS, "exec"), scope)  # noqa: S102 - the documentation's own code
    assert client.containers(all=True) == []  # the examples clean up after themselves
