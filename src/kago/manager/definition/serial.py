"""A Definition as JSON, for the container's record, and back.

    doc = to_json(definition)       # {"format": 1, "image": ..., "limits": {...}, ...}
    definition = from_json(doc)     # restored as it was built: nothing is parsed again

Parts become objects, tuples become arrays; fields left at their defaults are left out, so a
record holds what its container asked for. ``from_json`` trusts the document (it was checked
when built), but refuses a format it does not know. Records written before the Definition
existed hold a ``config`` dict instead: ``stored`` converts that one through the builder of
from_config.py.
"""

import dataclasses
import types
import typing

from kago.manager.definition.model import Definition
from kago.manager.errors import ManagerError

FORMAT = 1


def to_json(definition):
    doc = {"format": FORMAT}
    doc.update(_encode(definition))
    return doc


def from_json(doc):
    version = doc.get("format")
    if version != FORMAT:
        raise ManagerError(f"a container definition in format {version!r}: this kago reads "
                           f"format {FORMAT} (a newer kago wrote it?)")
    return _decode(Definition, {k: v for k, v in doc.items() if k != "format"})


def stored(record):
    """The Definition of a container record; None for a record that has none yet (a create
    cut short before it was written)."""
    doc = record.get("definition")
    if doc is not None:
        return from_json(doc)
    if record.get("config") is not None:
        from kago.manager.definition.from_config import from_config
        return from_config(record["config"])
    return None


def of(record):
    """The Definition of a record, or the default one for a record that has none yet (what
    its readers of a flag -- auto_remove, restart, log -- should then see)."""
    return stored(record) or Definition()


def _encode(value):
    if dataclasses.is_dataclass(value):
        out = {}
        for name, default in _defaults(type(value)):
            item = getattr(value, name)
            if item != default:
                out[name] = _encode(item)
        return out
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


_DEFAULTS = {}


def _defaults(kind):
    """((field name, default), ...) of a dataclass, made once per class: only compared with,
    never handed out (a default_factory's value is built once, not per record)."""
    found = _DEFAULTS.get(kind)
    if found is None:
        found = _DEFAULTS[kind] = tuple((f.name, _default(f))
                                        for f in dataclasses.fields(kind))
    return found


def _default(f):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _decode(kind, value):
    if value is None:
        return None
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{name: _decode(hints[name], item) for name, item in value.items()
                       if name in hints})
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _decode(inner[0], value) if len(inner) == 1 else value
    if origin is tuple:
        args = typing.get_args(kind)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if kind is float and isinstance(value, int):
        return float(value)
    return value


_HINTS = {}


def _hints(kind):
    if kind not in _HINTS:
        _HINTS[kind] = typing.get_type_hints(kind)
    return _HINTS[kind]
