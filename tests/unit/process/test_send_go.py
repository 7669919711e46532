"""process.parent._send_go: a child that failed before "go" gets its own error reported."""

import pytest

from kago.errors import KagoError
from kago.process.channel import Channel, ChannelClosed
from kago.process.parent import _send_go


def test_the_childs_error_wins_over_a_broken_pipe():
    ours, theirs = Channel.pair()
    theirs.send_error(KagoError("setns network namespace /x: invalid argument"))
    theirs.close()  # the child exited after reporting
    with pytest.raises(KagoError, match="setns network namespace /x: invalid argument"):
        _send_go(ours)


def test_a_child_gone_without_a_word_is_channel_closed():
    ours, theirs = Channel.pair()
    theirs.close()
    with pytest.raises(ChannelClosed):
        _send_go(ours)


def test_a_live_child_receives_go():
    ours, theirs = Channel.pair()
    _send_go(ours)
    assert theirs.recv(expect=("go",))["t"] == "go"


def test_the_childs_error_wins_over_a_reset_when_our_go_was_never_read():
    # the child failed after our "go" reached its queue: closing with unread data makes the
    # kernel report ECONNRESET once, before the error message the child sent us
    ours, theirs = Channel.pair()
    _send_go(ours)
    theirs.send_error(KagoError("mknod /dev/null: operation not permitted"))
    theirs.close()
    with pytest.raises(KagoError, match="mknod /dev/null: operation not permitted"):
        ours.recv(expect=("ready",))


def test_a_plain_oserror_from_a_step_reads_as_path_and_reason():
    from kago.process.channel import describe
    assert describe(PermissionError(13, "Permission denied", "/b")) == "/b: permission denied"
    assert describe(OSError(5, "Input/output error")) == "input/output error"
    assert describe(KagoError("mknod /dev/null: x")) == "mknod /dev/null: x"
