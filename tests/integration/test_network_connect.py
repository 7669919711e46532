"""``kago network connect`` / ``disconnect`` through the command: a running container gets
eth1 on a second network, reaches a container there by name (wget through /etc/hosts,
nslookup at its own resolver and at that network's) and is found by it; inspect lists both networks; the
connection survives stop/start; disconnect takes the interface, lease and names away; a
stopped container is connected at its next start. The fault-step tests are in
test_manager_state.py.
"""

import random
import re

import pytest

from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)


@pytest.fixture(name="second")
def second_fixture(kmt):
    """A second bridge network, and a web server on it (kmt-web, alias "www")."""
    name = f"kmt{kmt.tag}n"
    subnet = f"10.252.{random.randrange(1, 250)}.0/24"
    kmt.kago("network", "create", "--subnet", subnet, "--bridge", f"km{kmt.tag}n", name,
             check=True)
    kmt.kago("run", "-d", "--name", "kmt-web", "--network", name, "--network-alias", "www",
             "busybox", "httpd", "-f", "-p", "80", "-h", "/etc", check=True)
    yield name
    kmt.kago("rm", "-f", "kmt-web", check=True)


def ex(kmt, name, *cmd, check=True):
    return kmt.kago("exec", name, *cmd, check=check, timeout=60)


def addresses(kmt, name):
    """{ifname: ipv4} inside container ``name``."""
    out = ex(kmt, name, "ip", "-o", "-4", "addr", "show").stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^\d+: (\S+)\s+inet ([0-9.]+)/", out,
                                                          re.M)}


def answered(out):
    body = out.split("\n\n", 1)[1] if "\n\n" in out else ""
    return re.findall(r"Address:\s*([0-9.]+)\s*$", body, re.M)


