"""The import rules of DESIGN.md, checked on every test run (import-linter, .importlinter)."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_import_contracts_hold():
    exe = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    if not os.path.exists(exe):
        exe = shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    proc = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_runtime_start_path_imports_nothing_heavy():
    """kago-oci's latency is its start-up: these modules must stay off the create/run path."""
    code = ("import sys; import kago.bundle, kago.cli.oci, kago.runtime.container, kago.process.parent,"
            " kago.process.child, kago.plan.build, kago.plan.validate, kago.linux.cgroups,"
            " kago.linux.cgroups.common;"
            " print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": os.path.join(REPO, "src")}, check=True).stdout
    loaded = set(out.split())
    heavy = {"re", "json", "argparse", "logging", "dataclasses", "typing", "enum", "subprocess",
             "socket", "signal", "selectors", "threading", "asyncio", "hashlib", "_hashlib"}
    assert not (heavy & loaded), sorted(heavy & loaded)
