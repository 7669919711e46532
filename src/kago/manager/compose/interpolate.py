"""Compose's variable interpolation: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+other}``, ``${VAR+other}``
and ``$$`` for a literal ``$``; defaults may hold variables themselves.

    text = substitute("${TAG:-latest}", {"TAG": "1"}, "services.web.image")

Values are interpolated, keys are not (as compose). An unset variable without a default is
an empty string and a warning; ``?`` makes it an error naming the field.
"""

from kago.manager.compose.errors import ComposeError

_NAME_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_NAME_REST = _NAME_FIRST + "0123456789"


class Missing(ComposeError):
    """${VAR?message} with VAR unset (the caller adds where)."""


def substitute(text, env, field="", warn=None):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2, field)
            out.append(_braced(text[i + 2:end], env, field, warn))
            i = end + 1
        elif nxt and nxt in _NAME_FIRST:
            j = i + 1
            while j < len(text) and text[j] in _NAME_REST:
                j += 1
            out.append(_lookup(text[i + 1:j], env, field, warn))
            i = j
        else:
            raise ComposeError(f'invalid interpolation format in "{text}": use $$ for a '
                               f"literal $", path=field)
    return "".join(out)


def _closing(text, start, field):
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{" and text[j - 1] == "$":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ComposeError(f'invalid interpolation format in "{text}": no closing }}', path=field)


def _braced(inner, env, field, warn):
    j = 0
    while j < len(inner) and inner[j] in _NAME_REST:
        j += 1
    name, rest = inner[:j], inner[j:]
    if not name or name[0] not in _NAME_FIRST:
        raise ComposeError(f'invalid interpolation format in "${{{inner}}}"', path=field)
    if not rest:
        return _lookup(name, env, field, warn)
    for op in (":-", ":?", ":+", "-", "?", "+"):
        if rest.startswith(op):
            arg = rest[len(op):]
            break
    else:
        raise ComposeError(f'invalid interpolation format in "${{{inner}}}"', path=field)
    value = env.get(name)
    unset = value is None or (op.startswith(":") and value == "")
    kind = op[-1]
    if kind == "-":
        return substitute(arg, env, field, warn) if unset else value
    if kind == "+":
        return "" if unset else substitute(arg, env, field, warn)
    if unset:  # ?
        message = substitute(arg, env, field, warn) if arg else f"{name} is not set"
        raise Missing(f"required variable {name} is missing a value: {message}", path=field)
    return value


def _lookup(name, env, field, warn):
    if name in env:
        return env[name]
    if warn:
        warn(f"the {name} variable is not set: defaulting to a blank string")
    return ""


def interpolate(doc, env, lines, warn=None, path=()):
    """Every string value of ``doc`` substituted (a new structure); an error names the file
    and line of the value (``lines``: yamlfile.read's)."""
    if isinstance(doc, dict):
        return {k: interpolate(v, env, lines, warn, path + (k,)) for k, v in doc.items()}
    if isinstance(doc, list):
        return [interpolate(v, env, lines, warn, path + (i,)) for i, v in enumerate(doc)]
    if isinstance(doc, str) and "$" in doc:
        from kago.manager.compose.errors import dotted
        try:
            return substitute(doc, env, dotted(path), warn)
        except ComposeError as e:
            file, line = lines.get(path, (None, None))
            raise ComposeError(str(e), file, line) from None
    return doc
