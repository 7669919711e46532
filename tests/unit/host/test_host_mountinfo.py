"""kago.host.mountinfo: the one mountinfo parser, from text."""

import pytest

from kago.host import mountinfo

TEXT = (
    "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
    "23 22 0:22 / /proc rw,nosuid - proc proc rw\n"
    "40 22 0:35 / /var/lib/kago/with\\040space rw - overlay over\\134lay rw,lowerdir=/a\n"
    "41 40 0:36 / /var/lib/kago/with\\040space/dev rw - tmpfs tmpfs rw\n"
    "42 22 0:37 /sub /var/lib/kago2 rw - tmpfs tmpfs rw\n"
    "garbage line\n"
    "43 22 0:38 / /run/netns/a rw - nsfs nsfs rw\n"
    "44 22 0:39 / /run/netns/a rw - tmpfs tmpfs rw\n"
    "45 22 0:40 / /nosuper rw - tmpfs src\n"
)


def test_parse_skips_malformed_lines_and_unescapes_points_and_sources():
    mounts = mountinfo.parse(TEXT)
    assert [m.id for m in mounts] == [22, 23, 40, 41, 42, 43, 44, 45]
    m = mounts[2]
    assert (m.parent, m.point, m.fstype, m.source) == (
        22, "/var/lib/kago/with space", "overlay", "over\\lay")
    assert m.super_options == "rw,lowerdir=/a"
    assert mounts[4].root == "/sub"
    assert mounts[-1].super_options == ""


def test_under_is_a_directory_prefix_not_a_string_prefix():
    mounts = mountinfo.parse(TEXT)
    assert [m.id for m in mountinfo.under(mounts, "/var/lib/kago/with space")] == [40, 41]
    assert [m.id for m in mountinfo.under(mounts, "/var/lib/kago")] == [40, 41]
    assert mountinfo.under(mounts, "/var/lib/kag") == []


def test_at_is_the_topmost_mount_at_a_point():
    mounts = mountinfo.parse(TEXT)
    assert mountinfo.at(mounts, "/run/netns/a").fstype == "tmpfs"
    assert mountinfo.at(mounts, "/nowhere") is None


@pytest.mark.parametrize("field, expected", [
    ("plain", "plain"), ("a\\040b", "a b"), ("tab\\011", "tab\t"), ("back\\134", "back\\"),
    ("short\\04", "short\\04"), ("notoct\\x41z", "notoct\\x41z"),
])
def test_unescape(field, expected):
    assert mountinfo.unescape(field) == expected


def test_read_of_this_process():
    assert any(m.point == "/" for m in mountinfo.read())
