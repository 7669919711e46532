"""Busybox containers run by kago-oci in the network namespaces kago.network makes.

The manager's contract with the runtime is one spec entry, ``{"type": "network", "path":
"/run/netns/<name>"}``, plus bind mounts of the /etc files: these tests build exactly that and
check what a container sees (its interfaces in a fresh /sys, its names in /etc/hosts) and what
reaches it (a peer by name, a published port from the host's 127.0.0.1 and from a container).
"""

import shutil
import socket
from pathlib import Path

import pytest
from test_lifecycle import detached, ok

from kago.network.files import netns_etc_mounts, write_etc_files
from kago.network.testing import netenv_fixture, run, wait_port  # noqa: F401 (fixture)


def joined(att, etc=None):
    """A mutate() for make_bundle: join the attachment's netns, bind the /etc files."""
    def mutate(cfg):
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = att.netns_path
        for dest, src in (etc or {}).items():
            cfg["mounts"].append({"destination": dest, "type": "bind", "source": src,
                                  "options": ["rbind", "ro"]})
        cfg["root"]["readonly"] = False
    return mutate


def http_server(oci, make_bundle, att, etc=None, text="hello"):
    """A running busybox httpd on port 80 of the attachment's netns, serving ``text``."""
    script = f"mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www"
    bundle = make_bundle(["sh", "-c", script], mutate=joined(att, etc),
                         process__terminal=False)
    cid = oci.new_id("web")
    ok(detached(oci, "run", "--detach", "--bundle", bundle.path, cid))
    return cid


def in_container(oci, make_bundle, att, script, etc=None):
    bundle = make_bundle(["sh", "-c", script], mutate=joined(att, etc), process__terminal=False)
    return oci("run", "--bundle", bundle.path, oci.new_id("cli"), timeout=30)


def http_get(host, port):
    """The body from http://host:port/ (a bare HTTP/1.0 request: no proxy, no env)."""
    with socket.create_connection((host, port), timeout=3) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode().strip()


def test_fresh_sysfs_shows_the_containers_interfaces(oci, make_bundle, netenv):
    att = netenv.nets.attach("sys1")
    proc = in_container(oci, make_bundle, att, "ls /sys/class/net; echo --; ip -o addr show eth0")
    assert proc.returncode == 0, proc.stderr
    listing, addresses = proc.stdout.split("--")
    assert listing.split() == ["eth0", "lo"]
    assert f"{att.ipv4}/{att.prefixlen}" in addresses


def test_none_mode_has_only_loopback_up(oci, make_bundle, netenv):
    att = netenv.nets.attach("none1", mode="none")
    proc = in_container(oci, make_bundle, att, "ls /sys/class/net; cat /sys/class/net/lo/operstate"
                        "; ip -o addr show lo")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "lo" and lines[1] in ("unknown", "up")
    assert "127.0.0.1/8" in proc.stdout
    assert "eth0" not in proc.stdout


def test_two_containers_reach_each_other_by_name(oci, make_bundle, netenv, tmp_path):
    nets = netenv.nets
    web = nets.attach("web1", hostname="web", aliases=("www",), etc_dir=str(tmp_path / "web"))
    cli = nets.attach("cli1", hostname="client", etc_dir=str(tmp_path / "cli"))
    web_etc = write_etc_files(str(tmp_path / "web"), "web", web, nets.peers("kt"))
    cli_etc = write_etc_files(str(tmp_path / "cli"), "client", cli, nets.peers("kt"))
    http_server(oci, make_bundle, web, web_etc, text="from-web")
    wait_port(lambda: http_get(web.ipv4, 80))
    script = ("cat /etc/hostname; wget -q -O - http://web/ && wget -q -O - http://www/ && "
              f"grep -w client /etc/hosts | grep -q {cli.ipv4} && echo ok")
    proc = in_container(oci, make_bundle, cli, script, cli_etc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["client", "from-web", "from-web", "ok"]


def test_published_port_from_host_loopback_and_from_a_container(oci, make_bundle, netenv):
    nets = netenv.nets
    web = nets.attach("web2", ports=["127.0.0.1:18481:80", "18482:80"])
    cli = nets.attach("cli2")
    http_server(oci, make_bundle, web, text="published")
    assert wait_port(lambda: http_get("127.0.0.1", 18481)) == "published"
    assert http_get("127.0.0.1", 18482) == "published"
    # another container through the host: the gateway's address, DNAT'd back onto the bridge
    proc = in_container(oci, make_bundle, cli, f"wget -q -O - http://{cli.gateway}:18482/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "published"
    # a port bound to 127.0.0.1 only is not published on the bridge's address
    proc = in_container(oci, make_bundle, cli, f"wget -q -T 2 -O - http://{cli.gateway}:18481/")
    assert proc.returncode != 0


def test_detach_takes_the_port_away(oci, make_bundle, netenv):
    nets = netenv.nets
    web = nets.attach("web3", ports=["18483:80"])
    cid = http_server(oci, make_bundle, web, text="soon-gone")
    assert wait_port(lambda: http_get("127.0.0.1", 18483)) == "soon-gone"
    ok(oci("delete", "--force", cid))
    nets.detach("web3")
    with pytest.raises(OSError):
        http_get("127.0.0.1", 18483)


def test_etc_netns_files_show_inside_like_ip_netns_exec(oci, make_bundle, netenv):
    """Files an operator puts in /etc/netns/<name>/ are what ``ip netns exec`` shows in /etc;
    netns_etc_mounts gives the manager the same bind mounts for the container."""
    att = netenv.nets.attach("etc1")
    etc = Path("/etc/netns") / att.netns_name
    made_parent = not etc.parent.exists()
    etc.mkdir(parents=True)
    try:
        (etc / "resolv.conf").write_text("nameserver 192.0.2.44\n")
        mounts = dict((dest, src) for src, dest in netns_etc_mounts(att.netns_name))
        assert mounts == {"/etc/resolv.conf": str(etc / "resolv.conf")}
        seen_by_ip = run(["ip", "netns", "exec", att.netns_name, "cat", "/etc/resolv.conf"])
        proc = in_container(oci, make_bundle, att, "cat /etc/resolv.conf", mounts)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == seen_by_ip.stdout == "nameserver 192.0.2.44\n"
    finally:
        shutil.rmtree(etc.parent if made_parent else etc)
