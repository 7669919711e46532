"""What keeps the supervisor small (bench/supervisor_memory): the modules its process imports,
and its epoll selector (supervisor/poll.py) behaving as the part of selectors' it replaces."""

import os
import socket
import subprocess
import sys

import pytest

from kago.manager.supervisor.poll import EVENT_READ, Selector

# each of these stays in a long-lived process's memory once imported: dataclasses and typing
# (the typed Definition), json (re, enum, functools, collections), socket.py, selectors, signal.py
# (enum), runpy (python -m)
HEAVY = ("dataclasses", "typing", "inspect", "ast", "json", "re", "enum", "functools",
         "collections", "socket", "selectors", "signal", "runpy", "contextlib", "threading",
         "subprocess", "kago.manager.definition.model", "kago.manager.supervisor.client")

# the runtime's start path: imported and warmed in the start forker (supervisor/forker.py),
# never in the supervisor (~1.2 MB of its heap)
START_PATH = ("kago.runtime.options", "kago.plan.build", "kago.plan.validate",
              "kago.process.child", "kago.process.parent", "kago.process.hooks",
              "kago.kernel.libseccomp", "kago.kernel.idmap", "kago.linux.seccomp",
              "kago.linux.mounts", "kago.linux.namespaces", "kago.linux.cgroups.limits",
              "kago.kernel.libc", "kago.kernel.ffi")

# what the supervisor loads before it serves (serve's prctl included: kernel.subreaper), then for the first
# start (the runtime seam opened, as Starts.runtime_for does, and its state asked, as start
# does), and for the first end (oom_killed reads the cgroup)
PROGRAM = """\
import sys
from kago.manager.supervisor.main import main
from kago.manager.supervisor import server, settings
from kago.manager.supervisor.state import oom_killed
from kago.manager import health
from kago.kernel import subreaper
from kago.manager.runtimes import open_runtime
runtime = open_runtime(None, sys.argv[1])
assert runtime.state("kago-no-such-container") is None
oom_killed({"cgroups_path": "/kago-no-such-cgroup"})
from kago.runtime import container
assert container.LAYOUT is not None  # detected once, not at every end (keep_layout)
settings.of({"definition": {"format": 1, "tty": True, "restart": {"name": "always"}}})
print(" ".join(sorted(sys.modules)))
"""


def test_the_supervisor_imports_none_of_the_heavy_modules(tmp_path):
    # -c, as client._spawn starts it (python -m would load runpy and collections)
    proc = subprocess.run([sys.executable, "-c", PROGRAM, str(tmp_path / "runtime")],
                          capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert {"kago.runtime.container", "kago.manager.runtimes",
            "kago.manager.supervisor.server"} <= loaded
    assert sorted(loaded & set(HEAVY)) == []
    assert sorted(loaded & set(START_PATH)) == []


WARM_PROGRAM = """\
import sys
from kago.manager.supervisor.forker import _warmed
_warmed({}, (None, sys.argv[1]))
print(" ".join(sorted(sys.modules)))
"""


def test_the_forker_warms_the_start_path(tmp_path):
    # what the supervisor does not load, its start forker does, once (each worker it forks
    # then imports nothing): the list above names modules of that path
    proc = subprocess.run([sys.executable, "-c", WARM_PROGRAM, str(tmp_path / "runtime")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert sorted(set(START_PATH) - loaded) == []
    assert sorted(loaded & set(HEAVY)) == []


def test_register_select_unregister():
    sel = Selector()
    r, w = os.pipe()
    try:
        key = sel.register(r, EVENT_READ, ("fifo", 1))
        assert (key.fd, key.fileobj, key.data) == (r, r, ("fifo", 1))
        assert sel.get_key(r) is key and list(sel.get_map().values()) == [key]
        assert sel.select(0) == []
        os.write(w, b"x")
        assert sel.select(1) == [(key, EVENT_READ)]
        with pytest.raises(KeyError):
            sel.register(r, EVENT_READ, None)
        assert sel.unregister(r) is key
        assert sel.select(0) == [] and sel.get_map() == {}
        with pytest.raises(KeyError):
            sel.unregister(r)
    finally:
        os.close(r)
        os.close(w)
        sel.close()


@pytest.fixture
def piped():
    """(a Selector, the read end of a pipe, its write end); the write end may be closed."""
    sel = Selector()
    r, w = os.pipe()
    ends = [r, w]
    yield sel, r, ends
    for fd in ends:
        try:
            os.close(fd)
        except OSError:
            pass
    sel.close()


def test_a_hang_up_is_readable(piped):
    # a FIFO or pipe whose writers all closed: the loop reads its end (b"") there
    sel, r, ends = piped
    key = sel.register(r, EVENT_READ, "p")
    os.close(ends.pop())
    assert sel.select(1) == [(key, EVENT_READ)]
    assert os.read(r, 10) == b""


def test_a_socket_closed_before_unregister_is_found_by_identity():
    sel = Selector()
    a, b = socket.socketpair()
    try:
        key = sel.register(a, EVENT_READ, "client")
        a.close()
        assert sel.unregister(a) is key
        assert sel.get_map() == {}
    finally:
        b.close()
        sel.close()


def test_select_without_timeout_waits_for_an_event(piped):
    sel, r, ends = piped
    key = sel.register(r, EVENT_READ)
    os.write(ends[1], b"y")
    assert sel.select(None) == [(key, EVENT_READ)]
    assert sel.select(-5) == [(key, EVENT_READ)]  # a past deadline: no wait, not forever


def test_become_subreaper_sets_the_flag():
    # in a child, so that the test process stays as it was; PR_GET_CHILD_SUBREAPER through libc
    prog = ("from kago.kernel.subreaper import become_subreaper\n"
            "from kago.kernel import consts, ffi, libc\n"
            "become_subreaper()\n"
            "flag = ffi.c_int(0)\n"
            "libc.prctl(37, ffi.addressof(flag))\n"  # PR_GET_CHILD_SUBREAPER
            "print(flag.value)\n")
    proc = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (proc.returncode, proc.stdout) == (0, "1\n"), proc.stderr
