"""A rootless holder's published ports and connection, without a kernel: the guest mappings
the in-namespace DNAT uses, the checks made before anything, slirp4netns's argv options,
the connection files (stale ones included), and publish/unpublish against a stand-in for
slirp4netns's API socket (one JSON request per connection, as slirp4netns(1) says)."""

import json
import os
import socket
import threading

import pytest

from kago.host import procfs
from kago.network import nft
from kago.network.attachment import Attachment
from kago.network.ports import PortMapping
from kago.network.rootless import command, hostfwd, outside
from kago.network.rootless.errors import ApiRefused, PrivilegedPort, RootlessNetError
from kago.network.steps import Steps

CONN = outside.Connection(pid=4242, holder_pid=4241, api_socket="/run/user/1000/kago/s.sock",
                          uid=1000, unprivileged_port_start=1024)


@pytest.mark.parametrize("text, guest", [
    ("127.0.0.1:18080:80", "10.0.2.100:18080:80/tcp"),
    ("18080:80", "10.0.2.100:18080:80/tcp"),
    ("192.0.2.7:5353:53/udp", "10.0.2.100:5353:53/udp"),
])
def test_a_published_port_is_dnatted_where_slirp_delivers_it(text, guest):
    assert str(hostfwd.guest_mapping(PortMapping.parse(text))) == guest


@pytest.mark.parametrize("text, addr", [("127.0.0.1:1:2", "127.0.0.1"), ("1:2", "0.0.0.0"),
                                        ("0.0.0.0:1:2", "0.0.0.0")])
def test_slirps_host_addr(text, addr):
    assert hostfwd.host_addr(PortMapping.parse(text)) == addr


def test_two_host_addresses_of_one_port_meet_inside():
    """slirp forwards each to GUEST_IP:port: a port number is published once per proto."""
    a, b = PortMapping.parse("127.0.0.1:18080:80"), PortMapping.parse("192.0.2.7:18080:81")
    assert not a.conflicts(b)
    assert hostfwd.guest_mapping(a).conflicts(hostfwd.guest_mapping(b))
    assert not hostfwd.guest_mapping(a).conflicts(
        hostfwd.guest_mapping(PortMapping.parse("18080:80/udp")))


@pytest.mark.parametrize("text, error", [
    ("127.0.0.1:18080:80", None),
    ("1024:80", None),
    ("127.0.0.1:80:80", PrivilegedPort),
    ("1023:80/udp", PrivilegedPort),
    ("[::1]:18080:80", RootlessNetError),
    ("127.0.0.1:5353:53/udp", RootlessNetError),
    ("127.0.0.2:5353:53/udp", RootlessNetError),
    ("192.0.2.7:5353:53/udp", None),
    ("5353:53/udp", None),
    ("127.0.0.1:5353:53/tcp", None),
])
def test_checks_before_anything_is_made(text, error):
    ports = [PortMapping.parse(text)]
    if error is None:
        hostfwd.check_early(ports, CONN)
    else:
        with pytest.raises(error) as e:
            hostfwd.check_early(ports, CONN)
        assert "\n" not in str(e.value)


def test_a_loopback_udp_port_is_fine_when_slirp_reaches_the_hosts_loopback():
    reaching = outside.Connection(1, 2, "s", 1000, 1024, host_loopback=True)
    hostfwd.check_early([PortMapping.parse("127.0.0.1:5353:53/udp")], reaching)


def test_the_hosts_floor_is_the_recorded_one_not_the_namespaces():
    low = outside.Connection(1, 2, "s", 1000, unprivileged_port_start=80)
    hostfwd.check_early([PortMapping.parse("80:80")], low)
    root = outside.Connection(1, 2, "s", 0, unprivileged_port_start=1024)
    hostfwd.check_early([PortMapping.parse("80:80")], root)


