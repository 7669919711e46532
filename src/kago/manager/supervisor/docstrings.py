"""kago's docstrings left out of the supervisor's memory: an import hook, installed first
thing by the supervisor's command line (client._spawn), that loads every ``kago.*`` module it
imports from then on without them.

The supervisor lives long and imports ~140 of kago's modules (its own, and the runtime its
start workers fork from, pre-imported); their docstrings are ~0.15 MB of its ~5.4 MB of heap
(bench/supervisor_memory). ``-OO`` would drop them too, but also every ``assert``, and it reads
``.opt-2.pyc`` files of its own (the standard library's too, compiled in process at the first
start: the compiler's leftovers stay in the heap). Here only docstrings go, so behaviour is
the same: nothing in kago reads ``__doc__`` at run time (the CLI's help texts are plain
strings, and the CLI is another process), asserts stay, the ``.pyc`` files read and written
are the ordinary ones (the code is stripped after it is loaded), and a traceback's lines and
columns are as before.

What is left out: a function's docstring (a function's first constant is its docstring or
None; kept when its body loads that same string as a value, the compiler having shared the
constant), and a module's and its classes' ``__doc__`` once the module has run. A module's and
a class's own code runs once and is dropped, so their docstrings are freed as the next
modules load, which reuse the memory.
"""

import _frozen_importlib_external as _external

_CO_NEWLOCALS = 0x0002  # set on a function's code (a module's or a class body's has it not)
_LOAD_CONST_0 = bytes((100, 0))  # LOAD_CONST 0 (3.11's opcode 100)


def _loads_first_constant(code):
    raw = code.co_code
    at = raw.find(_LOAD_CONST_0)
    while at != -1:
        if at % 2 == 0 and (at == 0 or raw[at - 2] != 144):  # not after an EXTENDED_ARG
            return True
        at = raw.find(_LOAD_CONST_0, at + 1)
    return False


def strip(code):
    """``code`` with its functions' docstrings (its own, its nested code's) replaced by None;
    the same object when it has none."""
    consts = code.co_consts
    new = None
    for i, const in enumerate(consts):
        if type(const) is type(code):
            inner = strip(const)
            if inner is not const:
                new = new or list(consts)
                new[i] = inner
    if code.co_flags & _CO_NEWLOCALS and consts and type(consts[0]) is str \
            and not _loads_first_constant(code):
        new = new or list(consts)
        new[0] = None
    return code if new is None else code.replace(co_consts=tuple(new))


def forget(module):
    """Drop ``module``'s docstring and those of the classes it defines."""
    module.__doc__ = None
    name = module.__name__
    for value in list(vars(module).values()):
        if isinstance(value, type) and value.__module__ == name and "__doc__" in vars(value):
            try:
                value.__doc__ = None
            except (AttributeError, TypeError):  # a class that refuses it keeps its text
                pass


class Loader(_external.SourceFileLoader):
    """A source module's loader that strips what it loads (the .pyc it reads or writes is the
    usual one)."""

    def get_code(self, fullname):
        return strip(super().get_code(fullname))

    def exec_module(self, module):
        super().exec_module(module)
        forget(module)


class Finder:
    """On sys.meta_path ahead of the path finder: the modules under ``prefix`` (a package name
    and a dot) are found as usual, and loaded by ``Loader``."""

    def __init__(self, prefix):
        self.prefix = prefix

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(self.prefix):
            return None
        spec = _external.PathFinder.find_spec(fullname, path, target)
        if spec is not None and type(spec.loader) is _external.SourceFileLoader:
            spec.loader = Loader(spec.loader.name, spec.loader.path)
        return spec

    def invalidate_caches(self):
        pass


def drop(prefix="kago."):
    """From now on, load the modules under ``prefix`` without their docstrings."""
    import sys
    if not any(isinstance(f, Finder) and f.prefix == prefix for f in sys.meta_path):
        sys.meta_path.insert(0, Finder(prefix))
