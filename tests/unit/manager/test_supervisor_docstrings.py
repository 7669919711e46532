"""The supervisor's import hook (supervisor/docstrings.py): modules under its prefix load
without docstrings and behave as before (asserts, constants shared with a docstring, nested
code); the .pyc written is the ordinary one; modules outside the prefix are left alone."""

import importlib.util
import marshal
import subprocess
import sys
import textwrap

import pytest

from kago.manager.supervisor import docstrings
from kago.manager.supervisor.client import BOOT

SOURCE = '''\
"""The module's docstring."""


def plain(x):
    """A function's docstring."""
    return x + 1


def shares():
    """The same text."""
    return "The same text."


def checks(x):
    """Asserts stay."""
    assert x > 0, "x must be positive"
    return x


def nested():
    """Outer."""
    def inner():
        """Inner."""
        return "inner"
    return inner


def undocumented():
    return None


class Thing:
    """A class's docstring."""

    def method(self):
        """A method's docstring."""
        return [y for y in range(3)]

    @property
    def value(self):
        """A property's docstring."""
        return 7


async def coroutine():
    """A coroutine's docstring."""
    return 1


def generator():
    """A generator's docstring."""
    yield 1


square = lambda x: x * x  # noqa: E731
'''


@pytest.fixture
def hooked(tmp_path, monkeypatch):
    """A package ``kagodocs_<n>`` with the module above, and the hook for its prefix."""
    name = f"kagodocs_{tmp_path.name.replace('-', '_')}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text('"""The package."""\n')
    (package / "mod.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    docstrings.drop(f"{name}.")
    yield name, package
    for key in [k for k in sys.modules if k == name or k.startswith(f"{name}.")]:
        del sys.modules[key]


def test_the_docstrings_are_gone_and_the_code_behaves_as_before(hooked):
    name, _package = hooked
    mod = importlib.import_module(f"{name}.mod")
    assert isinstance(mod.__loader__, docstrings.Loader)
    assert mod.__doc__ is None
    assert mod.Thing.__doc__ is None
    assert mod.plain.__doc__ is None and mod.plain(1) == 2
    assert mod.Thing.method.__doc__ is None and mod.Thing().method() == [0, 1, 2]
    assert mod.Thing().value == 7
    assert mod.coroutine.__doc__ is None and mod.generator.__doc__ is None
    assert list(mod.generator()) == [1]
    assert mod.nested.__doc__ is None
    assert mod.nested()() == "inner" and mod.nested().__doc__ is None
    assert mod.square(3) == 9 and mod.undocumented() is None
    with pytest.raises(AssertionError, match="x must be positive"):
        mod.checks(0)
    assert mod.checks(2) == 2


def test_a_docstring_the_body_also_uses_stays(hooked):
    name, _package = hooked
    mod = importlib.import_module(f"{name}.mod")
    assert mod.shares() == "The same text."
    assert mod.shares.__doc__ == "The same text."


def test_the_pyc_written_keeps_its_docstrings(hooked, monkeypatch):
    name, package = hooked
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    importlib.import_module(f"{name}.mod")
    cached = importlib.util.cache_from_source(str(package / "mod.py"))
    with open(cached, "rb") as f:
        code = marshal.loads(f.read()[16:])
    assert "The module's docstring." in code.co_consts
    plain = next(c for c in code.co_consts if getattr(c, "co_name", None) == "plain")
    assert plain.co_consts[0] == "A function's docstring."


def test_a_subpackage_is_loaded_the_same_way_the_top_one_is_outside_the_prefix(hooked):
    name, package = hooked
    (package / "sub").mkdir()
    (package / "sub" / "__init__.py").write_text('"""A subpackage."""\nVALUE = 3\n')
    sub = importlib.import_module(f"{name}.sub")
    assert sub.__doc__ is None and sub.VALUE == 3
    assert importlib.import_module(name).__doc__ == "The package."


def test_other_modules_keep_theirs(hooked):
    assert importlib.import_module("kago.manager.supervisor.docstrings").__doc__


def test_installing_twice_adds_one_finder(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    docstrings.drop("kagodocs_twice.")
    docstrings.drop("kagodocs_twice.")
    assert sum(isinstance(f, docstrings.Finder) and f.prefix == "kagodocs_twice."
               for f in sys.meta_path) == 1


# after the supervisor's own first statements (client.BOOT, main() not called): the runtime
# opened and warmed as Starts.runtime_for does
WARMED = textwrap.dedent("""\
    from kago.manager.runtimes import open_runtime
    open_runtime(None, "/kago-no-such-root").warm()
    from kago.runtime import container
    from kago.manager.supervisor import server
    print(container.__doc__, container.warm.__doc__, server.Supervisor.__doc__)
""")


def test_the_supervisors_command_line_loads_kago_without_docstrings():
    program = BOOT.replace("sys.exit(main())", "pass") + "\n" + WARMED
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "None", "None"]