def test_nft_elements_of_guest_mappings():
    ports = hostfwd.guest_ports([PortMapping.parse("127.0.0.1:18080:80"),
                                 PortMapping.parse("18081:81")])
    assert nft.port_elements(ports, "10.89.0.2") == [
        ("dnat4_ip", "10.0.2.100 . tcp . 18080 : 10.89.0.2 . 80"),
        ("dnat4_ip", "10.0.2.100 . tcp . 18081 : 10.89.0.2 . 81")]


def test_the_journal_keeps_the_forwards_and_switches_the_nat_ports():
    att = Attachment("c1", "bridge", ports=[PortMapping.parse("127.0.0.1:18080:80")])
    plain = Steps(None, att)
    assert plain.nat_ports() == att.ports
    assert "hostfwd" not in plain._data()
    rootless = Steps(None, att, ["record", "hostfwd"], {"api_socket": "s", "ids": [3]})
    assert [str(p) for p in rootless.nat_ports()] == ["10.0.2.100:18080:80/tcp"]
    data = rootless._data()
    assert data["hostfwd"] == {"api_socket": "s", "ids": [3]}
    again = Steps.load(None, json.loads(json.dumps(data)))
    assert again.forwards == {"api_socket": "s", "ids": [3]} and again.made == data["made"]
    assert Steps.UNDO_ORDER.index("hostfwd") < Steps.UNDO_ORDER.index("nft")


@pytest.mark.parametrize("options, expected", [
    ({}, ["--disable-host-loopback", "--api-socket=s", "--exit-fd=5"]),
    ({"host_loopback": True}, ["--api-socket=s", "--exit-fd=5"]),
    ({"sandbox": True, "seccomp": True},
     ["--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", "--api-socket=s",
      "--exit-fd=5"]),
])
def test_argv_options(options, expected):
    argv = command.argv("/usr/bin/slirp4netns", 7, "s", 5, 6, **options)
    assert argv == ["/usr/bin/slirp4netns", "--configure", "--mtu=65520", *expected,
                    "--ready-fd=6", "7", "tap0"]


def test_argv_without_an_exit_fd():
    assert "--exit-fd" not in " ".join(command.argv("slirp4netns", 7, "s", None, 6))


# --- the connection's files ----------------------------------------------------------------

def write_connection(runroot, pid, facts=None):
    files = outside.paths(runroot)
    with open(files[outside.PIDFILE], "w") as f:
        f.write(f"{pid}\n")
    facts = facts if facts is not None else {
        "holder_pid": 1, "api_socket": files[outside.SOCKET], "uid": 1000,
        "unprivileged_port_start": 1024}
    with open(files[outside.FACTS], "w") as f:
        json.dump(facts, f)
    open(files[outside.SOCKET], "w").close()


def test_no_files_no_connection(tmp_path):
    assert outside.connection(str(tmp_path)) is None
    assert not outside.is_connected(str(tmp_path))


def test_a_pid_that_is_not_slirp4netns_is_stale(tmp_path):
    write_connection(str(tmp_path), os.getpid())       # a live pid, but ours, not slirp's
    assert outside.connection(str(tmp_path)) is None
    assert outside.disconnect(str(tmp_path)) is None   # nothing signalled...
    assert os.listdir(tmp_path) == []                  # ...and the stale files are gone


@pytest.mark.parametrize("pidfile", ["", "x\n", "-\n"])
def test_an_unreadable_pid_file_is_stale(tmp_path, pidfile):
    write_connection(str(tmp_path), 1)
    (tmp_path / outside.PIDFILE).write_text(pidfile)
    assert outside.connection(str(tmp_path)) is None


def test_is_ours_wants_slirp4netns_with_this_socket(monkeypatch, tmp_path):
    (tmp_path / "7").mkdir()
    cmdline = tmp_path / "7" / "cmdline"
    argv = procfs.argv
    monkeypatch.setattr(command.procfs, "argv", lambda pid: argv(pid, proc=str(tmp_path)))
    cmdline.write_bytes(b"/usr/bin/slirp4netns\0--configure\0--api-socket=/r/s.sock\0007\0")
    assert outside.is_ours(7, "/r/s.sock")
    assert not outside.is_ours(7, "/other/s.sock")
    cmdline.write_bytes(b"/usr/bin/sleep\0--api-socket=/r/s.sock\0")
    assert not outside.is_ours(7, "/r/s.sock")


