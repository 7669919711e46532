"""User-namespace ID ranges: the pure allocator (ids.py) on tables, and the on-disk table
(idranges.py) in a temp root."""

import pytest

from kago.manager import idranges, ids
from kago.manager.definition import IdMapping, IdRange
from kago.manager.errors import IdRangeError
from kago.manager.ids import AUTO_ID_BASE as BASE
from kago.manager.paths import Paths

K64 = 65536


def entry(uids, gids=None):
    return {"uids": uids, "gids": uids if gids is None else gids}


def req(mode="host", size=K64, uids=(), gids=()):
    """A definition's IdMapping: a mode (auto of ``size`` IDs) or explicit maps."""
    return IdMapping(mode, size, tuple(IdRange(*r) for r in uids),
                     tuple(IdRange(*r) for r in gids))


ALLOCATE = [
    # (table, the definition's IdMapping) -> (uid_map, gid_map)
    ("no user namespace", {}, req(), (None, None)),
    ("auto: the first block", {}, req("auto"), ([[0, BASE, K64]], [[0, BASE, K64]])),
    ("auto: the next free block", {"a": entry([[0, BASE, K64]])}, req("auto"),
     ([[0, BASE + K64, K64]], [[0, BASE + K64, K64]])),
    ("auto: a hole between blocks", {"a": entry([[0, BASE, K64]]),
                                     "c": entry([[0, BASE + 2 * K64, K64]])}, req("auto"),
     ([[0, BASE + K64, K64]], [[0, BASE + K64, K64]])),
    ("auto: past a small odd range, aligned", {"a": entry([[0, BASE + 10, 5]])}, req("auto"),
     ([[0, BASE + K64, K64]], [[0, BASE + K64, K64]])),
    ("auto=SIZE", {}, req("auto", 1000), ([[0, BASE, 1000]], [[0, BASE, 1000]])),
    ("auto=SIZE larger than a hole", {"a": entry([[0, BASE + K64, K64]])},
     req("auto", 131072), ([[0, BASE + 2 * K64, 131072]], [[0, BASE + 2 * K64, 131072]])),
    ("a gid taken counts too", {"a": entry([], [[0, BASE, K64]])}, req("auto"),
     ([[0, BASE + K64, K64]], [[0, BASE + K64, K64]])),
    ("explicit maps", {}, req(uids=[[0, 100000, 100]], gids=[[0, 200000, 100]]),
     ([[0, 100000, 100]], [[0, 200000, 100]])),
    ("explicit uid map: the gid map follows", {}, req(uids=[[0, 100000, 100]]),
     ([[0, 100000, 100]], [[0, 100000, 100]])),
    ("adjacent ranges are fine", {"web": entry([[0, 1000100, 100]])},
     req(uids=[[0, 1000200, 100]]), ([[0, 1000200, 100]], [[0, 1000200, 100]])),
]


@pytest.mark.parametrize("what,table,request_,want", ALLOCATE, ids=[row[0] for row in ALLOCATE])
def test_allocate(what, table, request_, want):
    before = repr(table)
    assert ids.allocate(table, request_) == want
    assert repr(table) == before  # the table is not changed


REFUSED = [
    ("a uid overlap", {"web": entry([[0, 1000100, 100]])}, req(uids=[[0, 1000150, 100]]),
     "uid range 1000150-1000249 overlaps container web's 1000100-1000199"),
    ("a gid overlap", {"web": entry([[0, 5000, 10]], [[0, 9000, 10]])},
     req(uids=[[0, 1, 10]], gids=[[0, 9005, 10]]),
     "gid range 9005-9014 overlaps container web's 9000-9009"),
    ("no block left", {"a": entry([[0, BASE, (1 << 32) - BASE]])}, req("auto"),
     "no free user-namespace ID range is left"),
    ("a size beyond 2^32", {}, req("auto", (1 << 32) - BASE + 1),
     "no free user-namespace ID range is left"),
]


