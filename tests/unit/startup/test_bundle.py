"""kago.bundle: start-path modules served from one file, never wrong when stale."""

import marshal
import os
import subprocess
import sys
import textwrap

from kago import bundle


def make_package(root, name="bpkg"):
    pkg = root / name
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""package doc"""\nVALUE = "init"\n')
    (pkg / "mod.py").write_text(textwrap.dedent('''\
        """module doc, dropped from the bundle"""
        def f():
            """function doc"""
            assert False, "asserts stay"
        def where():
            return __file__
        '''))
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "deep.py").write_text("def boom():\n    x = 1\n    raise ValueError(x)\n")
    return pkg


def run_with_bundle(root, out, code):
    """Run CODE in a fresh interpreter with the bundle installed first on the meta path."""
    prog = (f"import sys; sys.path.insert(0, {str(root)!r}); from kago import bundle; "
            f"finder = bundle.install({str(out)!r}); " + code)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(bundle.__file__)))
    env.pop("KAGO_NO_BUNDLE", None)
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          env=env, timeout=60)


def test_modules_come_from_the_bundle_with_their_real_names_and_files(tmp_path):
    pkg = make_package(tmp_path)
    out = bundle.build(str(tmp_path / "b.bundle"), package_dir=str(pkg))
    proc = run_with_bundle(tmp_path, out, (
        "import bpkg.mod, bpkg.sub.deep\n"
        "print(type(bpkg.mod.__loader__).__name__, bpkg.mod.where(), bpkg.__path__[0])\n"
        "print(bpkg.mod.__doc__, bpkg.mod.f.__doc__, bpkg.VALUE)\n"
        "try:\n    bpkg.mod.f()\nexcept AssertionError as e:\n    print('assert:', e)\n"))
    assert proc.returncode == 0, proc.stderr
    first, second, third = proc.stdout.splitlines()
    assert first == f"BundleFinder {pkg / 'mod.py'} {pkg}"
    assert second == "None None init"      # docstrings are not in the bundle
    assert third == "assert: asserts stay"  # but asserts are


def test_tracebacks_keep_file_and_line(tmp_path):
    pkg = make_package(tmp_path)
    out = bundle.build(str(tmp_path / "b.bundle"), package_dir=str(pkg))
    proc = run_with_bundle(tmp_path, out, "import bpkg.sub.deep as d; d.boom()")
    assert proc.returncode == 1
    assert f'File "{pkg / "sub" / "deep.py"}", line 3, in boom' in proc.stderr
    assert "raise ValueError(x)" in proc.stderr


def test_an_edited_module_is_imported_from_its_source_not_the_stale_bundle(tmp_path):
    pkg = make_package(tmp_path)
    out = bundle.build(str(tmp_path / "b.bundle"), package_dir=str(pkg))
    (pkg / "mod.py").write_text("def where():\n    return 'edited'\n")
    proc = run_with_bundle(tmp_path, out, "import bpkg, bpkg.mod; "
                           "print(type(bpkg.__loader__).__name__, bpkg.mod.where(), "
                           "type(bpkg.mod.__loader__).__name__)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["BundleFinder", "edited", "SourceFileLoader"]


def test_a_missing_or_corrupt_or_foreign_bundle_is_no_bundle(tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.write_bytes(b"\x00not marshal")
    foreign = tmp_path / "foreign"
    index = marshal.dumps({"format": bundle.FORMAT, "magic": b"\x00\x00\r\n", "modules": {}})
    foreign.write_bytes(bundle.MAGIC + len(index).to_bytes(4, "little") + index)
    truncated = tmp_path / "truncated"
    built = bundle.build(str(tmp_path / "whole"), package_dir=str(make_package(tmp_path)))
    with open(built, "rb") as f:
        truncated.write_bytes(f.read()[:-10])
    before = list(sys.meta_path)
    for path in (tmp_path / "missing", corrupt, foreign, truncated):
        assert bundle.install(str(path)) is None
    assert sys.meta_path == before


def test_kago_no_bundle_turns_it_off(tmp_path, monkeypatch):
    pkg = make_package(tmp_path)
    out = bundle.build(str(tmp_path / "b.bundle"), package_dir=str(pkg))
    monkeypatch.setenv("KAGO_NO_BUNDLE", "1")
    assert bundle.install(out) is None


def test_the_real_bundle_leaves_out_the_manager_side(tmp_path):
    out = bundle.build(str(tmp_path / "kago.bundle"))
    fd = os.open(out, os.O_RDONLY)
    try:
        names = set(bundle.read_index(fd, os.fstat(fd).st_size))
    finally:
        os.close(fd)
    assert {"kago", "kago.cli.oci", "kago.process.child", "kago.linux.cgroups"} <= names
    assert not [n for n in names if n.startswith(bundle.EXCLUDED)]


def test_a_closed_and_reused_bundle_fd_falls_back_to_the_normal_import(tmp_path):
    # the container process closes the fds it does not keep; a number reused for another
    # file must never be read as the bundle
    pkg = make_package(tmp_path)
    out = bundle.build(str(tmp_path / "b.bundle"), package_dir=str(pkg))
    other = tmp_path / "other"
    other.write_bytes(b"x" * 4096)
    proc = run_with_bundle(tmp_path, out, (
        "import os; os.close(finder.fd)\n"
        f"os.dup2(os.open({str(other)!r}, os.O_RDONLY), finder.fd)\n"
        "import bpkg.mod; print(type(bpkg.mod.__loader__).__name__, bpkg.mod.where())"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["SourceFileLoader", str(pkg / "mod.py")]


def test_the_bundle_fd_is_kept_above_the_low_numbers(tmp_path):
    # open for the whole run: a low number could be one a caller names in --preserve-fds
    pkg = make_package(tmp_path)
    out = bundle.build(str(tmp_path / "b.bundle"), package_dir=str(pkg))
    proc = run_with_bundle(tmp_path, out, "import os; print(finder.fd, os.get_inheritable("
                           "finder.fd))")
    assert proc.returncode == 0, proc.stderr
    fd, inheritable = proc.stdout.split()
    assert int(fd) >= 512 and inheritable == "False"

