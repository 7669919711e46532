"""A Containerfile's text -> its instructions (pure).

What docker's parser does, and in the same order:

- parser directives first: ``# escape=`` (``\\`` or a backquote) and ``# syntax=`` (read,
  ignored), only before any instruction, comment or empty line;
- a line whose first non-blank character is ``#`` is a comment, also between the lines of a
  continued instruction; empty lines there are skipped too;
- the escape character at the end of a line (blanks after it allowed) continues the
  instruction on the next line; the two are joined without a space;
- the first word is the instruction (any case); flags ``--name=value`` or ``--name`` follow;
  the rest is its arguments, in JSON form when it is a JSON array of strings (exec form),
  else as written (shell form).

Every error names the file and the line: ``Containerfile:7: unknown instruction FOO``.
Heredocs (``RUN <<EOF``) are refused with a line saying so.
"""

import json
import re

from kago.manager.build.errors import BuildError, at

KNOWN = ("FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY",
         "ENTRYPOINT", "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL",
         "HEALTHCHECK", "SHELL")
UNSUPPORTED = {"ONBUILD": "ONBUILD is not supported by kago build"}
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"(?:^|\s)<<-?\s*[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?(\s|$)")
_FLAG = re.compile(r"--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?$")


class Instruction:
    """One instruction: ``keyword`` in upper case, ``flags`` ((name, value or None), ...),
    ``args`` the text after the flags, ``json`` the exec form's list (None for shell form),
    ``line`` the line it starts on, ``source`` the file's name, ``text`` as written."""

    __slots__ = ("args", "flags", "json", "keyword", "line", "source", "text")

    def __init__(self, keyword, args, line, source="Containerfile", flags=(), json=None,
                 text=""):
        self.keyword = keyword
        self.args = args
        self.line = line
        self.source = source
        self.flags = tuple(flags)
        self.json = None if json is None else tuple(json)
        self.text = text or f"{keyword} {args}".strip()

    @property
    def where(self):
        return at(self.source, self.line)

    def error(self, message):
        return BuildError(message, self.where)

    def flag(self, name, default=None):
        for key, value in self.flags:
            if key == name:
                return value
        return default

    def __repr__(self):
        return f"Instruction({self.keyword!r}, {self.args!r}, line={self.line})"

    def __eq__(self, other):
        return isinstance(other, Instruction) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)


class Containerfile:
    """A parsed file: its instructions in order and its escape character."""

    __slots__ = ("escape", "instructions", "source")

    def __init__(self, instructions, escape="\\", source="Containerfile"):
        self.instructions = list(instructions)
        self.escape = escape
        self.source = source


def parse(text, source="Containerfile"):
    """Parse a Containerfile's text; BuildError naming the line on anything wrong."""
    lines = text.splitlines()
    escape, first = _directives(lines, source)
    instructions = []
    i = first
    while i < len(lines):
        raw = lines[i]
        start = i + 1
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        joined, i = _join(lines, raw, i, escape)
        if not joined.strip():
            continue
        instructions.append(_instruction(joined.strip(), start, source, escape))
    return Containerfile(instructions, escape, source)


def _directives(lines, source):
    escape = "\\"
    seen = set()
    for index, line in enumerate(lines):
        m = _DIRECTIVE.match(line.strip()) if line.strip().startswith("#") else None
        if not m:
            return escape, index
        name, value = m.group(1).lower(), m.group(2)
        if name not in ("escape", "syntax", "check"):
            return escape, index  # an ordinary comment ends the directives
        if name in seen:
            raise BuildError(f"only one {name} parser directive can be used",
                             at(source, index + 1))
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise BuildError(f"invalid escape token '{value}' does not match ` or \\",
                                 at(source, index + 1))
            escape = value
    return escape, len(lines)


def _continues(line, escape):
    body = line.rstrip(" \t")
    return body.endswith(escape), body[:-1] if body.endswith(escape) else line


def _join(lines, first, i, escape):
    """The instruction that starts with ``first``, its continuation lines joined."""
    more, text = _continues(first, escape)
    while more and i < len(lines):
        line = lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments and empty lines inside a continued instruction
        more, part = _continues(line, escape)
        text += part
    return text, i


def _instruction(text, line, source, escape):
    where = at(source, line)
    word, _, rest = text.partition(" ")
    if "\t" in word:
        word, _, tail = word.partition("\t")
        rest = tail + " " + rest
    keyword = word.upper()
    if keyword not in KNOWN:
        raise BuildError(f"unknown instruction {word}", where)
    if keyword in UNSUPPORTED:
        raise BuildError(UNSUPPORTED[keyword], where)
    flags, rest = _flags(rest.strip(), where)
    if keyword in ("RUN", "COPY", "ADD") and _HEREDOC.search(rest):
        raise BuildError(f"{keyword} with a heredoc (<<) is not supported by kago build", where)
    return Instruction(keyword, rest, line, source, flags, json_form(rest), text.strip())


def json_form(rest):
    """The exec form's list when ``rest`` is a JSON array of strings, else None."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _flags(rest, where):
    flags = []
    while rest.startswith("--"):
        word, _, tail = rest.partition(" ")
        if word == "--":
            break
        m = _FLAG.match(word)
        if not m:
            raise BuildError(f"bad flag {word}: use --name=value", where)
        flags.append((m.group(1), m.group(2)))
        rest = tail.lstrip()
    return flags, rest
