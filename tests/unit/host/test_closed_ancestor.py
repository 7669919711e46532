"""idmap.closed_ancestor: what an unprivileged host ID (a user namespace's root) cannot pass."""

import os

from kago.host.facts import closed_ancestor

OPEN = 0o40755


def open_above(path):
    """A cache that says every directory from ``path`` up to / is open, so the host's own
    base directories (pytest's may be 0700) do not decide the answer."""
    cache, p = {}, str(path)
    while True:
        cache[p] = OPEN
        if p == "/":
            return cache
        p = os.path.dirname(p)


def test_an_open_path_has_no_closed_ancestor(tmp_path):
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    os.chmod(tmp_path / "a", 0o755)
    os.chmod(d, 0o711)  # search is all it takes
    assert closed_ancestor(str(d / "file"), open_above(tmp_path)) is None


def test_the_first_closed_directory_and_its_mode(tmp_path):
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    os.chmod(tmp_path / "a", 0o700)
    os.chmod(d, 0o755)
    closed = closed_ancestor(str(d / "file"), open_above(tmp_path))
    assert closed == (str(tmp_path / "a"), os.stat(tmp_path / "a").st_mode)


def test_a_missing_directory_counts_as_closed_without_a_mode(tmp_path):
    cache = open_above(tmp_path)
    assert closed_ancestor(str(tmp_path / "nope" / "file"), cache) == (
        str(tmp_path / "nope"), None)


def test_the_cache_is_used(tmp_path):
    cache = {str(tmp_path): 0o40700}
    assert closed_ancestor(str(tmp_path / "x"), cache) == (str(tmp_path), 0o40700)
    assert cache == {str(tmp_path): 0o40700}
