"""kago.host.procfs on a fake /proc (a directory laid out as proc(5)) and on the real one."""

import os

from kago.host import procfs

STAT = b"42 (a) b)) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1000 1 0\n"


def fake(tmp_path, pid, cmdline=None, stat=None):
    d = tmp_path / str(pid)
    d.mkdir()
    if cmdline is not None:
        (d / "cmdline").write_bytes(cmdline)
    if stat is not None:
        (d / "stat").write_bytes(stat)


def test_argv_splits_at_nuls_and_drops_the_last(tmp_path):
    fake(tmp_path, 7, b"/usr/bin/slirp4netns\0--mtu\0\0x y\0")
    assert procfs.argv(7, str(tmp_path)) == [b"/usr/bin/slirp4netns", b"--mtu", b"", b"x y"]


def test_argv_of_a_zombie_is_empty_and_of_no_process_none(tmp_path):
    fake(tmp_path, 8, b"")
    assert procfs.argv(8, str(tmp_path)) == []
    assert procfs.argv(9, str(tmp_path)) is None


def test_processes_lists_pids_only_and_skips_unreadable(tmp_path):
    fake(tmp_path, 10, b"sleep\x0030\0")
    fake(tmp_path, 11)  # ended between the listing and the read: no cmdline
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "cmdline").write_bytes(b"x\0")
    assert list(procfs.processes(str(tmp_path))) == [(10, [b"sleep", b"30"])]


def test_start_time_past_a_comm_with_parens(tmp_path):
    fake(tmp_path, 42, stat=STAT)
    assert procfs.start_time(42, str(tmp_path)) == 12345
    assert procfs.alive(42, 12345, str(tmp_path))
    assert not procfs.alive(42, 12346, str(tmp_path))
    assert procfs.start_time(43, str(tmp_path)) is None


def test_the_real_proc_names_this_process():
    words = procfs.argv(os.getpid())
    assert words and os.path.basename(words[0]).startswith(b"python")
    assert os.getpid() in dict(procfs.processes())