def test_connect_refuses_a_bad_pid():
    for pid in (0, -1, True, "12"):
        with pytest.raises(RootlessNetError, match="is not a process id"):
            outside.connect(pid, "/nonexistent")


# --- publish and unpublish against a stand-in API socket ------------------------------------

class FakeSlirp:
    """slirp4netns's API: add_hostfwd, remove_hostfwd, list_hostfwd (1.x's bare list);
    ``refuse_port``: add_hostfwd of that port fails as slirp4netns's does."""

    def __init__(self, path, refuse_port=None):
        self.path, self.refuse_port = path, refuse_port
        self.entries, self.next_id, self.requests = {}, 1, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                conn.sendall(json.dumps(self.answer(json.loads(data))).encode())

    def answer(self, request):
        self.requests.append(request["execute"])
        args = request.get("arguments", {})
        if request["execute"] == "add_hostfwd":
            if args["host_port"] == self.refuse_port:
                return {"error": {"desc": "bad request: add_hostfwd: slirp_add_hostfwd failed"}}
            entry = dict(args, id=self.next_id)
            self.entries[self.next_id] = entry
            self.next_id += 1
            return {"return": {"id": entry["id"]}}
        if request["execute"] == "remove_hostfwd":
            if self.entries.pop(args["id"], None) is None:
                return {"error": {"desc": "bad request: remove_hostfwd: bad id"}}
            return {"return": {}}
        return {"entries": list(self.entries.values())}

    def close(self):
        self.sock.close()


@pytest.fixture
def fake(tmp_path):
    slirp = FakeSlirp(str(tmp_path / "api.sock"))
    yield slirp
    slirp.close()


def ports(*texts):
    return [PortMapping.parse(t) for t in texts]


def test_publish_keeps_each_id_in_the_journals_record(fake):
    record = {"api_socket": fake.path, "ids": []}
    hostfwd.publish(record, ports("127.0.0.1:18080:80", "18081:81/udp"), CONN)
    assert record["ids"] == [1, 2]
    assert [(e["proto"], e["host_addr"], e["host_port"], e["guest_addr"], e["guest_port"])
            for e in fake.entries.values()] == [
        ("tcp", "127.0.0.1", 18080, "10.0.2.100", 18080),
        ("udp", "0.0.0.0", 18081, "10.0.2.100", 18081)]


def test_a_refused_forward_takes_back_the_ones_before_it(fake, monkeypatch):
    fake.refuse_port = 18081
    monkeypatch.setattr(hostfwd, "check_host", lambda ports, conn: None)  # no host socket
    record = {"api_socket": fake.path, "ids": []}
    with pytest.raises(ApiRefused) as e:
        hostfwd.publish(record, ports("18080:80", "18081:81"), CONN)
    assert str(e.value) == ("slirp4netns API refused add_hostfwd tcp 0.0.0.0:18081->18081: "
                            "bad request: add_hostfwd: slirp_add_hostfwd failed")
    assert fake.entries == {} and record["ids"] == []


def test_unpublish_removes_journalled_and_unjournalled_forwards_only(fake):
    mine = {"api_socket": fake.path, "ids": []}
    hostfwd.publish(mine, ports("127.0.0.1:18080:80"), CONN)
    other = {"api_socket": fake.path, "ids": []}
    hostfwd.publish(other, ports("127.0.0.1:18090:80"), CONN)
    fake.answer({"execute": "add_hostfwd", "arguments": {   # added, then the crash
        "proto": "tcp", "host_addr": "0.0.0.0", "host_port": 18081, "guest_port": 18081}})
    hostfwd.unpublish(mine, ports("127.0.0.1:18080:80", "18081:81"))
    assert mine["ids"] == []
    assert [e["host_port"] for e in fake.entries.values()] == [18090]


