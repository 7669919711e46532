"""The channel carries the seccomp listener fd from the container process to the runtime."""

import os

from kago.process.channel import Channel


def test_send_fd_and_receive_it():
    a, b = Channel.pair()
    r, w = os.pipe()
    try:
        a.send_fd(w, t="seccomp")
        msg = b.recv(expect=("seccomp",), with_fds=True)
        assert msg["t"] == "seccomp" and len(msg["fds"]) == 1
        got = msg["fds"][0]
        assert got not in (r, w)
        os.write(got, b"hi")
        assert os.read(r, 2) == b"hi"
        os.close(got)
    finally:
        os.close(r)
        os.close(w)
        a.close()
        b.close()


def test_plain_messages_have_no_fds():
    a, b = Channel.pair()
    try:
        a.send(t="ready")
        assert b.recv(with_fds=True) == {"t": "ready", "fds": []}
        a.send(t="ready")
        assert b.recv() == {"t": "ready"}
    finally:
        a.close()
        b.close()
