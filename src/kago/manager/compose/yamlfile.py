"""A compose file read with PyYAML, keeping the line of every value.

    doc, lines = read("compose.yaml", text)

``doc`` is plain Python (dicts, lists, strings, numbers, booleans, None); ``lines`` maps a
value's path (``("services", "web", "ports", 0)``) to (file, line) so that an error about
it can name where it was written. Anchors, aliases and ``<<`` merge keys are YAML's; keys are
strings. As compose reads YAML 1.2, only true and false are booleans: ``restart: no`` and
``WORD: yes`` are the strings "no" and "yes" (PyYAML's YAML 1.1 would make them booleans).
"""

import re

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's booleans (true/false only)."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))

from kago.manager.compose.errors import ComposeError


def read(name, text):
    """(doc, lines) of YAML ``text`` from file ``name``; ComposeError at the mark of a YAML
    error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        lines = {}
        doc = _value(loader, node, (), name, lines)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        raise ComposeError(f"invalid YAML: {e.problem or e.context}", name, line) from None
    except yaml.YAMLError as e:
        raise ComposeError(f"invalid YAML: {e}", name) from None
    finally:
        loader.dispose()
    if not isinstance(doc, dict):
        raise ComposeError("the top level must be a mapping (services: ...)", name, 1)
    return doc, lines


def _value(loader, node, path, name, lines):
    lines[path] = (name, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # the << merge keys
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ComposeError("a mapping key must be a plain value", name,
                                   key_node.start_mark.line + 1)
            key = key_node.value
            out[key] = _value(loader, value_node, path + (key,), name, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_value(loader, item, path + (i,), name, lines)
                for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def read_env_file(path, what=None):
    """KEY=VALUE lines (``# comments``, ``export KEY=...``, single or double quotes) of a
    .env or env_file -> {key: value}; a line without ``=`` is KEY with an empty value."""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        import os
        raise ComposeError(f"cannot read: {os.strerror(e.errno).lower()}", what or path) \
            from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, eq, value = line.partition("=")
        key = key.strip()
        if not key or any(c.isspace() for c in key):
            raise ComposeError(f"invalid line {raw!r}: use KEY=VALUE", what or path, number)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            quote, value = value[0], value[1:-1]
            if quote == '"':
                value = value.replace("\\n", "\n").replace('\\"', '"')
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value if eq else ""
    return out
