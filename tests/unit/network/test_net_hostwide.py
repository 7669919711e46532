"""The host-wide registries (published ports, ip_forward's saved value) and the kernel's
listeners as /proc/net shows them."""

import os
import socket

from kago.network import hostwide
from kago.network.ports import PortMapping


class Sysctl:
    def __init__(self, value):
        self.value, self.writes = value, []

    def read(self):
        return self.value

    def write(self, value):
        self.value = str(value)
        self.writes.append(self.value)


def network(tmp_path, root, name):
    d = tmp_path / root / "networks"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text("{}")
    return str(tmp_path / root)


def test_ip_forward_goes_back_only_after_the_last_network_of_any_state_dir(tmp_path):
    host = hostwide.HostState(str(tmp_path / "host"))
    fwd = Sysctl("0")
    a, b = network(tmp_path, "a", "n1"), network(tmp_path, "b", "n2")
    host.need_forwarding(a, "n1", fwd.read, fwd.write)
    host.need_forwarding(b, "n2", fwd.read, fwd.write)  # already on: "was" stays "0"
    assert fwd.writes == ["1"] and len(host.forwarding_users()) == 2
    host.done_forwarding(a, "n1", fwd.read, fwd.write)
    assert fwd.value == "1"
    host.done_forwarding(b, "n2", fwd.read, fwd.write)
    assert fwd.writes == ["1", "0"] and host.forwarding_users() == []
    assert not os.path.exists(tmp_path / "host" / "ip_forward.json")


def test_ip_forward_that_was_on_stays_on_and_a_deleted_roots_network_holds_nothing(tmp_path):
    host = hostwide.HostState(str(tmp_path / "host"))
    fwd = Sysctl("1")
    a = network(tmp_path, "a", "n1")
    host.need_forwarding(a, "n1", fwd.read, fwd.write)
    host.done_forwarding(a, "n1", fwd.read, fwd.write)
    assert fwd.writes == []
    fwd = Sysctl("0")
    gone, b = network(tmp_path, "gone", "n3"), network(tmp_path, "b", "n2")
    host.need_forwarding(gone, "n3", fwd.read, fwd.write)
    host.need_forwarding(b, "n2", fwd.read, fwd.write)
    os.unlink(os.path.join(gone, "networks", "n3.json"))  # its root deleted by hand
    host.done_forwarding(b, "n2", fwd.read, fwd.write)
    assert fwd.value == "0"


def test_port_entries_of_a_deleted_root_are_dropped(tmp_path):
    host = hostwide.HostState(str(tmp_path / "host"))
    live = tmp_path / "live" / "attachments"
    live.mkdir(parents=True)
    (live / "c1.json").write_text("{}")
    entry = dict(PortMapping(20001, 80).to_dict(), cid="c1", state=str(tmp_path / "live"))
    ghost = dict(PortMapping(20002, 80).to_dict(), cid="c2", state=str(tmp_path / "gone"))
    with host.ports_lock():
        host.write_ports([entry, ghost])
        assert host.ports() == [entry]


def test_listeners_show_tcp_listeners_and_bound_udp_sockets_of_both_families():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp6, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as idle:
        udp.bind(("127.0.0.1", 0))
        tcp6.bind(("::1", 0))
        tcp6.listen(1)
        idle.bind(("127.0.0.1", 0))  # bound, not listening: takes no connections
        assert ("127.0.0.1", udp.getsockname()[1]) in hostwide.listeners("udp")
        tcp = hostwide.listeners("tcp")
        assert ("::1", tcp6.getsockname()[1]) in tcp
        assert all(port != idle.getsockname()[1] for _, port in tcp)


def test_a_listener_conflicts_on_a_shared_address_only():
    found = {("127.0.0.1", 20005), ("0.0.0.0", 20006), ("10.1.2.3", 20007)}
    assert hostwide.listener_conflict(PortMapping(20005, 80), found) == ("127.0.0.1", 20005)
    assert hostwide.listener_conflict(PortMapping(20006, 80, host_ip="127.0.0.1"), found)
    assert hostwide.listener_conflict(PortMapping(20007, 80, host_ip="127.0.0.1"), found) \
        is None
    assert hostwide.listener_conflict(PortMapping(20008, 80), found) is None


def test_the_value_an_older_kago_saved_is_the_one_restored(tmp_path):
    host = hostwide.HostState(str(tmp_path / "host"))
    fwd = Sysctl("1")  # an older kago turned it on, and saved "0"
    a = network(tmp_path, "a", "n1")
    host.need_forwarding(a, "n1", fwd.read, fwd.write, was="0")
    host.done_forwarding(a, "n1", fwd.read, fwd.write)
    assert fwd.value == "0"
