"""docker cp's path rules (kago.manager.cp.rules): which argument is a container's, where a
source lands, what is refused -- decisions only, no files."""

import pytest

from kago.manager.cp.rules import (CopyError, Location, Placement, archive_name, check_source,
                                   local_path, member_name, pair, place, split_arg, top_name)


@pytest.mark.parametrize("arg, expected", [
    ("web:/etc/hosts", Location("web", "/etc/hosts")),
    ("web:etc/hosts", Location("web", "/etc/hosts")),      # a container's path is from its /
    ("web:", Location("web", "/")),
    ("/abs/with:colon", Location(None, "/abs/with:colon")),
    ("./web:file", Location(None, "./web:file")),            # docker: a leading . is local
    ("dir/web:file", Location(None, "dir/web:file")),
    ("plain", Location(None, "plain")),
    ("-", Location(None, "-")),
])
def test_split_arg(arg, expected):
    assert split_arg(arg) == expected


def test_exactly_one_side_is_a_container():
    with pytest.raises(CopyError, match="between containers"):
        pair("a:/x", "b:/y")
    with pytest.raises(CopyError, match="at least one container"):
        pair("/x", "/y")
    src, dst = pair("-", "web:/srv")
    assert src.stream and dst.container == "web"


def test_a_missing_source_and_a_file_with_a_trailing_slash():
    with pytest.raises(CopyError, match=r"^no such container:path: web:/nope$"):
        check_source(Location("web", "/nope"), False, False)
    with pytest.raises(CopyError, match=r"^/nope: no such file or directory$"):
        check_source(Location(None, "/nope"), False, False)
    with pytest.raises(CopyError, match="not a directory"):
        check_source(Location("web", "/etc/hosts/"), True, False)
    check_source(Location("web", "/etc/."), True, True)


D = Location(None, "out")


@pytest.mark.parametrize("src, is_dir, dst, exists, dst_dir, expected", [
    # a file
    ("/etc/hosts", False, "out", True, True, Placement("out", "hosts")),
    ("/etc/hosts", False, "out/", True, True, Placement("out", "hosts")),
    ("/etc/hosts", False, "out/f", True, False, Placement("out", "f")),   # overwritten
    ("/etc/hosts", False, "out/new", False, False, Placement("out", "new")),
    ("/etc/hosts", False, "new", False, False, Placement(".", "new")),
    # a directory
    ("/etc", True, "out", True, True, Placement("out", "etc")),
    ("/etc/", True, "out", True, True, Placement("out", "etc")),
    ("/etc/.", True, "out", True, True, Placement("out", None)),          # its contents
    ("/etc", True, "out/new", False, False, Placement("out", "new")),
    ("/etc/.", True, "out/new", False, False, Placement("out", "new")),
    ("/etc", True, "out/new/", False, False, Placement("out", "new")),
    ("/", True, "out", True, True, Placement("out", None)),                # / is its contents
])
def test_where_a_source_lands(src, is_dir, dst, exists, dst_dir, expected):
    assert place(src, is_dir, Location(None, dst), exists, dst_dir) == expected


@pytest.mark.parametrize("src, is_dir, dst, exists, dst_dir, message", [
    ("/etc", True, "out/f", True, False, "cannot copy a directory to a file: out/f"),
    ("/etc/hosts", False, "out/f/", True, False, "out/f/: not a directory"),
    ("/etc/hosts", False, "out/new/", False, False, "out/new/: no such directory"),
])
def test_what_docker_refuses(src, is_dir, dst, exists, dst_dir, message):
    with pytest.raises(CopyError) as e:
        place(src, is_dir, Location(None, dst), exists, dst_dir)
    assert str(e.value) == message
    assert e.value.exit_code == 1


def test_names_in_the_copy_and_in_archives():
    assert top_name("/var/log") == "log" and top_name("/var/log/") == "log"
    assert top_name("/var/log/.") == "." and top_name("/") == "."
    assert archive_name("log", "") == "log" and archive_name("log", "a/b") == "log/a/b"
    assert archive_name(None, "") is None and archive_name(None, "a") == "a"
    assert member_name("./a/b") == "a/b" and member_name("/a") == "a" and member_name(".") == ""
    for bad in ("../x", "a/../../x", "a/.."):
        with pytest.raises(CopyError, match="leaves the destination"):
            member_name(bad)


@pytest.mark.parametrize("path, expected", [
    ("out", "/work/dir/out"), ("out/", "/work/dir/out/"), ("out/.", "/work/dir/out/."),
    (".", "/work/dir/."), ("..", "/work"), ("../", "/work/"), ("/abs/x/", "/abs/x/"),
    ("/", "/"), ("/.", "/."),
])
def test_local_paths_are_made_absolute_keeping_what_their_end_says(path, expected):
    assert local_path(path, "/work/dir") == expected


def test_pair_makes_only_local_paths_absolute():
    src, dst = pair("..", "web:/srv", cwd="/work/dir")
    assert (src.path, dst.path) == ("/work", "/srv")
    assert top_name(src.path) == "work"
    src, dst = pair("web:/srv", "-", cwd="/work/dir")
    assert dst.stream
