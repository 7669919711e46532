"""connections.py's record rules: which network is a container's first, which connections a
record names, and when a further network's attachment is nobody's (system prune)."""

import os
import types

from kago.manager import connections, journal
from kago.manager.definition import Definition, Network, to_json


def record(network=None, conns=(), definition=None):
    return {"id": "c" * 64, "name": "app", "network": network,
            "definition": to_json(definition or Definition(image="busybox")),
            "connections": list(conns)}


CTX = types.SimpleNamespace(nets=types.SimpleNamespace(default_network="kago"))


def test_first_network_from_the_attachment_else_the_definition():
    assert connections.first_network(CTX, record({"network": "front"})) == "front"
    assert connections.first_network(CTX, record()) == "kago"      # released: the default
    named = Definition(image="i", network=Network(mode="bridge", name="back"))
    assert connections.first_network(CTX, record(definition=named)) == "back"
    host = Definition(image="i", network=Network(mode="host"))
    assert connections.first_network(CTX, record(definition=host)) is None


def test_an_attachment_is_stale_without_its_entry_or_with_a_dead_pending_one():
    done = {"network": "back"}
    mine = {"network": "side", "pending": journal.creator()}       # this process: alive
    dead = {"network": "gone", "pending": {"pid": 2 ** 22 + 7, "start": 1}}
    r = record(conns=[done, mine, dead])
    assert connections.names(r) == ["back", "side", "gone"]
    assert not connections.stale(r, "back")
    assert not connections.stale(r, "side")
    assert connections.stale(r, "gone")
    assert connections.stale(r, "nowhere")
    assert os.getpid() == mine["pending"]["pid"]
