"""An ended container holds nothing on the host (docker's behaviour): whoever records the end
(the supervisor reaping it, stop, kill, run, a killed supervisor's successor) releases its
network (veth, netns, IP lease, published ports) and unmounts its rootfs, keeping the
writable layer; start and restart policies set them up again. And the shared supervisor
exits on its own when it has nothing to do, even with a definition's agent subscribed.

``kmt.held(cid)`` lists what a container still holds; the fixture checks that the test left
nothing at all.
"""

import json
import os
import signal
import socket
import subprocess
import textwrap
import time

from conftest import wait_for
from kago.manager.testing import kmt_fixture, wait_http  # noqa: F401 (fixture)


def wait_until(predicate, timeout=10.0, interval=0.05):
    return wait_for(predicate, timeout, interval)  # conftest's, with the manager's pace


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cid_of(kmt, name):
    return kmt.inspect(name)["Id"]


def test_an_ended_container_holds_nothing_and_its_files_stay_reachable(kmt, tmp_path):
    port = free_port()
    proc = kmt.kago("run", "--name", "kmt-seven", "-p", f"127.0.0.1:{port}:80", "busybox",
                    "sh", "-c", "echo kept > /etc/kept; echo bye; exit 7")
    assert proc.returncode == 7, proc.stderr
    cid = cid_of(kmt, "kmt-seven")
    assert kmt.held(cid) == []          # as `kago run` returns: no wait needed
    doc = kmt.inspect("kmt-seven")
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 7
    assert doc["NetworkSettings"]["IPAddress"] == "" and doc["NetworkSettings"]["Ports"] == {}
    assert doc["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1",
                                                             "HostPort": str(port)}]}
    assert kmt.kago("ps", "-a", "--format", "{{.Ports}}", check=True).stdout.strip() == ""
    # logs, commit and export of the ended container (export mounts it for the while)
    assert kmt.kago("logs", "kmt-seven", check=True).stdout == "bye\n"
    kmt.kago("commit", "kmt-seven", "kmt-seven-image", check=True)
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-seven-image", "cat", "/etc/kept",
                   check=True).stdout
    assert out == "kept\n"
    tar = tmp_path / "fs.tar"
    kmt.kago("export", "-o", str(tar), "kmt-seven", check=True)
    listing = subprocess.run(["tar", "-tf", str(tar)], capture_output=True, text=True,
                             check=True).stdout.split()
    assert "./etc/kept" in listing and "./bin/busybox" in listing
    assert kmt.held(cid) == []
    # started again: the same writable layer, its network back, then released again
    assert kmt.kago("start", "-a", "kmt-seven").returncode == 7
    assert kmt.kago("logs", "kmt-seven", check=True).stdout == "bye\nbye\n"
    assert kmt.held(cid) == []
    kmt.kago("rmi", "kmt-seven-image", check=True)


def test_start_brings_back_the_published_port_static_ip_and_peers_hosts(kmt):
    subnet = f"10.249.{os.getpid() % 200 + 20}"
    kmt.kago("network", "create", "--subnet", f"{subnet}.0/24", "--internal", "kmtrel",
             check=True)
    port = free_port()
    kmt.kago("run", "-d", "--name", "kmt-web", "--network", "kmtrel", "--ip", f"{subnet}.9",
             "-p", f"127.0.0.1:{port}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
             check=True)
    kmt.kago("run", "-d", "--name", "kmt-peer", "--network", "kmtrel", "busybox", "sleep",
             "60", check=True)
    web = cid_of(kmt, "kmt-web")
    assert wait_http(port, "/hostname") == kmt.inspect("kmt-web")["Config"]["Hostname"] + "\n"

    def peer_hosts():
        return kmt.kago("exec", "kmt-peer", "cat", "/etc/hosts", check=True).stdout

    assert f"{subnet}.9" in peer_hosts() and "kmt-web" in peer_hosts()
    kmt.kago("stop", "-t", "1", "kmt-web", check=True)
    assert kmt.held(web) == []          # as `kago stop` returns
    assert "kmt-web" not in peer_hosts()
    assert wait_http(port, "/hostname", timeout=0.3) is None
    kmt.kago("start", "kmt-web", check=True)
    assert wait_http(port, "/hostname") == kmt.inspect("kmt-web")["Config"]["Hostname"] + "\n"
    assert kmt.inspect("kmt-web")["NetworkSettings"]["IPAddress"] == f"{subnet}.9"
    assert f"{subnet}.9" in peer_hosts() and "kmt-web" in peer_hosts()
    # restart: released and prepared again in one go
    kmt.kago("restart", "-t", "1", "kmt-web", check=True)
    assert wait_http(port, "/hostname") is not None
    kmt.kago("rm", "-f", "kmt-web", "kmt-peer", check=True)
    kmt.kago("network", "rm", "kmtrel", check=True)


