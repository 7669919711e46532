"""The pure parts of kago checkpoint/restore: the manifest, the export's check, the kernel
rule, the warm-start key, and the runtime's FIFO stdio keys."""

import io
import json
import tarfile

import pytest

from kago.manager import checkpoint_files as files
from kago.manager.define import warm
from kago.manager.errors import ManagerError
from kago.runtime import criu

RECORD = {"id": "a" * 64, "name": "web", "image": "busybox", "image_id": "b" * 64,
          "definition": {"format": 1, "name": "web", "image": "busybox"}}


def test_manifest_has_what_a_restore_needs_and_checks():
    doc = files.manifest(RECORD, "6.18.0", "10.0.0.2", True, False, 123, now=5.0)
    assert doc["kind"] == files.KIND and doc["format"] == files.FORMAT
    assert (doc["name"], doc["image_id"], doc["kernel"], doc["ip"]) == \
        ("web", "b" * 64, "6.18.0", "10.0.0.2")
    assert doc["tcp_established"] is True and doc["log_size"] == 123
    assert files.check(doc, "x") is doc


@pytest.mark.parametrize("doc, words", [
    ({"kind": "other"}, "not a kago checkpoint"),
    ([1, 2], "not a kago checkpoint"),
    ({"kind": files.KIND, "format": 99}, "format 99"),
    ({"kind": files.KIND, "format": files.FORMAT, "id": "x", "name": "n", "definition": {}},
     "no 'definition'"),
])
def test_a_bad_manifest_is_one_line(doc, words):
    with pytest.raises(ManagerError, match=words):
        files.check(doc, "f.tar")


def test_another_kernel_is_refused_naming_both():
    doc = files.manifest(RECORD, "6.1.0", None, False, False, 0)
    files.check_kernel(doc, "6.1.0", "x")
    with pytest.raises(ManagerError, match="kernel 6.1.0, this is 6.18.0"):
        files.check_kernel(doc, "6.18.0", "x")


def _tar(path, members):
    with tarfile.open(path, "w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def test_import_manifest_reads_an_export_and_refuses_other_files(tmp_path):
    good = tmp_path / "good.tar"
    doc = files.manifest(RECORD, "6.18.0", None, False, False, 0)
    _tar(good, {files.MANIFEST: json.dumps(doc).encode(), "criu/inventory.img": b"x",
                "../evil": b"x", "criu/../../evil2": b"x"})
    assert files.import_manifest(str(good))["name"] == "web"
    files.unpack(str(good), str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == \
        ["checkpoint.json", "criu", "inventory.img"]
    plain = tmp_path / "plain.txt"
    plain.write_text("hello")
    for bad in (plain, tmp_path / "missing.tar"):
        with pytest.raises(ManagerError) as e:
            files.import_manifest(str(bad))
        assert "\n" not in str(e.value)
    other = tmp_path / "other.tar"
    _tar(other, {"kago.json": b"{}"})
    with pytest.raises(ManagerError, match="not a kago checkpoint"):
        files.import_manifest(str(other))


def test_warm_key_changes_with_each_input_and_only_with_them():
    base = ({"format": 1, "name": "w"}, "img1", "6.18.0", [[0, 1000, 100]], None)
    k = warm.key(*base)
    assert k == warm.key(*base) and len(k) == 32
    for i, other in enumerate(({"format": 1, "name": "w2"}, "img2", "6.19.0",
                               [[0, 2000, 100]], [[0, 1, 1]])):
        changed = list(base)
        changed[i] = other
        assert warm.key(*changed) != k, i


def test_fifo_stdio_keys_are_criu_external_files():
    assert criu.fifo_key(0x1b, 0xea2291) == "file[1b:ea2291]"
    assert criu.fifo_inherit([[1, "file[1b:2]"], [2, "file[1b:3]"], [5, "file[1b:4]"]]) == \
        [(1, "file[1b:2]"), (2, "file[1b:3]")]
    argv = criu.dump_argv("criu", 1, criu.CriuOptions("/img"), "/r", files=["file[1b:2]"])
    assert argv[-2:] == ["--external", "file[1b:2]"]
