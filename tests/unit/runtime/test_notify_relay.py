"""runtime.notify: what is relayed to the host's notify socket, and when the relay stops."""

import os
import socket

import pytest

from kago.runtime import notify


def test_ready_line_is_runcs_test():
    assert notify.ready_line(b"READY=1") == b"READY=1"
    assert notify.ready_line(b"READY=1\nSTATUS=up\n") == b"READY=1"
    assert notify.ready_line(b"STATUS=x\nREADY=1") is None  # the datagram must begin with it
    assert notify.ready_line(b"") is None


@pytest.fixture
def pair(tmp_path):
    os.mkdir(tmp_path / notify.DIR)
    container = notify.bind(str(tmp_path))
    host_path = str(tmp_path / "host.sock")
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(host_path)
    host.settimeout(2)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.connect(str(tmp_path / notify.DIR / notify.SOCKET))
    yield container, host_path, host, sender
    host.close()
    sender.close()


def test_socket_is_open_to_every_user(tmp_path, pair):
    mode = os.stat(tmp_path / notify.DIR / notify.SOCKET).st_mode & 0o777
    assert mode == 0o777


def test_relay_passes_ready_and_mainpid_only(pair):
    container, host_path, host, sender = pair
    sender.send(b"STATUS=starting")
    sender.send(b"READY=1\nSTATUS=serving")
    assert notify.relay(container, host_path, 4242, lambda: True) is True
    assert [host.recv(100), host.recv(100)] == [b"READY=1\n", b"MAINPID=4242\n"]
    host.settimeout(0.1)
    with pytest.raises((TimeoutError, socket.timeout)):
        host.recv(100)


def test_relay_ends_when_the_container_is_gone(pair):
    container, host_path, host, _sender = pair
    checks = []
    assert notify.relay(container, host_path, 1, lambda: checks.append(1) and False) is False
    assert checks == [1]


def test_unreachable_host_is_an_error_naming_it(pair, tmp_path):
    container = pair[0]
    with pytest.raises(Exception, match=r"notify socket .*nope\.sock: no such file"):
        notify.relay(container, str(tmp_path / "nope.sock"), 1, lambda: True)


def test_abstract_address():
    assert notify._address("@name") == "\0name"
    assert notify._address("/run/x.sock") == "/run/x.sock"
