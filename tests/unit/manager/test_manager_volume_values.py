"""kago.manager.volumes without the kernel: names, labels, filters, who uses a volume, and
removal and prune decisions, on a scratch root with records given by a fake."""

import os
import types

import pytest

from kago.manager import volumes as V
from kago.manager.errors import BadValue


def manager(root, records=()):
    return types.SimpleNamespace(paths=types.SimpleNamespace(root=str(root)),
                                 records=types.SimpleNamespace(all=lambda: list(records)))


def record(cid, *names):
    from kago.manager import definition as D
    mounts = tuple(D.Mount("volume", f"/{n}", n) for n in names) + (D.Mount("bind", "/srv",
                                                                           "/srv"),)
    return {"id": cid, "definition": D.to_json(D.Definition(image="busybox", mounts=mounts))}


def test_names_labels_and_filters_are_checked():
    assert V.check_name("db-1.data_x") == "db-1.data_x"
    for bad in ("", "-x", "a/b", "..", "x y"):
        with pytest.raises(BadValue, match="invalid volume name"):
            V.check_name(bad)
    assert V.parse_labels(["a=1", "b", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
    with pytest.raises(BadValue, match="--label"):
        V.parse_labels(["=v"])
    assert V.parse_filters(["label=a=1", "dangling=true", "name=db"]) == [
        ("label", "a=1"), ("dangling", "true"), ("name", "db")]
    for bad in ("colour=blue", "dangling=maybe", "label"):
        with pytest.raises(BadValue, match="--filter"):
            V.parse_filters([bad])


def test_create_list_get_and_users(tmp_path):
    mgr = manager(tmp_path, [record("c1", "data"), record("c2", "data", "logs")])
    v = V.create(mgr, "data", labels={"tier": "db"})
    assert (v.name, v.labels, v.users) == ("data", {"tier": "db"}, ("c1", "c2"))
    assert v.mountpoint == str(tmp_path / "volumes" / "data" / "_data")
    assert os.path.isdir(v.mountpoint)
    assert V.create(mgr, "data").labels == {"tier": "db"}  # an existing one as it is
    assert V.ensure(mgr, "logs") == str(tmp_path / "volumes" / "logs" / "_data")
    spare = V.create(mgr)
    assert len(spare.name) == 64 and spare.users == ()
    assert [v.name for v in V.list_volumes(mgr)] == sorted(["data", "logs", spare.name])
    assert [v.name for v in V.list_volumes(mgr, ["dangling=true"])] == [spare.name]
    assert [v.name for v in V.list_volumes(mgr, ["label=tier"])] == ["data"]
    assert [v.name for v in V.list_volumes(mgr, ["label!=tier", "name=log"])] == ["logs"]
    doc = V.get(mgr, "data").inspect()
    assert (doc["Driver"], doc["Scope"], doc["Options"]) == ("local", "local", {})
    with pytest.raises(V.NoSuchVolume, match="no such volume: nope"):
        V.get(mgr, "nope")
    os.makedirs(tmp_path / "volumes" / ".removing-x-1" / "_data")  # a removal under way
    for name in (".removing-x-1", "../volumes/data", ""):
        with pytest.raises(V.NoSuchVolume):
            V.get(mgr, name)
    assert ".removing-x-1" not in V.names(mgr)


def test_a_directory_made_before_volumes_had_metadata_is_a_volume(tmp_path):
    os.makedirs(tmp_path / "volumes" / "old" / "_data")
    v = V.get(manager(tmp_path), "old")
    assert v.labels == {} and v.created.endswith("Z")


def test_remove_refuses_a_used_volume_even_with_force(tmp_path):
    mgr = manager(tmp_path, [record("c1", "data")])
    V.create(mgr, "data")
    for force in (False, True):
        with pytest.raises(V.VolumeInUse, match=r"remove data: volume is in use - \[c1\]"):
            V.remove(mgr, "data", force=force)
    with pytest.raises(V.NoSuchVolume):
        V.remove(mgr, "nope")
    V.remove(mgr, "nope", force=True)
    free = manager(tmp_path)
    V.remove(free, "data")
    assert V.names(free) == [] and os.listdir(tmp_path / "volumes") == []


def test_prune_takes_unused_anonymous_volumes_or_all_unused_ones(tmp_path):
    mgr = manager(tmp_path, [record("c1", "used")])
    for name in ("used", "named"):
        V.create(mgr, name)
    V.create(mgr, "anon", labels={V.ANONYMOUS: ""})
    V.create(mgr, "keep", labels={"keep": "1"})
    with open(os.path.join(V.mountpoint(mgr, "anon"), "f"), "wb") as f:
        f.write(b"x" * 8192)
    removed, size = V.prune(mgr)
    assert removed == ["anon"] and size >= 8192
    assert V.prune(mgr, all=True, filters=["label!=keep"]) == (["named"], 0)
    assert V.prune(mgr, filters=["all=true"])[0] == ["keep"]
    assert V.names(mgr) == ["used"]


def test_removing_a_missing_volume_makes_nothing(tmp_path):
    """``volume rm nosuch`` on a root that does not exist yet: the error, and no root, lock
    file or volumes directory made for it."""
    root = tmp_path / "root"
    mgr = manager(str(root))
    with pytest.raises(V.NoSuchVolume):
        V.remove(mgr, "nosuch")
    V.remove(mgr, "nosuch", force=True)
    assert not root.exists()
