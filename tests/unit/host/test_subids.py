"""/etc/subuid and /etc/subgid as shadow reads them, and carving ranges out of them."""

import pytest

from kago.host import subids

TEXT = """\
# comment
alice:100000:65536
1001:300000:1000
bob:200000:65536
alice:165536:1000
alice:bad:10
alice:500000:0
broken line
alice:400000:10:extra
"""


@pytest.mark.parametrize("name,uid,ranges", [
    ("alice", 1000, [(100000, 66536)]),              # touching ranges merged
    ("carol", 1001, [(300000, 1000)]),               # by numeric UID
    ("bob", 1002, [(200000, 65536)]),
    ("dave", 1003, []),
])
def test_parse(name, uid, ranges):
    assert subids.parse(TEXT, name, uid) == ranges


@pytest.mark.parametrize("ranges,merged", [
    ([(5, 5), (0, 5)], [(0, 10)]),                   # touching
    ([(0, 10), (5, 3)], [(0, 10)]),                  # inside
    ([(0, 10), (5, 10)], [(0, 15)]),                 # overlapping
    ([(0, 1), (2, 1)], [(0, 1), (2, 1)]),            # a gap stays
])
def test_merge(ranges, merged):
    assert subids.merge(ranges) == merged


@pytest.mark.parametrize("ranges,offset,count,out", [
    ([(100000, 65536)], 0, 100, [(100000, 100)]),
    ([(100000, 65536)], 65500, 36, [(165500, 36)]),
    ([(100000, 65536)], 65500, 37, None),            # past the end
    ([(1000, 10), (5000, 10)], 5, 10, [(1005, 5), (5000, 5)]),   # across two ranges
    ([(1000, 10)], -1, 1, None),
    ([(1000, 10)], 0, 0, None),
    ([], 0, 1, None),
])
def test_carve(ranges, offset, count, out):
    assert subids.carve(ranges, offset, count) == out


def test_read_under_a_root(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "subuid").write_text("alice:100000:65536\n")
    (tmp_path / "etc" / "subgid").write_text("alice:100000:1000\n")
    ids = subids.read("alice", 1000, 1000, root=str(tmp_path))
    assert ids.uids == ((100000, 65536),) and ids.gids == ((100000, 1000),)
    assert ids.size == 1000
    assert subids.read("bob", 1001, 1001, root=str(tmp_path)).size == 0
    assert subids.read("alice", 1000, 1000, root=str(tmp_path / "none")).uids == ()
