"""kago build's context: sources resolved inside it, wildcards, .dockerignore on walks, the
cache's digest of files, and tar extraction that never leaves its directory."""

import io
import os
import tarfile

import pytest

from kago.manager.build import context
from kago.manager.build.errors import BuildError


@pytest.fixture
def tree(tmp_path):
    top = tmp_path / "ctx"
    (top / "dir" / "sub").mkdir(parents=True)
    (top / "dir" / "a.txt").write_text("a")
    (top / "dir" / "sub" / "b.log").write_text("b")
    (top / "c.txt").write_text("c")
    (top / ".hidden").write_text("h")
    (tmp_path / "outside").write_text("host")
    os.symlink("/c.txt", top / "abs-link")            # absolute: resolves inside the context
    os.symlink("../outside", top / "escape")          # would leave it on the host
    os.symlink("dir", top / "dir-link")
    return context.Tree(str(top), "the build context", context.Ignore("**/*.log\n"))


def test_resolve_stays_inside(tree):
    assert tree.resolve("abs-link") == os.path.join(tree.top, "c.txt")
    assert tree.resolve("escape") is None
    assert tree.resolve("../../c.txt") == os.path.join(tree.top, "c.txt")
    assert tree.resolve("dir-link/a.txt") == os.path.join(tree.top, "dir", "a.txt")


def test_match_and_walk(tree):
    assert [(n, tree.rel(h)) for n, h in tree.match("*.txt", "F:1")] == [("c.txt", "c.txt")]
    assert [(n, tree.rel(h)) for n, h in tree.match(".hidden", "F:1")] == [(".hidden",
                                                                              ".hidden")]
    # a source's own symlink is followed; it keeps its own name
    assert [(n, tree.rel(h)) for n, h in tree.match("abs-link", "F:1")] == [("abs-link",
                                                                               "c.txt")]
    assert [(n, tree.rel(h)) for n, h in tree.match("abs-*", "F:1")] == [("abs-link",
                                                                            "c.txt")]
    walked = [rel for rel, _p, _st in tree.walk(tree.match("dir", "F:1")[0][1])]
    assert walked == ["", "a.txt", "sub"]   # sub/b.log is ignored
    with pytest.raises(BuildError, match="F:2: escape: no such file or directory in the "
                                         "build context"):
        tree.match("escape", "F:2")
    with pytest.raises(BuildError, match="F:3: dir/sub/b.log: no such file"):
        tree.match("dir/sub/b.log", "F:3")
    with pytest.raises(BuildError, match="F:4: \\*.md: no file matches it"):
        tree.match("*.md", "F:4")


def test_digest_follows_contents_and_modes_not_times(tree):
    hosts = tree.match("dir", "F:1")
    first = context.digest(tree, hosts)
    os.utime(os.path.join(tree.top, "dir", "a.txt"), (1, 1))
    assert context.digest(tree, hosts) == first
    os.chmod(os.path.join(tree.top, "dir", "a.txt"), 0o600)
    second = context.digest(tree, hosts)
    assert second != first
    with open(os.path.join(tree.top, "dir", "a.txt"), "w") as f:
        f.write("A")
    assert context.digest(tree, hosts) not in (first, second)
    with open(os.path.join(tree.top, "dir", "sub", "b.log"), "w") as f:
        f.write("ignored files do not count")
    assert context.digest(tree, hosts) == context.digest(tree, hosts)


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                t.addfile(info, io.BytesIO(value))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, value
                t.addfile(info)
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, value
                t.addfile(info)
    buf.seek(0)
    return buf


def test_extract(tmp_path):
    dest = tmp_path / "x"
    dest.mkdir()
    context.extract(_tar([("d", "dir", None), ("d/f", "file", b"1"), ("l", "sym", "/etc"),
                          ("h", "hard", "d/f")]), str(dest))
    assert (dest / "d" / "f").read_bytes() == b"1" and os.readlink(dest / "l") == "/etc"
    assert os.stat(dest / "h").st_ino == os.stat(dest / "d" / "f").st_ino


@pytest.mark.parametrize("members,message", [
    ([("../up", "file", b"x")], "a path with .. is refused"),
    ([("l", "sym", "/tmp"), ("l/f", "file", b"x")], "goes through a symlink"),
    ([("l", "sym", "TMP"), ("l/new/f", "file", b"x")], "goes through a symlink"),
    ([("f", "file", b"x"), ("f/g", "file", b"x")], "a parent is not a directory"),
    ([("h", "hard", "/etc/passwd")], "not a file of the archive"),
])
def test_extract_refuses_to_leave(tmp_path, members, message):
    dest = tmp_path / "x"
    dest.mkdir()
    (tmp_path / "host").mkdir()
    members = [(n, k, str(tmp_path / "host") if v == "TMP" else v) for n, k, v in members]
    with pytest.raises(BuildError, match=message):
        context.extract(_tar(members), str(dest), what="ctx.tar")
    assert not (tmp_path / "up").exists() and os.listdir(tmp_path / "host") == []


def test_is_archive(tmp_path):
    (tmp_path / "plain").write_text("not a tar\n" * 100)
    assert not context.is_archive(str(tmp_path / "plain"))
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as t:
        t.add(str(tmp_path / "plain"), "plain")
    assert context.is_archive(str(tmp_path / "a.tar.gz"))


def test_sweep_tmp_removes_what_dead_builds_left(tmp_path):
    from kago.manager.build.executor import sweep_tmp
    dead = 2**22 + 12345   # above pid_max's default: no such process
    for name in (f"{dead}-abc", f"ctx-{dead}-def", f"{os.getpid()}-mine", "1-init"):
        (tmp_path / name).mkdir()
    sweep_tmp(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == sorted([f"{os.getpid()}-mine", "1-init"])
