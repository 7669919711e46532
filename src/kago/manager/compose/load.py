"""Compose files -> one resolved document: read (yamlfile.py), interpolated with the
environment and the .env file beside the first file (interpolate.py), merged in order
(merge.py), and named.

    project = load(["compose.yaml"], project_name=None, environ=os.environ)
    project.name, project.directory, project.doc, project.where(("services", "web"))

Without files: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml in the
current directory (and compose.override.yaml/.yml or docker-compose.override.yaml/.yml beside
it, as compose). The project's name: ``-p``, else $COMPOSE_PROJECT_NAME, else the file's
top-level ``name:``, else the directory's name; normalised as compose does (lower case, only
a-z 0-9 _ -, starting with a letter or digit).
"""

import os

from kago.manager.compose import interpolate as I
from kago.manager.compose import merge as M
from kago.manager.compose import yamlfile
from kago.manager.compose.errors import ComposeError

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")
TOP_LEVEL = ("version", "name", "services", "networks", "volumes")


class NoComposeFile(ComposeError):
    """No -f and none of DEFAULT_FILES in the directory."""


class Project:
    """The resolved compose document of one project, and where each value was written."""

    def __init__(self, name, directory, files, doc, lines, env, warn=None):
        self.name, self.directory, self.files = name, directory, files
        self.doc, self.lines, self.env = doc, lines, env
        self.warn = warn or (lambda _line: None)

    def where(self, path):
        """(file, line) of ``path``, or of the nearest value around it that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return (self.files[0] if self.files else None), None

    def error(self, path, message):
        from kago.manager.compose.errors import dotted
        file, line = self.where(path)
        return ComposeError(message, file, line, dotted(path))

    @property
    def services(self):
        return self.doc.get("services") or {}


def find_files(cwd):
    for name in DEFAULT_FILES:
        if os.path.isfile(os.path.join(cwd, name)):
            files = [name]
            for over in OVERRIDE_FILES:
                if os.path.isfile(os.path.join(cwd, over)):
                    files.append(over)
                    break
            return files
    raise NoComposeFile(f"no compose file in {cwd} (compose.yaml, docker-compose.yml...; or "
                       f"give -f FILE)")


def load(files=None, project_name=None, environ=None, cwd=None, warn=None):
    cwd = cwd or os.getcwd()
    environ = dict(os.environ if environ is None else environ)
    files = list(files or ())
    if not files:
        files = [os.path.join(cwd, f) if cwd != os.getcwd() else f for f in find_files(cwd)]
    first = os.path.abspath(os.path.join(cwd, files[0]))
    directory = os.path.dirname(first)
    env = {}
    dotenv = os.path.join(directory, ".env")
    if os.path.isfile(dotenv):
        env.update(yamlfile.read_env_file(dotenv, _shown(dotenv, cwd)))
    env.update(environ)  # the shell's environment wins over .env, as compose
    doc, lines = None, {}
    for name in files:
        path = os.path.join(cwd, name)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ComposeError(f"cannot read: {os.strerror(e.errno).lower()}", name) from None
        one, one_lines = yamlfile.read(name, text)
        one = I.interpolate(one, env, one_lines, warn)
        if doc is None:
            doc, lines = one, one_lines
        else:
            doc, lines = M.merge(doc, lines, one, one_lines)
    name = project_name or env.get("COMPOSE_PROJECT_NAME") or doc.get("name") \
        or os.path.basename(directory)
    project = Project(normalize_name(str(name), files[0]), directory, files, doc, lines, env,
                      warn)
    _check_top(project)
    return project


def normalize_name(name, file=None):
    """compose's rule: lower case, only [a-z0-9_-], starting with a letter or a digit."""
    out = "".join(c for c in name.lower() if c in "abcdefghijklmnopqrstuvwxyz0123456789_-")
    out = out.lstrip("_-")
    if not out:
        raise ComposeError(f'project name "{name}" has no letter or digit: give -p NAME', file)
    return out


def _check_top(project):
    doc = project.doc
    for key in doc:
        if key.startswith("x-"):
            continue
        if key not in TOP_LEVEL:
            what = "not supported by kago compose" if key in ("configs", "secrets", "include") \
                else "not a compose key"
            raise project.error((key,), what)
    if not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise project.error(("services",), "a compose file needs services: a mapping of "
                                           "at least one service")
    for key in ("networks", "volumes"):
        if doc.get(key) is not None and not isinstance(doc[key], dict):
            raise project.error((key,), "must be a mapping of names")


def _shown(path, cwd):
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith("..") else rel