def test_unpublish_after_slirp4netns_ended_is_done(tmp_path):
    record = {"api_socket": str(tmp_path / "gone.sock"), "ids": [4]}
    hostfwd.unpublish(record, ports("18080:80"))
    assert record["ids"] == []
    dead = socket.socket(socket.AF_UNIX)           # a socket file nobody listens on
    dead.bind(str(tmp_path / "dead.sock"))
    dead.close()
    record = {"api_socket": str(tmp_path / "dead.sock"), "ids": [4]}
    hostfwd.unpublish(record, ports("18080:80"))
    assert record["ids"] == []


def test_published_ports_need_a_connected_runroot(tmp_path):
    with pytest.raises(RootlessNetError) as e:
        hostfwd.connection(str(tmp_path))
    assert str(e.value) == (f"published ports: the rootless network of {tmp_path} is not "
                            "connected (no slirp4netns runs for it): connect the holder "
                            "first (kago.network.rootless.outside.connect)")


def test_networks_behind_slirp_take_its_mtu_and_dns_forwarder(tmp_path):
    from kago.network import Networks
    rootless = Networks(str(tmp_path / "a"), slirp_runroot=str(tmp_path / "run"))
    assert rootless.mtu == 65520 and rootless.dns_upstream == [("10.0.2.3", 53)]
    own = Networks(str(tmp_path / "b"), slirp_runroot=str(tmp_path / "run"), mtu=9000,
                   dns_upstream=["192.0.2.53"])
    assert own.mtu == 9000 and own.dns_upstream == [("192.0.2.53", 53)]
    root = Networks(str(tmp_path / "c"))
    assert root.mtu is None and root.dns_upstream is None and root.slirp_runroot is None
    with pytest.raises(Exception, match="mtu 70000: use 68-65535"):
        Networks(str(tmp_path / "d"), mtu=70000)


def test_behind_slirp_netns_and_host_dirs_default_to_the_holders_runroot(tmp_path):
    from kago.network import Networks
    run = str(tmp_path / "run")
    rootless = Networks(str(tmp_path / "a"), slirp_runroot=run)
    assert rootless.netns_dir == f"{run}/netns"
    assert rootless.host.root == f"{run}/network-host"
    own = Networks(str(tmp_path / "b"), slirp_runroot=run, netns_dir="/x", host_dir="/y")
    assert (own.netns_dir, own.host.root) == ("/x", "/y")
    root = Networks(str(tmp_path / "c"))
    assert (root.netns_dir, root.host.root) == ("/run/netns", "/run/kago/host")


def test_the_holders_side_reads_the_recorded_connection_without_seeing_its_pid(tmp_path):
    """A pid it cannot see (a pid namespace of the holder's own) is no reason to refuse:
    the API socket's answer is."""
    write_connection(str(tmp_path), 999999999)
    assert outside.connection(str(tmp_path)) is None        # outside: not a live slirp
    conn = hostfwd.connection(str(tmp_path))                # inside: as recorded
    assert (conn.pid, conn.uid, conn.unprivileged_port_start) == (999999999, 1000, 1024)
    assert outside.recorded(str(tmp_path)) == conn
    os.unlink(tmp_path / outside.SOCKET)
    with pytest.raises(RootlessNetError, match="is not connected"):
        hostfwd.connection(str(tmp_path))


def test_publishing_through_a_slirp4netns_that_ended_says_not_connected(tmp_path):
    dead = socket.socket(socket.AF_UNIX)           # its socket file, nobody listening
    dead.bind(str(tmp_path / outside.SOCKET))
    dead.close()
    record = {"api_socket": str(tmp_path / outside.SOCKET), "ids": []}
    conn = outside.Connection(999999999, 1, record["api_socket"], 1000, 1024)
    with pytest.raises(RootlessNetError) as e:
        hostfwd.publish(record, ports("127.0.0.1:18080:80"), conn)
    assert str(e.value) == (f"published ports: the rootless network of {tmp_path} is not "
                            "connected (no slirp4netns runs for it): connect the holder "
                            "first (kago.network.rootless.outside.connect) "
                            "(Connection refused)")
    assert record["ids"] == []
