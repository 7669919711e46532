"""What the manager asks the runtime about a container's cgroup, by its path (kago.runtime)."""

import pytest

from kago.errors import KagoError
from kago.linux import cgroups
from kago.runtime import container, resources

HYBRID = (
    "30 22 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n"
    "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
    "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
)
V2 = "31 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"
V1 = "32 22 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"


@pytest.mark.parametrize("text, expected", [
    (HYBRID, "/sys/fs/cgroup/unified/kago-x/memory.pressure"),
    (V2, "/sys/fs/cgroup/kago-x/memory.pressure"),
])
def test_pressure_file_is_in_the_cgroup2_directory(monkeypatch, text, expected):
    monkeypatch.setattr(container, "LAYOUT", cgroups.parse_mountinfo(text))
    assert resources.pressure_file_at("/kago-x", "memory") == expected


def test_no_pressure_file_without_cgroup2(monkeypatch):
    monkeypatch.setattr(container, "LAYOUT", cgroups.parse_mountinfo(V1))
    with pytest.raises(KagoError, match="no unified hierarchy"):
        resources.pressure_file_at("/kago-x", "cpu")


def test_oom_of_a_missing_cgroup_is_false(monkeypatch):
    monkeypatch.setattr(container, "LAYOUT", cgroups.parse_mountinfo(V2))
    assert resources.oom_killed_at("/kago-test-no-such-cgroup") is False


def test_layout_is_the_warm_one_when_set(monkeypatch):
    layout = cgroups.parse_mountinfo(V2)
    monkeypatch.setattr(container, "LAYOUT", layout)
    assert container.layout() is layout
    monkeypatch.setattr(container, "LAYOUT", None)
    assert container.layout().mode in ("v1", "v2", "hybrid")
