"""The files docs/tutorial.md uses (examples/tutorial), without the kernel: the compose file
as kago compose reads it, and the app's Redis reply parser. scripts/tutorial runs them for
real (tests/integration/test_tutorial.py)."""

import io
import os
import sys

import pytest

from kago.manager.compose.load import load
from kago.manager.compose.translate import translate

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples", "tutorial")
sys.path.insert(0, os.path.join(EXAMPLE, "notes"))

import store  # noqa: E402 - examples/tutorial/notes/store.py


def plan(env):
    return translate(load([os.path.join(EXAMPLE, "compose.yaml")], "notes-app", environ=env,
                          cwd=EXAMPLE))


def test_the_compose_file_has_three_services_waiting_for_a_healthy_db():
    p = plan({})
    assert list(p.services) == ["web", "db", "worker"]
    assert p.services["web"].depends_on == (("db", "service_healthy"),)
    assert p.services["worker"].depends_on == (("db", "service_healthy"),)
    assert p.services["db"].healthcheck is not None
    assert p.services["web"].build is not None and p.services["worker"].build is not None
    assert [v.name for v in p.volumes.values()] == ["notes-app_dbdata"]


def test_the_script_gives_the_project_its_own_bridge_and_subnet():
    default = plan({})
    assert (default.networks["default"].bridge, default.networks["default"].subnet) == \
        ("notes0", "10.89.200.0/24")
    chosen = plan({"NOTES_BRIDGE": "kt1234n0", "NOTES_SUBNET": "10.231.7.0/24"})
    assert (chosen.networks["default"].bridge, chosen.networks["default"].subnet) == \
        ("kt1234n0", "10.231.7.0/24")


@pytest.mark.parametrize("wire,value", [
    (b"+OK\r\n", "OK"), (b":42\r\n", 42), (b"$5\r\nhello\r\n", "hello"), (b"$-1\r\n", None),
    (b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n", ["a", "bc"]), (b"*0\r\n", []),
])
def test_redis_replies(wire, value):
    assert store._reply(io.BytesIO(wire)) == value


def test_a_redis_error_is_raised():
    with pytest.raises(OSError, match="WRONGTYPE"):
        store._reply(io.BytesIO(b"-WRONGTYPE not a list\r\n"))
