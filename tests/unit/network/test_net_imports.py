"""Import costs: kago-oci never loads kago.network, and kago.network does not load pyroute2
(~150 ms) until a netlink socket is opened."""

import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "src")


def loaded_after(code):
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; "
                          "print(' '.join(sorted(sys.modules)))"], capture_output=True,
                         text=True, check=True, env={"PYTHONPATH": os.path.abspath(SRC)})
    return set(out.stdout.split())


def test_oci_runtime_path_never_imports_kago_network():
    loaded = loaded_after("import kago.cli.oci, kago.runtime.container, kago.process.parent")
    assert not {m for m in loaded if m.startswith(("kago.network", "pyroute2"))}


def test_importing_kago_network_does_not_import_pyroute2():
    loaded = loaded_after("import kago.network, kago.network.files, kago.network.hook")
    assert "kago.network.links" in loaded
    assert not {m for m in loaded if m.startswith("pyroute2")}
