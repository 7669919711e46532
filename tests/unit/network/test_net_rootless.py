"""The pure parts of kago.network.rootless: slirp4netns's argv, its API messages and
replies, and the host-port rules."""

import json
import os

import pytest

from kago.network.rootless import api, command, exitwatch, hostports
from kago.network.rootless.errors import ApiRefused, PrivilegedPort, SlirpMissing


def test_argv_configures_the_tap_with_the_options_rootless_runtimes_use():
    assert command.argv("/usr/bin/slirp4netns", 4242, "/run/user/1000/s.sock", 5, 7) == [
        "/usr/bin/slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
        "--api-socket=/run/user/1000/s.sock", "--exit-fd=5", "--ready-fd=7", "4242", "tap0"]


@pytest.mark.parametrize("pid", [0, -1, "12", True, None])
def test_argv_refuses_what_is_not_a_pid(pid):
    with pytest.raises(ValueError, match="not a process id"):
        command.argv("/usr/bin/slirp4netns", pid, "s", 5, 7)


def test_argv_refuses_an_mtu_slirp4netns_refuses():
    with pytest.raises(ValueError, match="1280-65521"):
        command.argv("/usr/bin/slirp4netns", 1, "s", 5, 7, mtu=65522)


def test_find_names_the_debian_package_when_missing(tmp_path):
    with pytest.raises(SlirpMissing) as e:
        command.find(str(tmp_path / "slirp4netns"))
    assert str(e.value) == (f"slirp4netns not found ({tmp_path}/slirp4netns): install it "
                            f"(apt-get install slirp4netns)")


def test_add_hostfwd_message_is_slirps_json():
    message = api.add_hostfwd("tcp", "127.0.0.1", 46001, 80)
    assert json.loads(api.encode(message)) == {
        "execute": "add_hostfwd",
        "arguments": {"proto": "tcp", "host_addr": "127.0.0.1", "host_port": 46001,
                      "guest_port": 80}}
    assert api.describe(message) == "add_hostfwd tcp 127.0.0.1:46001->80"
    with_guest = api.add_hostfwd("udp", "0.0.0.0", 5353, 53, guest_addr="10.0.2.100")
    assert with_guest["arguments"]["guest_addr"] == "10.0.2.100"


def test_remove_and_list_messages():
    assert api.remove_hostfwd(3) == {"execute": "remove_hostfwd", "arguments": {"id": 3}}
    assert api.describe(api.remove_hostfwd(3)) == "remove_hostfwd id 3"
    assert api.list_hostfwd() == {"execute": "list_hostfwd"}


def test_encode_keeps_requests_under_slirps_4096_bytes():
    with pytest.raises(ValueError, match="limit is 4095"):
        api.encode({"execute": "add_hostfwd", "arguments": {"pad": "x" * 4096}})


def test_decode_returns_the_return_value():
    assert api.decode(api.add_hostfwd("tcp", "127.0.0.1", 1, 2), b'{"return": {"id": 42}}') \
        == {"id": 42}
    assert api.decode(api.remove_hostfwd(42), b'{"return": {}}') == {}


def test_decode_accepts_slirp4netns_1x_bare_list_reply():
    entries = {"entries": [{"id": 1, "proto": "tcp", "host_addr": "127.0.0.1",
                            "host_port": 46001, "guest_addr": "10.0.2.100", "guest_port": 80}]}
    assert api.decode(api.list_hostfwd(), json.dumps(entries).encode()) == entries
    with pytest.raises(ApiRefused, match="reply without 'return'"):
        api.decode(api.remove_hostfwd(1), json.dumps(entries).encode())


@pytest.mark.parametrize("reply, reason", [
    (b'{"error": {"desc": "bad request: remove_hostfwd: bad arguments.id"}}',
     "bad request: remove_hostfwd: bad arguments.id"),
    (b'{"error": "nope"}', "nope"),
    (b"not json", "unreadable reply b'not json'"),
    (b"[1]", "unexpected reply [1]"),
])
def test_decode_turns_refusals_into_one_line(reply, reason):
    with pytest.raises(ApiRefused) as e:
        api.decode(api.remove_hostfwd(7), reply)
    assert str(e.value) == f"slirp4netns API refused remove_hostfwd id 7: {reason}"


def test_a_non_root_caller_may_not_publish_below_the_floor():
    hostports.check_privileged(1024, 1000, 1024)
    hostports.check_privileged(80, 0, 1024)
    hostports.check_privileged(80, 1000, 0)
    with pytest.raises(PrivilegedPort) as e:
        hostports.check_privileged(80, 1000, 1024)
    assert str(e.value) == (
        "host port 80 is below net.ipv4.ip_unprivileged_port_start (1024) and uid 1000 may "
        "not bind it: publish a port >= 1024, or lower the sysctl "
        "(sysctl net.ipv4.ip_unprivileged_port_start=80)")


def test_unprivileged_port_start_reads_the_sysctl(tmp_path):
    path = tmp_path / "start"
    path.write_text("443\n")
    assert hostports.unprivileged_port_start(str(path)) == 443
    assert hostports.unprivileged_port_start(str(tmp_path / "missing")) == 1024


@pytest.mark.parametrize(("text", "expected"), [
    ("6.1.0-57-amd64", (6, 1)), ("6.18.44-fc-v1300", (6, 18)), ("5.15.0-91-generic", (5, 15)),
    ("6.9", (6, 9)), ("6.10-rc1", (6, 10)), ("x", None), ("6.", None)])
def test_kernel_release_is_read_as_major_minor(text, expected):
    assert exitwatch.release(text) == expected


def test_the_watcher_is_tail_waiting_for_the_holder():
    args = exitwatch.argv(4242)
    assert args[0].endswith("/tail") and args[1:] == ["--pid=4242", "-f", "/dev/null"]
    assert not exitwatch.is_watcher(os.getpid(), 4242)
