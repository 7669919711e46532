"""plan.build.check_namespace_path: which error a namespace path to join gets."""

import errno
import os

import pytest

from kago.errors import SpecError
from kago.plan import build


def message(kind, path):
    with pytest.raises(SpecError) as info:
        build.check_namespace_path(kind, path)
    assert info.value.field == "linux.namespaces"
    return info.value.message


def test_missing_path_does_not_exist(tmp_path):
    assert message("network", str(tmp_path / "nope")) == \
        f"network namespace path {tmp_path / 'nope'} does not exist"
    (tmp_path / "file").write_text("")
    assert message("ipc", str(tmp_path / "file" / "x")).endswith("does not exist")


@pytest.mark.parametrize("err, words", [(errno.EACCES, "permission denied"),
                                        (errno.EPERM, "operation not permitted"),
                                        (errno.ELOOP, "too many levels of symbolic links")])
def test_other_errors_are_said_with_their_errno_not_as_missing(monkeypatch, err, words):
    real_open = os.open

    def refuse(path, flags, *args):
        if path == "/run/netns/closed":
            raise OSError(err, os.strerror(err), path)
        return real_open(path, flags, *args)
    monkeypatch.setattr(os, "open", refuse)
    assert message("network", "/run/netns/closed") == \
        f"network namespace: failed to open /run/netns/closed: {words}"


def test_an_openable_path_passes_and_a_fifo_does_not_block(tmp_path):
    build.check_namespace_path("network", "/proc/self/ns/net")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    build.check_namespace_path("network", str(fifo))  # setns will say what it is
