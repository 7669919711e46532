"""The supervisor's reader of a record's definition (supervisor/settings.py) gives what the
typed model gives (definition.of) for the fields the supervisor uses, over definitions that
set each of them and ones that leave them at their defaults."""

import json

import pytest

from kago.manager.definition import (
    Definition,
    Healthcheck,
    LogOptions,
    RestartPolicy,
    of,
    to_json,
)
from kago.manager.errors import ManagerError
from kago.manager.supervisor import settings

DEFINITIONS = [
    Definition(),
    Definition(image="busybox", tty=True),
    Definition(auto_remove=True),
    Definition(restart=RestartPolicy("always")),
    Definition(restart=RestartPolicy("on-failure", 3)),
    Definition(restart=RestartPolicy("unless-stopped")),
    Definition(log=LogOptions(max_size=1024)),
    Definition(log=LogOptions(max_files=7)),
    Definition(log=LogOptions(2048, 1)),
    Definition(healthcheck=Healthcheck()),
    Definition(healthcheck=Healthcheck(("NONE",))),
    Definition(healthcheck=Healthcheck(("CMD", "true"), interval=10**9, retries=2)),
    Definition(healthcheck=Healthcheck(("CMD-SHELL", "exit 1"), timeout=5, start_period=7,
                                       start_interval=3)),
    Definition(tty=True, auto_remove=True, log=LogOptions(1, 1),
               healthcheck=Healthcheck(("CMD", "a", "b"))),
]

FIELDS = ("tty", "auto_remove")
PARTS = {"restart": ("name", "max_retries"), "log": ("max_size", "max_files"),
         "healthcheck": ("test", "interval", "timeout", "start_period", "start_interval",
                         "retries")}


def as_record(definition):
    # through JSON text, as a record is read back from its file
    return json.loads(json.dumps({"id": "c1", "definition": to_json(definition)}))


def values(view):
    out = {name: getattr(view, name) for name in FIELDS}
    for part, names in PARTS.items():
        value = getattr(view, part)
        out[part] = None if value is None else {n: getattr(value, n) for n in names}
    return out


@pytest.mark.parametrize("definition", DEFINITIONS, ids=repr)
def test_the_same_values_as_the_model(definition):
    record = as_record(definition)
    assert values(settings.of(record)) == values(of(record))


def test_the_model_defaults_are_the_ones_restated():
    assert values(settings.Settings({})) == values(Definition())
    d = Definition(healthcheck=Healthcheck())
    assert values(settings.Settings({"healthcheck": {}}))["healthcheck"] == \
        values(d)["healthcheck"]


def test_a_record_without_a_definition_reads_the_default_one():
    assert values(settings.of({"id": "c1"})) == values(Definition())


def test_another_format_is_refused_as_the_model_does():
    with pytest.raises(ManagerError, match="format 99"):
        settings.of({"id": "c1", "definition": {"format": 99}})


def test_read_only():
    s = settings.of(as_record(Definition(tty=True)))
    with pytest.raises(AttributeError):
        s.tty = False
    with pytest.raises(AttributeError):
        s.restart.name = "always"
