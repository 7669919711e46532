"""The json-file log: lines, partial lines, 16 KiB pieces, rotation, reading and following."""

import json

from kago.manager import logs


def entries(path):
    return [json.loads(line) for line in open(path)]


def test_lines_are_json_records_with_stream_and_time(tmp_path):
    w = logs.LogWriter(str(tmp_path / "ctr.log"))
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\n")
    w.close()
    got = entries(tmp_path / "ctr.log")
    assert [(e["stream"], e["log"]) for e in got] == [("stdout", "one\n"), ("stderr", "err\n"),
                                                    ("stdout", "two\n")]
    assert all(e["time"].endswith("Z") and len(e["time"]) == 30 for e in got)


def test_a_partial_last_line_is_written_at_the_end_and_long_lines_are_cut(tmp_path):
    w = logs.LogWriter(str(tmp_path / "ctr.log"))
    w.write("stdout", b"x" * (logs.MAX_LINE + 10))
    w.write("stdout", b"tail")
    w.close()
    got = [e["log"] for e in entries(tmp_path / "ctr.log")]
    assert got == ["x" * logs.MAX_LINE, "x" * 10 + "tail"]


def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    w = logs.LogWriter(str(tmp_path / "ctr.log"))
    w.write("stdout", b"\xff\xfeok\n")
    w.close()
    assert entries(tmp_path / "ctr.log")[0]["log"].endswith("ok\n")


def test_rotation_keeps_max_files_under_max_size(tmp_path):
    path = str(tmp_path / "ctr.log")
    w = logs.LogWriter(path, max_size=1024, max_files=3)
    for i in range(200):
        w.write("stdout", f"line {i}\n".encode())
    w.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["ctr.log", "ctr.log.1", "ctr.log.2"]
    assert all((tmp_path / n).stat().st_size <= 1024 for n in names)
    kept = [e["log"] for e in logs.read(path)]
    assert kept[-1] == "line 199\n"
    assert kept == [f"line {i}\n" for i in range(200 - len(kept), 200)]


def test_read_tail_and_since(tmp_path):
    path = str(tmp_path / "ctr.log")
    w = logs.LogWriter(path)
    for i in range(5):
        w.write("stdout", f"{i}\n".encode())
    w.close()
    assert [e["log"] for e in logs.read(path, tail=2)] == ["3\n", "4\n"]
    assert logs.read(path, tail=0) == []
    first = logs.read(path)[0]["time"]
    assert len(logs.read(path, since=logs.parse_timestamp(first))) == 5
    assert logs.read(path, since=logs.parse_timestamp(first) + 3600) == []


def test_follow_drains_then_stops_and_survives_rotation(tmp_path):
    path = str(tmp_path / "ctr.log")
    w = logs.LogWriter(path, max_size=1024, max_files=2)
    w.write("stdout", b"before\n")
    calls = []

    def stop():
        calls.append(1)
        if len(calls) == 2:
            for i in range(60):  # enough to rotate once
                w.write("stdout", f"during {i}\n".encode())
        return len(calls) >= 3
    got = [e["log"] for e in logs.follow(path, stop, interval=0, offset=0)]
    w.close()
    assert got[0] == "before\n"
    assert got[-1] == "during 59\n"


class _Disk:
    """os.write and os.open of the log module, failing with ``errno`` while ``full``."""

    def __init__(self, monkeypatch, error):
        import errno
        import os
        real_write, real_open, strerror = os.write, os.open, os.strerror
        self.full, self.short = False, False
        self.error = getattr(errno, error)

        def write(fd, data):
            if self.short:  # the disk fills up mid-write: some bytes go out, then ENOSPC
                self.short, self.full = False, True
                return real_write(fd, bytes(data)[:7])
            if self.full:
                raise OSError(self.error, strerror(self.error))
            return real_write(fd, data)

        def open_(path, flags, mode=0o777):
            if self.full:
                raise OSError(self.error, strerror(self.error))
            return real_open(path, flags, mode)
        monkeypatch.setattr(logs.os, "write", write)
        monkeypatch.setattr(logs.os, "open", open_)


def test_a_full_disk_drops_and_counts_lines_warns_once_and_resumes(tmp_path, monkeypatch):
    disk = _Disk(monkeypatch, "ENOSPC")
    said = []
    w = logs.LogWriter(str(tmp_path / "ctr.log"), warn=said.append)
    w.write("stdout", b"before\n")
    disk.short = True
    w.write("stdout", b"cut short\n")
    for n in range(5):
        w.write("stdout", f"lost {n}\n".encode())
    assert w.dropped == 6 and len(said) == 1
    assert "no space left on device" in said[0] and "dropping" in said[0]
    disk.full = False
    w.write("stderr", b"after\n")
    w.close()
    assert len(said) == 2 and "after dropping 6 lines" in said[1]
    got = [e["log"] for e in entries_lenient(tmp_path / "ctr.log")]
    assert got == ["before\n", "after\n"]  # the cut line ended with a newline: one bad line


def entries_lenient(path):
    return list(logs._entries(open(path, "rb").read().splitlines()))


def test_no_fd_left_at_open_or_rotation_drops_lines_until_one_is(tmp_path, monkeypatch):
    disk = _Disk(monkeypatch, "EMFILE")
    said = []
    disk.full = True
    w = logs.LogWriter(str(tmp_path / "ctr.log"), max_size=1024, warn=said.append)
    w.write("stdout", b"lost\n")
    assert w.fd is None and w.dropped == 1 and "too many open files" in said[0]
    disk.full = False
    w.write("stdout", b"x" * 600 + b"\n")
    disk.full = True
    w.write("stdout", b"y" * 600 + b"\n")  # needs a rotation, whose reopen fails
    assert w.fd is None and w.dropped == 2
    disk.full = False
    w.write("stdout", b"z\n")
    w.close()
    assert [e["log"][0] for e in entries(tmp_path / "ctr.log")] == ["z"]
    assert [e["log"][0] for e in entries(str(tmp_path / "ctr.log") + ".1")] == ["x"]
    assert len(said) == 4  # dropping, writing again, dropping (rotation), writing again
    assert "after dropping 1 lines" in said[3]