def test_connect_reach_by_name_inspect_stop_start_disconnect(kmt, second):
    kmt.kago("run", "-d", "--name", "kmt-app", "busybox", "sleep", "300", check=True)
    cid = kmt.inspect("kmt-app")["Id"]
    web_ip = kmt.inspect("kmt-web")["NetworkSettings"]["IPAddress"]
    gw2 = kmt.manager().nets.get(second)["gateway"]
    assert ex(kmt, "kmt-app", "wget", "-q", "-O", "-", "http://kmt-web/hostname",
              check=False).returncode != 0           # not on its network yet

    kmt.kago("network", "connect", "--alias", "app2", second, "kmt-app", check=True)
    ips = addresses(kmt, "kmt-app")
    assert set(ips) == {"lo", "eth0", "eth1"}, ips
    doc = kmt.inspect("kmt-app")["NetworkSettings"]["Networks"]
    assert set(doc) == {kmt.settings["network"]["default_network"], second}, doc
    assert doc[second]["IPAddress"] == ips["eth1"] and doc[second]["Gateway"] == gw2
    # the default route stays on eth0
    assert "dev eth0" in ex(kmt, "kmt-app", "ip", "route", "show", "default").stdout
    # by name through /etc/hosts (wget: the C library), and at the network's resolver
    page = ex(kmt, "kmt-app", "wget", "-q", "-O", "-", "http://www/hostname").stdout
    assert page.strip() == kmt.inspect("kmt-web")["Config"]["Hostname"]
    hosts = ex(kmt, "kmt-app", "cat", "/etc/hosts").stdout
    assert re.search(rf"^{re.escape(web_ip)}\s.*\bkmt-web\b", hosts, re.M), hosts
    assert re.search(rf"^{re.escape(ips['eth1'])}\s", hosts, re.M), hosts
    out = ex(kmt, "kmt-app", "nslookup", "kmt-web", gw2).stdout
    assert answered(out) == [web_ip], out
    # its own resolver (its first network's) answers it the second network's names too,
    # and only it: a container on the first network alone does not get them
    out = ex(kmt, "kmt-app", "nslookup", "www").stdout
    assert answered(out) == [web_ip], out
    kmt.kago("run", "-d", "--name", "kmt-other", "busybox", "sleep", "300", check=True)
    out = ex(kmt, "kmt-other", "nslookup", "www", check=False).stdout
    assert answered(out) == [], out
    # and the second network's containers find it by its name and alias
    for name in ("kmt-app", "app2", cid[:12]):
        out = ex(kmt, "kmt-web", "nslookup", name).stdout
        assert answered(out) == [ips["eth1"]], (name, out)
    assert re.search(rf"^{re.escape(ips['eth1'])}\s.*\bkmt-app\b",
                     ex(kmt, "kmt-web", "cat", "/etc/hosts").stdout, re.M)
    net_doc = kmt.kago("network", "ls", "--format", "{{.Name}} {{.Containers}}",
                       check=True).stdout
    assert f"{second} 2" in net_doc.splitlines(), net_doc
    assert kmt.kago("network", "connect", second, "kmt-app").returncode != 0  # already

    # kept across stop and start (released while stopped)
    kmt.kago("stop", "-t", "0", "kmt-app", check=True)
    assert kmt.held(cid) == [], kmt.held(cid)
    assert kmt.inspect("kmt-app")["NetworkSettings"]["Networks"][second]["IPAddress"] == ""
    kmt.kago("start", "kmt-app", check=True)
    ips = addresses(kmt, "kmt-app")
    assert set(ips) == {"lo", "eth0", "eth1"}, ips
    page = ex(kmt, "kmt-app", "wget", "-q", "-O", "-", "http://kmt-web/hostname")
    assert page.returncode == 0
    assert answered(ex(kmt, "kmt-web", "nslookup", "kmt-app").stdout) == [ips["eth1"]]

    # disconnect: interface, lease, names and hosts lines go
    kmt.kago("network", "disconnect", second, "kmt-app", check=True)
    assert set(addresses(kmt, "kmt-app")) == {"lo", "eth0"}
    assert second not in kmt.inspect("kmt-app")["NetworkSettings"]["Networks"]
    out = ex(kmt, "kmt-web", "nslookup", "kmt-app", check=False)
    assert answered(out.stdout) == [], out.stdout
    assert ips["eth1"] not in ex(kmt, "kmt-web", "cat", "/etc/hosts").stdout
    assert "kmt-web" not in ex(kmt, "kmt-app", "cat", "/etc/hosts").stdout
    assert answered(ex(kmt, "kmt-app", "nslookup", "www", check=False).stdout) == []
    kmt.kago("rm", "-f", "kmt-other", check=True)
    nets = kmt.manager().nets
    assert nets.extras(cid) == []
    assert kmt.kago("network", "disconnect", second, "kmt-app").returncode != 0
    kmt.kago("network", "disconnect", "-f", second, "kmt-app", check=True)
    first = kmt.settings["network"]["default_network"]
    bad = kmt.kago("network", "disconnect", first, "kmt-app")
    assert bad.returncode != 0 and "first network" in bad.stderr, bad.stderr
    kmt.kago("rm", "-f", "kmt-app", check=True)
    kmt.kago("network", "rm", second, check=False)   # kmt-web is still on it: refused


def test_a_stopped_container_is_connected_at_its_start_and_rm_takes_all(kmt, second):
    kmt.kago("create", "--name", "kmt-app", "busybox", "sleep", "300", check=True)
    cid = kmt.inspect("kmt-app")["Id"]
    kmt.kago("network", "connect", second, "kmt-app", check=True)       # created
    assert kmt.manager().nets.extras(cid)                    # it has its netns already
    kmt.kago("start", "kmt-app", check=True)
    assert set(addresses(kmt, "kmt-app")) == {"lo", "eth0", "eth1"}
    kmt.kago("stop", "-t", "0", "kmt-app", check=True)
    kmt.kago("network", "disconnect", second, "kmt-app", check=True)
    kmt.kago("network", "connect", second, "kmt-app", check=True)       # stopped: recorded
    assert kmt.manager().nets.extras(cid) == []
    kmt.kago("start", "kmt-app", check=True)
    assert set(addresses(kmt, "kmt-app")) == {"lo", "eth0", "eth1"}
    kmt.kago("rm", "-f", "kmt-app", check=True)
    assert kmt.held(cid) == []
    assert kmt.manager().nets.extras(cid) == []


def test_connect_refuses_host_and_shared_network_modes(kmt, second):
    kmt.kago("run", "-d", "--name", "kmt-h", "--network", "host", "busybox", "sleep", "60",
             check=True)
    out = kmt.kago("network", "connect", second, "kmt-h")
    assert out.returncode != 0 and "network namespace of its own" in out.stderr, out.stderr
    out = kmt.kago("network", "connect", "nosuch", "kmt-h")
    assert out.returncode != 0 and "nosuch" in out.stderr
    kmt.kago("rm", "-f", "kmt-h", check=True)
