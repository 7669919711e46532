"""The detach keys of ``attach``/``start -ai``: docker's --detach-keys syntax and the escape
matcher that holds a partial sequence back."""

import pytest

from kago.cli.common import Usage
from kago.cli.terminal import DEFAULT_DETACH_KEYS, DetachMatcher, detach_keys


def test_detach_keys_syntax():
    assert detach_keys(DEFAULT_DETACH_KEYS) == b"\x10\x11"
    assert detach_keys("ctrl-a,x") == b"\x01x"
    assert detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_") == bytes([0, 27, 28, 29,
                                                                               30, 31])
    assert detach_keys("ctrl-Z") == b"\x1a"


@pytest.mark.parametrize("bad", ["ctrl-", "ctrl-1", "ab", "", "ctrl-p,,ctrl-q"])
def test_detach_keys_refuses_what_docker_does(bad):
    with pytest.raises(Usage, match="--detach-keys"):
        detach_keys(bad)


def test_matcher_passes_plain_input():
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"echo hi\r") == (b"echo hi\r", False)


def test_matcher_detaches_on_the_sequence_even_across_reads():
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"ab\x10") == (b"ab", False)  # held back: it may start the sequence
    assert m.feed(b"\x11") == (b"", True)


def test_matcher_gives_back_a_broken_sequence():
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"\x10x") == (b"\x10x", False)
    assert m.feed(b"\x10\x10\x11") == (b"\x10", True)


def test_single_key_sequence():
    m = DetachMatcher(b"q")
    assert m.feed(b"abq") == (b"ab", True)
