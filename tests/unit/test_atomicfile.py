"""kago.atomicfile: files that appear whole, with the mode asked for, and nothing left over."""

import os
import stat

import pytest

from kago import atomicfile


def test_replace_is_whole_private_and_leaves_no_temp(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    atomicfile.replace(str(path), b"new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["r.json"]


def test_create_has_exactly_one_winner(tmp_path):
    path = str(tmp_path / "name")
    atomicfile.create(path, b"first", mode=0o644)
    with pytest.raises(FileExistsError):
        atomicfile.create(path, b"second")
    assert open(path).read() == "first"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(tmp_path) == ["name"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "r"
    path.write_text("old")

    def full(fd, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomicfile.os, "write", full)
    with pytest.raises(OSError):
        atomicfile.replace(str(path), b"new")
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["r"]


def test_remove_of_a_missing_file_is_fine(tmp_path):
    atomicfile.remove(str(tmp_path / "gone"))


def test_a_batch_skips_each_fsync_and_names_the_directories_written(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    (tmp_path / "a").mkdir()
    with atomicfile.Batch() as outer:
        atomicfile.replace(str(tmp_path / "a" / "r.json"), b"1")
        with atomicfile.Batch() as inner:  # nested: one batch, the outer collects
            atomicfile.create(str(tmp_path / "n"), b"2")
        assert inner.dirs == set()
    assert synced == []
    assert outer.dirs == {str(tmp_path / "a"), str(tmp_path)}
    assert (tmp_path / "a" / "r.json").read_text() == "1"
    assert sorted(os.listdir(tmp_path)) == ["a", "n"]  # no temp file left
    atomicfile.replace(str(tmp_path / "a" / "r.json"), b"3")  # after it: fsynced again
    assert len(synced) == 1
