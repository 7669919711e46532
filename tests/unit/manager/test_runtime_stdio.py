"""The runtime seam's stdio swap (runtimes._as_stdio): the given fds are this process's 0-2
inside the block and the old ones are back after it, whatever the block does; a KagoError in
the block comes out as a ManagerError naming what failed."""

import os

import pytest

from kago.errors import KagoError
from kago.manager.errors import ManagerError
from kago.manager.runtimes import _as_stdio


def _inode(fd):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


@pytest.fixture
def pipes():
    ends = [os.pipe() for _ in range(3)]
    yield ends
    for r, w in ends:
        os.close(r)
        os.close(w)


def test_the_block_sees_the_given_fds_and_the_old_ones_come_back(pipes):
    before = [_inode(fd) for fd in (0, 1, 2)]
    given = [pipes[0][0], pipes[1][1], pipes[2][1]]
    with _as_stdio(given, "create"):
        inside = [_inode(fd) for fd in (0, 1, 2)]
    assert inside == [_inode(fd) for fd in given]
    assert [_inode(fd) for fd in (0, 1, 2)] == before


def test_a_kago_error_is_a_manager_error_and_the_fds_are_restored(pipes):
    before = [_inode(fd) for fd in (0, 1, 2)]
    with pytest.raises(ManagerError, match="no such bundle") as caught:
        with _as_stdio([pipes[0][0], pipes[1][1], pipes[2][1]], "create"):
            raise KagoError("no such bundle")
    assert caught.value.__suppress_context__
    assert [_inode(fd) for fd in (0, 1, 2)] == before


def test_other_errors_pass_through_unchanged(pipes):
    before = [_inode(fd) for fd in (0, 1, 2)]
    with pytest.raises(ValueError, match="not ours"):
        with _as_stdio([pipes[0][0], pipes[1][1], pipes[2][1]], "restore"):
            raise ValueError("not ours")
    assert [_inode(fd) for fd in (0, 1, 2)] == before


def test_an_empty_message_names_what_failed(pipes):
    with pytest.raises(ManagerError, match="restore failed"):
        with _as_stdio([pipes[0][0], pipes[1][1], pipes[2][1]], "restore"):
            raise KagoError("")
