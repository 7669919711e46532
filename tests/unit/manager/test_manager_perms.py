"""perms.secure: a root an older kago left open (0755, records 0644) is tightened, per path,
by the next command; a root its owner closed further is left so."""

import os

from kago.manager import perms
from kago.manager.paths import Paths


def mode(path):
    return os.stat(path).st_mode & 0o777


def old_root(tmp_path):
    paths = Paths(str(tmp_path / "root"))
    cdir = paths.container("c1")
    for d in (paths.logs("c1"), paths.bundle("c1"), paths.etc("c1"), paths.names(),
              os.path.join(paths.root, "groups"), paths.fifos("c1")):
        os.makedirs(d, 0o755)
    files = {paths.record("c1"): 0o644, os.path.join(paths.bundle("c1"), "config.json"): 0o644,
             paths.log("c1"): 0o640, paths.log("c1") + ".1": 0o644,
             os.path.join(paths.etc("c1"), "hosts"): 0o644,
             os.path.join(paths.root, "groups", "g.json"): 0o644,
             paths.supervisor_log(): 0o640}
    for path, m in files.items():
        with open(path, "w") as f:
            f.write("{}")
        os.chmod(path, m)
    for d in (paths.root, paths.containers(), cdir, paths.runroot):
        os.chmod(d, 0o755)
    return paths


def test_an_open_root_is_tightened_path_by_path(tmp_path):
    paths = old_root(tmp_path)
    perms.secure(paths)
    assert {p: mode(p) for p in (paths.root, paths.containers(), paths.container("c1"),
                                  paths.bundle("c1"), paths.runroot)} == dict.fromkeys(
        (paths.root, paths.containers(), paths.container("c1"), paths.bundle("c1"),
         paths.runroot), 0o711)
    for path in (paths.record("c1"), os.path.join(paths.bundle("c1"), "config.json"),
                 paths.log("c1"), paths.log("c1") + ".1", paths.supervisor_log(),
                 os.path.join(paths.root, "groups", "g.json")):
        assert mode(path) == 0o600, path
    for path in (paths.logs("c1"), paths.names(), os.path.join(paths.root, "groups"),
                 paths.fifos("c1")):
        assert mode(path) == 0o700, path
    assert mode(os.path.join(paths.etc("c1"), "hosts")) == 0o644  # the container's to read


def test_a_root_closed_further_is_left_as_it_is(tmp_path):
    paths = old_root(tmp_path)
    os.chmod(paths.root, 0o700)
    os.chmod(paths.runroot, 0o700)
    perms.secure(paths)
    assert mode(paths.root) == 0o700 and mode(paths.record("c1")) == 0o644
    assert mode(paths.runroot) == 0o700


def test_new_state_is_made_private(tmp_path):
    paths = Paths(str(tmp_path / "root"))
    old = os.umask(0o022)
    try:
        perms.make_container_dir(paths, "c2")
        with perms.private_file(os.path.join(paths.container("c2"), "x")) as f:
            f.write("secret")
    finally:
        os.umask(old)
    assert (mode(paths.root), mode(paths.container("c2"))) == (0o711, 0o711)
    assert mode(os.path.join(paths.container("c2"), "x")) == 0o600
