"""What the supervisor reads of a container's definition (its terminal, restart policy, --rm,
log rotation, healthcheck), straight from the record's JSON.

The typed Definition (kago.manager.definition) costs ~3 MB of the supervisor's memory to
import (dataclasses, typing, inspect, ast and the model: most of what it would hold for its
own code), for five fields. This reads those five from the record's ``definition`` document,
where serial.py leaves out every field at its default, so a missing key is the model's
default (restated below; tests/unit/test_supervisor_settings.py checks them against the model
over many definitions). A record in any other shape (no definition yet, another format) goes
through the model's own reader, ``definition.of``, imported then.

    s = settings.of(record)
    s.tty, s.auto_remove, s.restart.name, s.restart.max_retries, s.log.max_size,
    s.log.max_files, s.healthcheck (None or .test, .interval, .timeout, .start_period,
    .start_interval, .retries)
"""

FORMAT = 1  # serial.FORMAT: the only one read here


class _Fields:
    """A read-only record of a few fields (the typed parts' attribute names)."""

    __slots__ = ()

    def __init__(self, doc, defaults):
        for name, default in defaults:
            value = doc.get(name, default)
            object.__setattr__(self, name, tuple(value) if isinstance(value, list) else value)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__}.{name} is read-only")

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


class RestartPolicy(_Fields):
    __slots__ = ("name", "max_retries")
    DEFAULTS = (("name", "no"), ("max_retries", 0))


class LogOptions(_Fields):
    __slots__ = ("max_size", "max_files")
    DEFAULTS = (("max_size", 10 * 1024 * 1024), ("max_files", 3))


class Healthcheck(_Fields):
    __slots__ = ("test", "interval", "timeout", "start_period", "start_interval", "retries")
    DEFAULTS = (("test", ()), ("interval", 0), ("timeout", 0), ("start_period", 0),
                ("start_interval", 0), ("retries", 0))


class Settings(_Fields):
    __slots__ = ("tty", "auto_remove", "restart", "log", "healthcheck")
    DEFAULTS = (("tty", False), ("auto_remove", False), ("restart", None), ("log", None),
                ("healthcheck", None))

    def __init__(self, doc):
        super().__init__(doc, self.DEFAULTS)
        parts = {"restart": RestartPolicy(doc.get("restart") or {}, RestartPolicy.DEFAULTS),
                 "log": LogOptions(doc.get("log") or {}, LogOptions.DEFAULTS)}
        if doc.get("healthcheck") is not None:
            parts["healthcheck"] = Healthcheck(doc["healthcheck"], Healthcheck.DEFAULTS)
        for name, value in parts.items():
            object.__setattr__(self, name, value)


def of(record):
    """The settings of a record's container (definition.of's values, without the model)."""
    doc = record.get("definition")
    if isinstance(doc, dict) and doc.get("format") == FORMAT:
        return Settings(doc)
    from kago.manager.definition import of as typed  # no definition yet, or another format
    return typed(record)
