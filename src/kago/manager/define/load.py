"""Loading a definition file: run it as Python, collect its Containers, check every one.

Whatever goes wrong -- a syntax error, an exception the program raises, a bad value in a
Container -- becomes one DefinitionError naming the file and the line (the line of the
``Container(...)`` call, or of the assignment, for a bad value), and nothing has been started:
loading only runs the file and builds each container's Definition
(kago.manager.definition).

The file runs with ``env`` (the ``-e KEY=VAL`` values, a dict) and the DSL's names
(``Container``, ``id_range``, ``tcp``, ...) already defined; ``from kago.manager.define import
...`` works too.
"""

import os
import traceback

from kago.errors import KagoError
from kago.manager.define import dsl
from kago.manager.errors import DefinitionError


class DefinitionFile:
    """A loaded file: its path, env, the Containers in definition order and their
    Definitions (``definitions[name]``)."""

    def __init__(self, path, env, containers, console=None):
        self.path = path
        self.env = env
        self.containers = containers
        self.console = console  # a dsl.Console, or None
        self.definitions = {}

    def container(self, name):
        return next(c for c in self.containers if c.name == name)

    def resident(self):
        return any(c.resident() for c in self.containers)


def load(path, env=None):
    path = os.path.abspath(path)
    env = dict(env or {})
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as e:
        raise DefinitionError(path, 0, f"cannot read: {os.strerror(e.errno).lower()}") from None
    from kago.manager import define
    define.env.clear()
    define.env.update(env)
    namespace = {"__file__": path, "__name__": "__kago_definition__", "env": define.env}
    namespace.update({name: getattr(define, name) for name in define.__all__})
    dsl._registry.clear()
    dsl._consoles.clear()
    try:
        code = compile(source, path, "exec")
        exec(code, namespace)  # noqa: S102 - running the user's definition is the point
    except SyntaxError as e:
        raise DefinitionError(path, e.lineno or 0, f"syntax error: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - any error in the program is the user's to see
        raise DefinitionError(path, _line_in(e, path), _what(e)) from None
    finally:
        containers, consoles = list(dsl._registry), list(dsl._consoles)
        dsl._registry.clear()
        dsl._consoles.clear()
    if not containers:
        raise DefinitionError(path, 0, "defines no container (make Container(...) objects)")
    if len(consoles) > 1:
        raise DefinitionError(path, consoles[1].line, f"console() is given twice (also on "
                                                      f"line {consoles[0].line})")
    definition = DefinitionFile(path, env, containers, consoles[0] if consoles else None)
    check(definition)
    return definition


def check(definition):
    """Every container's Definition, built and checked before anything happens."""
    seen = {}
    for c in definition.containers:
        if c.name in seen:
            raise DefinitionError(c.file or definition.path, c.line,
                                  f'container name "{c.name}" is also used on line '
                                  f"{seen[c.name]}")
        seen[c.name] = c.line
        if not c.file:
            object.__setattr__(c, "file", definition.path)
        definition.definitions[c.name] = c.to_definition(os.path.dirname(definition.path))


def _line_in(error, path):
    """The line of ``path`` nearest the error: the deepest frame in the definition file."""
    line = 0
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.abspath(frame.filename) == path:
            line = frame.lineno
    return line


def _what(error):
    text = str(error)
    if isinstance(error, KagoError):
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["DefinitionFile", "load"]
