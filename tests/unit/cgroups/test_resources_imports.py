"""The resources package loads only the planners a spec's sections need (kago-oci's start path).

Each check runs in a fresh interpreter: the test process has imported every submodule already.
"""

import os
import subprocess
import sys

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "src")
PACKAGE = "kago.linux.cgroups.resources"


def loaded_after(code):
    """The planner submodules in sys.modules once ``code`` has run in a new interpreter
    (``values``, the names they share, comes with the package itself)."""
    script = (f"import sys\n{code}\n"
              f"print(' '.join(m.rsplit('.', 1)[1] for m in sys.modules "
              f"if m.startswith('{PACKAGE}.')))")
    out = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True,
                         env={"PYTHONPATH": SRC, "KAGO_NO_BUNDLE": "1"}, check=True).stdout
    loaded = set(out.split())
    assert "values" in loaded
    return loaded - {"values"}


@pytest.mark.parametrize("version, available", [
    ("v1", {"devices"}), ("hybrid", {"v1": {"devices"}, "unified": set()})])
def test_devices_only_plan_loads_only_devices(version, available):
    # the default spec's linux.resources: kago-oci run plans it on every start
    loaded = loaded_after(
        f"from {PACKAGE} import plan_writes\n"
        f"w = plan_writes({{'devices': [{{'allow': False, 'access': 'rwm'}}]}}, {version!r}, "
        f"{available!r})\n"
        "assert [tuple(x) for x in w] == [('devices', 'devices.deny', 'a')], w")
    assert loaded == {"devices"}


def test_v2_devices_plan_loads_only_devices():
    # the compiler and the bpf(2) seam are loaded when the filter is attached, not to plan it
    loaded = loaded_after(
        f"from {PACKAGE} import plan_writes\n"
        "w = plan_writes({'devices': [{'allow': False, 'access': 'rwm'}]}, 'v2', set())\n"
        "assert [tuple(x) for x in w] == [('unified', '<eBPF device filter>', 'deny a')], w")
    assert loaded == {"devices"}


def test_raw_v2_keys_do_not_load_the_v1_translations():
    loaded = loaded_after(
        f"from {PACKAGE} import plan_writes\n"
        f"plan_writes({{'unified': {{'memory.high': '1G'}}}}, 'v2', {{'memory'}})")
    assert loaded == {"unified"}


def test_a_section_loads_its_own_module():
    loaded = loaded_after(
        f"from {PACKAGE} import plan_writes\n"
        f"plan_writes({{'pids': {{'limit': 5}}, 'unified': {{'cpu.weight': '100'}}}}, 'v1', "
        f"{{'pids', 'cpu'}})")
    assert loaded == {"misc", "unified", "unified_v1", "cpu", "memory", "blkio"}


def test_public_names_load_their_module_on_first_access():
    assert loaded_after(f"from {PACKAGE} import resources_from_flags, parse_size") \
        == {"flags"}
    assert loaded_after("from kago.linux.cgroups import resources_from_flags") \
        == {"flags"}
    assert loaded_after(f"from {PACKAGE} import OPTIONAL_FILES, controllers_needed, "
                        "plan_writes") == set()
    assert loaded_after(f"from {PACKAGE} import device_rule, memsw_order") \
        == {"devices", "memory"}
    assert loaded_after(f"import {PACKAGE} as r\nassert r.__all__\n"
                        "[getattr(r, name) for name in r.__all__]") \
        == {"devices", "memory", "flags"}


def test_unknown_names_are_attribute_errors():
    from kago.linux.cgroups import resources

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        resources.nothing  # noqa: B018
    with pytest.raises(ImportError):
        from kago.linux.cgroups.resources import nothing  # noqa: F401