@pytest.mark.parametrize("what,table,request_,error", REFUSED, ids=[row[0] for row in REFUSED])
def test_allocate_refuses(what, table, request_, error):
    with pytest.raises(IdRangeError, match=error):
        ids.allocate(table, request_)


def test_an_overlap_names_the_owner_by_name_of():
    table = {"c0ffee": entry([[0, 7000, 10]])}
    with pytest.raises(IdRangeError, match="container kmt-web's"):
        ids.allocate(table, req(uids=[[0, 7005, 1]]),
                     name_of=lambda cid: {"c0ffee": "kmt-web"}[cid])


def test_the_table_on_disk_reserves_and_releases(tmp_path):
    paths = Paths(str(tmp_path / "root"), str(tmp_path / "run"))
    (tmp_path / "root").mkdir()
    assert idranges.reserve(paths, "a", req(), str) == (None, None)
    assert idranges.read(paths) == {}
    assert idranges.reserve(paths, "a", req("auto"), str)[0] == [[0, BASE, K64]]
    assert idranges.reserve(paths, "b", req("auto"), str)[0] == [[0, BASE + K64, K64]]
    assert sorted(idranges.read(paths)) == ["a", "b"]
    idranges.release(paths, "a")
    idranges.release(paths, "a")  # twice: nothing left to release
    assert sorted(idranges.read(paths)) == ["b"]
    assert idranges.reserve(paths, "c", req("auto"), str)[0] == [[0, BASE, K64]]


def test_many_ranges_are_released_in_one_write(tmp_path):
    paths = Paths(str(tmp_path / "root"), str(tmp_path / "run"))
    (tmp_path / "root").mkdir()
    for cid in "abcd":
        idranges.reserve(paths, cid, req("auto"), str)
    table = tmp_path / "root" / "idranges.json"
    before = table.stat().st_ino
    idranges.release_many(paths, ["a", "c", "x"])  # x: unknown, nothing to release
    assert sorted(idranges.read(paths)) == ["b", "d"]
    assert table.stat().st_ino != before  # rewritten (tmp + rename)
    unchanged = table.stat().st_ino
    idranges.release_many(paths, ["a", "x"])  # nothing of them left: no write at all
    assert table.stat().st_ino == unchanged
    assert idranges.reserve(paths, "e", req("auto"), str)[0] == [[0, BASE, K64]]


# --- a user's manager: IDs of the holder's namespace, 1..N its subordinate IDs -------------

def _space(n=65536):
    from kago.host.holder import IdSpace
    return IdSpace(n, n, "alice", [(100000, n)], [(100000, n)])


def test_rootless_auto_is_carved_from_the_users_subordinate_ids():
    space = _space()
    assert ids.allocate({}, req("auto", 1000), space=space) == ([[0, 1, 1000]], [[0, 1, 1000]])
    taken = {"a": entry([[0, 1, 1000]])}
    assert ids.allocate(taken, req("auto", 1000), space=space) == (
        [[0, 1001, 1000]], [[0, 1001, 1000]])


def test_rootless_auto_beyond_the_allocation_names_the_fix():
    with pytest.raises(IdRangeError, match="no free block of 65536 IDs is left in IDs 1-65536"):
        ids.allocate({"a": entry([[0, 1, 10]])}, req("auto"), space=_space())


def test_rootless_explicit_ranges_must_lie_in_the_allocation():
    from kago.errors import UsageError
    assert ids.allocate({}, req(uids=[[0, 2000, 1000]]), space=_space()) == (
        [[0, 2000, 1000]], [[0, 2000, 1000]])
    with pytest.raises(UsageError, match="uid range 808000-808099 needs 808099 subordinate"):
        ids.allocate({}, req(uids=[[0, 808000, 100]]), space=_space())
    with pytest.raises(UsageError, match="gid range 65000-65999"):
        ids.allocate({}, req(uids=[[0, 100, 10]], gids=[[0, 65000, 1000]]), space=_space())
