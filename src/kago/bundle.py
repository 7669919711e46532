"""kago-oci's start-path modules in one file: what CPython does for its own start-up modules.

Why: a plain ``run`` imports ~45 kago modules. Through the normal import system each one costs
a directory lookup, a stat of its source, an open/read of its ``.pyc`` and an unmarshal: about
11 ms in all on a 2-core VM, a third of the whole ``run``. Read from one file, with docstrings and
column tables (``-X no_debug_ranges``) left out of the code objects, the same imports take
about 3 ms less. CPython freezes its own start-up modules (``os``, ``posixpath``...) for the
same reason; PyOxidizer does this for whole applications.

The bundle is a cache, never the source of truth:

- ``./dev setup`` writes it (``python -X no_debug_ranges -m kago.bundle``) beside the package;
  without it, or with ``KAGO_NO_BUNDLE=1`` in the environment, imports are the normal ones.
- Every entry records its source's size and mtime; the finder stats the source before using an
  entry and steps aside (normal import) for any module edited since the bundle was written, so
  a stale bundle can be slow, never wrong.
- Only code objects are in it: the modules execute exactly as if imported from their ``.pyc``
  (same ``__name__``, ``__file__``, ``__path__``, same line numbers in tracebacks).

Build: ``python -X no_debug_ranges -m kago.bundle [OUT]``. Use (the launchers)::

    from kago import bundle
    bundle.install()
"""

import marshal
import os
import sys

FILE_NAME = "kago-oci.bundle"
FORMAT = 2
# The file: MAGIC, the index's length (4 bytes, little-endian), the index (marshal: format,
# interpreter magic, {name: (origin, is_package, size, mtime_ns, offset, length)}), then the
# modules' marshalled code objects one after another. Only the index is unmarshalled at start
# (a verb such as ``state`` uses a fifth of the modules); each module's code is unmarshalled
# from its slice of the file when it is imported.
MAGIC = b"KGOB"
# The manager's packages and the test helpers never run in kago-oci: leaving them out keeps
# the file (which is read whole at every start) small.
EXCLUDED = ("kago.manager", "kago.storage", "kago.network", "kago.testing", "kago.client",
            "kago.bundle",
            # kago's command line (kago.cli.main and its verbs' modules)
            "kago.cli.main", "kago.cli.common", "kago.cli.flags", "kago.cli.run",
            "kago.cli.lifecycle", "kago.cli.views", "kago.cli.exec", "kago.cli.images",
            "kago.cli.networks", "kago.cli.system", "kago.cli.definitions", "kago.cli.demo",
            "kago.cli.demo_web", "kago.examples",
            "kago.cli.nethook", "kago.cli.resolver")


def default_path():
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__", FILE_NAME)


class BundleFinder:
    """A meta path finder and loader serving modules from a bundle file.

    ``entries`` maps a module name to ``(origin, is_package, size, mtime_ns, offset, length)``
    of its code in the file open as ``fd`` (close-on-exec); the code is read (``pread``) and
    unmarshalled only when the module is imported. ``ident`` is the file's (device, inode):
    a process that closed the fd and reused its number for another file (the container
    process arranges its fds) gets the normal import, never another file's bytes.
    """

    def __init__(self, entries, fd, ident):
        self.entries = entries
        self.fd = fd
        self.ident = ident

    def find_spec(self, name, path=None, target=None):
        entry = self.entries.get(name)
        if entry is None:
            return None
        origin, is_package, size, mtime_ns = entry[:4]
        try:
            st = os.stat(origin)
        except OSError:
            return None
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return None  # edited since the bundle was built: the normal import has it right
        try:
            fst = os.fstat(self.fd)
        except OSError:
            return None
        if (fst.st_dev, fst.st_ino) != self.ident:
            return None  # the fd is no longer the bundle's
        spec = _module_spec(name, self, origin=origin, is_package=is_package)
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        offset, length = self.entries[module.__spec__.name][4:6]
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise ImportError(f"{module.__spec__.name}: the kago-oci bundle is truncated")
        exec(marshal.loads(data), module.__dict__)


