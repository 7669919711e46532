"""Command lines are parsed in kago.cli only: every other module takes typed arguments (the
manager, the client and the hook libraries return values; the CLI parses and prints)."""

import ast
import os

import kago

SRC = os.path.dirname(kago.__file__)


def argparse_importers():
    found = []
    for dirpath, _dirs, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                if any(n == "argparse" or n.startswith("argparse.") for n in names):
                    found.append((os.path.relpath(path, SRC), node.lineno))
    return found


def test_argparse_is_imported_only_under_kago_cli():
    outside = [f"{path}:{line}" for path, line in argparse_importers()
               if not path.startswith("cli" + os.sep)]
    assert outside == []


def test_the_scan_sees_the_clis_argparse():
    assert any(path == os.path.join("cli", "common.py") for path, _ in argparse_importers())
