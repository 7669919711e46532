"""BuildKit's plain progress: step names per stage and the vertex lines, with a fake clock."""

import pytest

from kago.manager.build import progress, stages
from kago.manager.build.parser import parse


def _names(text, target=None):
    return list(progress.step_names(stages.plan(parse(text), {}, target)).values())


@pytest.mark.parametrize("text,target,names", [
    ("FROM busybox\nENV A=1\nRUN true\nCMD x\n", None,
     ["[1/2] FROM busybox:latest", "[2/2] RUN true"]),
    ("FROM busybox\nWORKDIR /a\nCOPY x y\nADD z /\nLABEL a=b\n", None,
     ["[1/4] FROM busybox:latest", "[2/4] WORKDIR /a", "[3/4] COPY x y", "[4/4] ADD z /"]),
    ("FROM scratch\nCOPY x /\n", None, ["[1/2] FROM scratch", "[2/2] COPY x /"]),
    ("FROM busybox AS b\nRUN a\nFROM b\nRUN c\n", None,
     ["[b 1/2] FROM busybox:latest", "[b 2/2] RUN a", "[stage-1 1/2] FROM b",
      "[stage-1 2/2] RUN c"]),
    ("FROM busybox AS b\nRUN a\nFROM busybox AS c\nRUN c\n", "b",   # c is not needed
     ["[b 1/2] FROM busybox:latest", "[b 2/2] RUN a"]),
    ("FROM example.org:5000/app:1\n", None, ["[1/1] FROM example.org:5000/app:1"]),
])
def test_step_names(text, target, names):
    assert _names(text, target) == names


class Clock:
    def __init__(self):
        self.now = 10.0

    def __call__(self):
        return self.now


def test_vertices_log_lines_with_times_and_end_once():
    lines, clock = [], Clock()
    p = progress.Plain(lines.append, clock)
    v = p.vertex("[1/2] RUN echo")
    clock.now += 0.25
    v.log("hel")
    v.log("lo\nwor")
    clock.now += 0.5
    v.log("ld\r\npartial")
    clock.now += 0.2
    v.done()
    v.done()                           # a second end prints nothing
    c = p.vertex("[2/2] COPY a b")
    c.cached()
    e = p.vertex("[internal] load build context")
    e.status("transferring context: 2B done")
    e.error("boom")
    p.note("[Warning] x")
    assert lines == [
        "#1 [1/2] RUN echo", "#1 0.250 hello", "#1 0.750 world", "#1 0.950 partial",
        "#1 DONE 0.9s", "", "#2 [2/2] COPY a b", "#2 CACHED", "",
        "#3 [internal] load build context", "#3 transferring context: 2B done",
        "#3 ERROR: boom", "", "[Warning] x"]


def test_a_vertex_left_open_is_ended_before_the_next():
    lines = []
    p = progress.Plain(lines.append, Clock())
    p.vertex("a")
    p.vertex("b").done()
    assert lines == ["#1 a", "#1 DONE 0.0s", "", "#2 b", "#2 DONE 0.0s"]


@pytest.mark.parametrize("n,text", [(0, "0B"), (999, "999B"), (1000, "1.00kB"),
                                    (6090, "6.09kB"), (12_345_678, "12.35MB"),
                                    (3 * 10**12, "3000.00GB")])
def test_sizes(n, text):
    assert progress.size(n) == text


def test_quiet_collects_the_output_only():
    q = progress.Quiet()
    v = q.vertex("x")
    v.log("a\n")
    v.status("s")
    v.cached()
    v.error("e")
    assert q.collected == ["a\n"]