def test_a_dynamic_address_on_the_default_bridge_comes_back_with_its_port(kmt):
    port = free_port()
    kmt.kago("run", "-d", "--name", "kmt-dyn", "-p", f"127.0.0.1:{port}:80", "busybox",
             "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    assert wait_http(port, "/hostname") is not None
    cid = cid_of(kmt, "kmt-dyn")
    kmt.kago("kill", "kmt-dyn", check=True)         # the supervisor learns of the end
    assert wait_until(lambda: kmt.held(cid) == [])
    kmt.kago("start", "kmt-dyn", check=True)
    assert wait_http(port, "/hostname") is not None
    assert kmt.inspect("kmt-dyn")["NetworkSettings"]["IPAddress"].startswith("10.250.")


def test_restart_on_failure_prepares_each_run_again(kmt):
    port = free_port()
    kmt.kago("run", "-d", "--name", "kmt-flaky", "-p", f"127.0.0.1:{port}:80",
             "--restart", "on-failure:2", "busybox", "sh", "-c",
             "echo try; httpd -p 80 -h /etc; sleep 1.5; exit 1", check=True)
    cid = cid_of(kmt, "kmt-flaky")
    assert wait_until(lambda: kmt.inspect("kmt-flaky")["RestartCount"] >= 1
                      and kmt.inspect("kmt-flaky")["State"]["Running"], timeout=15)
    assert wait_http(port, "/hostname", timeout=3) is not None   # a restarted run publishes
    assert wait_until(lambda: kmt.inspect("kmt-flaky")["RestartCount"] == 2
                      and kmt.inspect("kmt-flaky")["State"]["Status"] == "exited", timeout=15)
    assert kmt.kago("logs", "kmt-flaky").stdout.count("try") == 3
    assert wait_until(lambda: kmt.held(cid) == [])


def test_a_shared_network_stays_while_a_container_uses_it(kmt):
    kmt.kago("run", "-d", "--name", "kmt-owner", "busybox", "sleep", "60", check=True)
    kmt.kago("run", "-d", "--name", "kmt-guest", "--network", "container:kmt-owner",
             "busybox", "sleep", "60", check=True)
    owner = cid_of(kmt, "kmt-owner")
    kmt.kago("stop", "-t", "0", "kmt-owner", check=True)
    assert "netns" in " ".join(kmt.held(owner))  # the guest still lives in it
    out = kmt.kago("exec", "kmt-guest", "cat", "/sys/class/net/eth0/operstate",
                   check=True).stdout
    assert out.strip() == "up"
    kmt.kago("stop", "-t", "0", "kmt-guest", check=True)
    assert kmt.held(owner) == [] and kmt.held(cid_of(kmt, "kmt-guest")) == []
    # the guest cannot start before the owner (docker: join a running container)
    assert kmt.kago("start", "kmt-guest").returncode != 0
    kmt.kago("start", "kmt-owner", check=True)
    kmt.kago("start", "kmt-guest", check=True)
    out = kmt.kago("exec", "kmt-guest", "cat", "/sys/class/net/eth0/operstate",
                   check=True).stdout
    assert out.strip() == "up"
    kmt.kago("rm", "-f", "kmt-guest", "kmt-owner", check=True)


def test_a_killed_supervisors_successor_releases_what_ended_meanwhile(kmt):
    kmt.kago("run", "-d", "--name", "kmt-short", "busybox", "sleep", "1", check=True)
    cid = cid_of(kmt, "kmt-short")
    os.kill(kmt.supervisor_pid(), signal.SIGKILL)
    assert wait_until(lambda: kmt.supervisor_pid() is None)
    time.sleep(1.5)
    assert kmt.held(cid)                # nobody watched its end
    kmt.kago("run", "-d", "--name", "kmt-next", "--network", "none", "busybox", "true",
             check=True)               # a new supervisor adopts and settles it
    assert wait_until(lambda: kmt.held(cid) == [])
    assert kmt.inspect("kmt-short")["State"]["Status"] == "exited"


def _idle_settings(kmt, seconds):
    kmt.settings["supervisor"] = {"idle_timeout": seconds}
    with open(os.path.join(kmt.root, "kago.json"), "w") as f:
        json.dump(kmt.settings, f)
    kmt.env.pop("KAGO_SUPERVISOR_IDLE", None)   # the setting, not the environment


def test_the_supervisor_exits_when_idle_and_comes_back_on_demand(kmt):
    _idle_settings(kmt, 1)
    kmt.kago("run", "-d", "--name", "kmt-busy", "--network", "none", "busybox", "sleep", "2",
             check=True)
    pid = kmt.supervisor_pid()
    out = kmt.kago("system", "supervisor", check=True).stdout
    assert out == f"pid {pid}, watching 1 container(s), exits after 1 s with nothing to do\n"
    time.sleep(1.5)
    assert kmt.supervisor_pid() == pid          # watching a container: not idle
    assert wait_until(lambda: kmt.supervisor_pid() is None, timeout=6)
    assert kmt.inspect("kmt-busy")["State"]["ExitCode"] == 0
    kmt.kago("start", "kmt-busy", check=True)   # the next command starts one again
    assert kmt.supervisor_pid() not in (None, pid)


def test_an_agent_does_not_keep_the_supervisor_and_releases_after_exit_hooks(kmt, tmp_path):
    _idle_settings(kmt, 1)
    seen = tmp_path / "seen"
    definition = tmp_path / "agent.py"
    definition.write_text(textwrap.dedent(f"""
        import os
        from kago.manager.define import Container
        c = Container("kmt-hooked", image="busybox", command=["sh", "-c", "sleep 2"])

        @c.on("exit")
        def ended(c, status):
            # the rootfs is still mounted while exit hooks run
            with open({str(seen)!r}, "a") as f:
                f.write(f"{{status}} {{os.path.exists(c.rootfs + '/bin/busybox')}}\\n")
        """))
    kmt.kago("up", "--no-wait", str(definition), check=True)
    cid = cid_of(kmt, "kmt-hooked")
    assert wait_until(lambda: seen.exists() and seen.read_text() == "0 True\n", timeout=15)
    assert wait_until(lambda: kmt.held(cid) == [])      # the agent released it
    assert wait_until(lambda: kmt.supervisor_pid() is None, timeout=6)
    assert "agent: pid" in kmt.kago("ps", str(definition), check=True).stdout
    # the agent subscribes to the next supervisor and still sees ends
    kmt.kago("start", "kmt-hooked", check=True)
    assert wait_until(lambda: seen.read_text() == "0 True\n0 True\n", timeout=15)
    assert wait_until(lambda: kmt.held(cid) == [])
    kmt.kago("down", "-t", "1", str(definition), check=True)