def _module_spec(name, loader, origin, is_package):
    # importlib.machinery.ModuleSpec without importing importlib (~0.6 ms): the frozen
    # bootstrap module the interpreter already loaded has the same class.
    spec_class = sys.modules["_frozen_importlib"].ModuleSpec
    spec = spec_class(name, loader, origin=origin, is_package=is_package)
    if is_package:
        spec.submodule_search_locations = [os.path.dirname(origin)]
    return spec


def install(path=None):
    """Put the bundle's finder first on ``sys.meta_path``; return it, or None if there is none.

    Any problem reading the bundle (missing, truncated, another Python's marshal format) means
    no bundle: the normal imports work, only slower. Only the index is read here (~9 KB of
    ~650 KB): reading the whole file cost ~0.35 ms of every start.
    """
    if os.environ.get("KAGO_NO_BUNDLE"):
        return None
    try:
        fd = _high_fd(os.open(path or default_path(), os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        index = read_index(fd, st.st_size)
    except (OSError, EOFError, ValueError, TypeError):
        index = None
    if index is None:
        os.close(fd)
        return None
    finder = BundleFinder(index, fd, (st.st_dev, st.st_ino))
    sys.meta_path.insert(0, finder)
    return finder


def _high_fd(fd):
    """The fd moved to 512 or above: it stays open for the whole run, and a low number could be
    one a caller names in ``--preserve-fds`` without having opened it."""
    import fcntl
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 512)
    except OSError:
        return fd  # RLIMIT_NOFILE below 513: keep the low one
    os.close(fd)
    return high


def read_index(fd, size):
    """The bundle's {name: entry} from its open file, or None when it is not a bundle of this
    format written by this interpreter. Raises ValueError/EOFError/TypeError on garbage."""
    head = os.pread(fd, 16384, 0)
    if head[:4] != MAGIC:
        return None
    end = 8 + int.from_bytes(head[4:8], "little")
    if end > len(head):
        head += os.pread(fd, end - len(head), len(head))
    data = marshal.loads(head[8:end])
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or data.get("magic") != _magic():
        return None
    modules = data["modules"]
    for entry in modules.values():
        if entry[4] + entry[5] + end > size:
            return None  # truncated
    return {name: entry[:4] + (entry[4] + end, entry[5]) for name, entry in modules.items()}


def _magic():
    # The interpreter's bytecode version: a bundle written by another Python is ignored.
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


# ------------------------------------------------------------------ building


def build(out=None, package_dir=None):
    """Compile every kago module but the EXCLUDED ones into one bundle file; return its path."""
    package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
    out = out or os.path.join(package_dir, "__pycache__", FILE_NAME)
    modules, codes, offset = {}, [], 0
    for name, origin, is_package in _walk(package_dir):
        if name.startswith(EXCLUDED):
            continue
        st = os.stat(origin)
        code = marshal.dumps(_compile(origin))
        modules[name] = (origin, is_package, st.st_size, st.st_mtime_ns, offset, len(code))
        codes.append(code)
        offset += len(code)
    index = marshal.dumps({"format": FORMAT, "magic": _magic(), "modules": modules})
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(MAGIC + len(index).to_bytes(4, "little") + index + b"".join(codes))
    os.replace(tmp, out)
    return out


def _walk(package_dir):
    """(module name, source path, is package) for every .py under the kago package."""
    root = os.path.dirname(package_dir)
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        if "__init__.py" not in filenames:
            dirnames[:] = []
            continue
        package = os.path.relpath(dirpath, root).replace(os.sep, ".")
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            origin = os.path.join(dirpath, filename)
            if filename == "__init__.py":
                yield package, origin, True
            else:
                yield f"{package}.{filename[:-3]}", origin, False


def _compile(origin):
    """The module's code without docstrings (they are most of some modules' bytecode).

    Asserts stay (unlike ``-OO``): only docstrings go, so behaviour is unchanged; nothing in
    kago reads ``__doc__`` at run time (the CLI's help texts are plain strings).
    """
    import ast

    with open(origin, "rb") as f:
        tree = ast.parse(f.read(), origin)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            _drop_docstring(ast, node)
    return compile(tree, origin, "exec", dont_inherit=True)


def _drop_docstring(ast, node):
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.copy_location(ast.Pass(), body[0])]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if sys.flags.optimize:
        print("kago.bundle: build without -O (asserts must stay)", file=sys.stderr)
        return 2
    print(build(argv[0] if argv else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
