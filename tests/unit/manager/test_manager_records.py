"""Records, names and user-namespace ID ranges (files in a temp dir; no root needed)."""

import pytest

from kago.manager.errors import (
    AmbiguousContainer,
    BadValue,
    NameInUse,
    NoSuchContainer,
)
from kago.manager.paths import Paths
from kago.manager.records import Records, check_name, new_state


def records(tmp_path):
    return Records(Paths(str(tmp_path / "root"), str(tmp_path / "run")))


def save(recs, cid, name):
    recs.reserve_name(name, cid)
    recs.save({"id": cid, "name": name, "created": 1.0, "state": new_state()})


def test_lookup_by_id_name_and_unique_prefix(tmp_path):
    recs = records(tmp_path)
    save(recs, "a1" * 32, "web")
    save(recs, "a2" * 32, "db")
    assert recs.resolve("web")["id"] == "a1" * 32
    assert recs.resolve("a2" * 32)["name"] == "db"
    assert recs.resolve("a1a")["name"] == "web"
    with pytest.raises(AmbiguousContainer):
        recs.resolve("a")
    for bad in ("nope", "../x", "", "."):
        with pytest.raises(NoSuchContainer):
            recs.resolve(bad)


def test_a_name_has_one_owner_until_released(tmp_path):
    recs = records(tmp_path)
    save(recs, "b1" * 32, "web")
    with pytest.raises(NameInUse, match="bbbb|b1b1b1"):
        recs.reserve_name("web", "b2" * 32)
    recs.remove("b1" * 32)
    recs.reserve_name("web", "b2" * 32)  # free again


def test_a_name_file_without_a_record_is_taken_over(tmp_path):
    recs = records(tmp_path)
    recs.reserve_name("ghost", "c1" * 32)  # a crash between reserve and save
    recs.reserve_name("ghost", "c2" * 32)


def test_update_is_load_change_save(tmp_path):
    recs = records(tmp_path)
    save(recs, "d1" * 32, "x")
    recs.update("d1" * 32, lambda r: r["state"].update(exit_code=3))
    assert recs.load("d1" * 32)["state"]["exit_code"] == 3


@pytest.mark.parametrize("name", ["a", "web-1", "A.b_c"])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "x" * 129, "é"])
def test_bad_names(name):
    with pytest.raises(BadValue):
        check_name(name)
