"""The healthcheck and ``init`` of a Definition: from ``kago run``'s --health-*,
--no-healthcheck and --init (errors name the flag), a definition file's ``healthcheck=`` and
``init=`` (file:line), the Client's options, the record's JSON, and what spec.build makes of
``init`` (tini at /dev/init, read-only, running the command)."""

import argparse
import textwrap

import pytest

from kago.cli.flags import _add_container_flags
from kago.manager.define.load import load
from kago.manager.definition import (
    Definition,
    Healthcheck,
    from_flags,
    from_json,
    from_options,
    to_json,
)
from kago.manager.errors import BadValue, DefinitionError, ManagerError
from kago.manager.spec import ImageConfig, build

S = 1_000_000_000


def flags(*argv):
    parser = argparse.ArgumentParser()
    _add_container_flags(parser)
    return from_flags(parser.parse_args(list(argv)), environ={})


FLAG_ROWS = [
    ("no flag: the image's", [], None),
    ("a shell command", ["--health-cmd", "wget -q localhost"],
     Healthcheck(("CMD-SHELL", "wget -q localhost"))),
    ("every duration and retries",
     ["--health-cmd", "true", "--health-interval", "1m30s", "--health-timeout", "500ms",
      "--health-start-period", "2s", "--health-start-interval", "1s", "--health-retries", "7"],
     Healthcheck(("CMD-SHELL", "true"), interval=90 * S, timeout=S // 2, start_period=2 * S,
                 start_interval=S, retries=7)),
    ("an interval alone: the image's command", ["--health-interval", "5s"],
     Healthcheck(interval=5 * S)),
    ("docker's JSON form", ["--health-cmd", '["CMD", "x"]'],
     Healthcheck(("CMD-SHELL", '["CMD", "x"]'))),
    ("--no-healthcheck", ["--no-healthcheck"], Healthcheck(("NONE",))),
    ("zero durations", ["--health-interval", "0", "--health-cmd", "x"],
     Healthcheck(("CMD-SHELL", "x"))),
]


@pytest.mark.parametrize("argv,expected", [r[1:] for r in FLAG_ROWS],
                         ids=[r[0] for r in FLAG_ROWS])
def test_health_flags(argv, expected):
    d = flags(*argv, "busybox")
    assert d.healthcheck == expected
    assert from_json(to_json(d)) == d


FLAG_ERRORS = [
    (["--no-healthcheck", "--health-cmd", "x"], "--no-healthcheck: conflicts with --health-*"),
    (["--no-healthcheck", "--health-retries", "1"], "--no-healthcheck: conflicts"),
    (["--health-interval=-1s"], "--health-interval: cannot be negative"),
    (["--health-timeout", "10us"], "--health-timeout: cannot be less than 1ms"),
    (["--health-start-period", "soon"], '--health-start-period: invalid duration "soon"'),
    (["--health-start-interval", "1x"], "--health-start-interval: invalid duration"),
    (["--health-retries=-1"], "--health-retries: cannot be negative"),
    (["--health-retries", "many"], "--health-retries: invalid number"),
    (["--health-cmd", " "], "--health-cmd: an empty command"),
]


@pytest.mark.parametrize("argv,message", FLAG_ERRORS, ids=[m for _a, m in FLAG_ERRORS])
def test_health_flag_errors_name_the_flag(argv, message):
    with pytest.raises(BadValue) as err:
        flags(*argv, "busybox")
    assert str(err.value).startswith(message), str(err.value)


def test_init_flag():
    assert flags("--init", "busybox").init is True
    assert flags("busybox").init is False
    assert to_json(flags("busybox")).get("init") is None  # defaults stay out of the record


OPTION_ROWS = [
    ("a string", "true", Healthcheck(("CMD-SHELL", "true"))),
    ("a list", ["wget", "-q", "x"], Healthcheck(("CMD", "wget", "-q", "x"))),
    ("docker's form", ["CMD-SHELL", "x"], Healthcheck(("CMD-SHELL", "x"))),
    ("False", False, Healthcheck(("NONE",))),
    ("NONE", "NONE", Healthcheck(("NONE",))),
    ("a dict with seconds and Go durations",
     {"test": "x", "interval": 1.5, "timeout": "2s", "start_period": 0, "retries": 2},
     Healthcheck(("CMD-SHELL", "x"), interval=3 * S // 2, timeout=2 * S, retries=2)),
    ("a Healthcheck", Healthcheck(("CMD", "y"), interval=S), Healthcheck(("CMD", "y"),
                                                                         interval=S)),
    ("None", None, None),
]


@pytest.mark.parametrize("value,expected", [r[1:] for r in OPTION_ROWS],
                         ids=[r[0] for r in OPTION_ROWS])
def test_client_option(value, expected):
    d = from_options("busybox", ["sleep", "1"], healthcheck=value, init=True)
    assert (d.healthcheck, d.init) == (expected, True)


@pytest.mark.parametrize("value,message", [
    ({"test": "x", "every": 1}, "healthcheck.every: not a healthcheck field"),
    ({"interval": -1}, "healthcheck.interval: cannot be negative"),
    ({"retries": "x"}, "healthcheck.retries: invalid number"),
    (42, "healthcheck: use a command"),
    (["CMD"], "healthcheck: CMD needs a command"),
])
def test_client_option_errors_name_the_option(value, message):
    with pytest.raises(BadValue) as err:
        from_options("busybox", healthcheck=value)
    assert str(err.value).startswith(message), str(err.value)


def write(tmp_path, body):
    path = tmp_path / "def.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_dsl_fields_and_flags_agree(tmp_path):
    path = write(tmp_path, """\
        c = Container("web", image="busybox", command=["sleep", "9"], init=True)
        c.healthcheck = {"test": "wget -q localhost", "interval": "2s", "retries": 4}
        c.ready(healthy(), timeout=20)
        """)
    definition = load(path)
    d = definition.definitions["web"]
    assert d == flags("--name", "web", "--hostname", "web", "--init", "--health-cmd",
                      "wget -q localhost", "--health-interval", "2s", "--health-retries", "4",
                      "busybox", "sleep", "9")
    c = definition.containers[0]
    assert c.readiness.health and c.readiness.timeout == 20


def test_dsl_error_names_the_line_of_the_assignment(tmp_path):
    path = write(tmp_path, """\
        c = Container("web", image="busybox")

        c.healthcheck = {"test": "x", "timeout": "forever"}
        """)
    with pytest.raises(DefinitionError) as err:
        load(path)
    assert err.value.line == 3
    assert 'healthcheck.timeout: invalid duration "forever"' in str(err.value)


def test_spec_build_runs_the_command_under_init_from_dev_init():
    spec = build(Definition(image="x", command=("sleep", "5"), init=True), cid="c" * 64,
                 rootfs="/r", image=ImageConfig({}), init_binary="/usr/bin/tini-static")
    assert spec["process"]["args"] == ["/dev/init", "--", "sleep", "5"]
    mount = spec["mounts"][-1]
    assert mount == {"destination": "/dev/init", "type": "bind",
                     "source": "/usr/bin/tini-static",
                     "options": ["bind", "ro", "nosuid", "nodev"]}
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.index("/dev") < dests.index("/dev/init")  # on the container's /dev tmpfs
    plain = build(Definition(image="x", command=("sleep", "5")), cid="c" * 64, rootfs="/r",
                  image=ImageConfig({}), init_binary="/usr/bin/tini-static")
    assert plain["process"]["args"] == ["sleep", "5"]
    assert "/dev/init" not in [m["destination"] for m in plain["mounts"]]


def test_spec_build_refuses_init_without_a_binary():
    with pytest.raises(BadValue, match="^init: "):
        build(Definition(image="x", command=("true",), init=True), cid="c" * 64, rootfs="/r")


def test_a_missing_init_binary_is_one_clear_line(tmp_path):
    from kago.manager.init_binary import host_binary
    missing = str(tmp_path / "tini-static")
    with pytest.raises(ManagerError) as err:
        host_binary((missing,))
    assert str(err.value) == (f"--init: {missing} not found: install Debian's tini package "
                              f"(apt-get install tini)")
    assert host_binary(("/bin/sh",)) == "/bin/sh"


def test_reload_names_a_changed_healthcheck_or_init_as_needing_a_new_container():
    from kago.manager.define.reload import _needs_restart
    old = Definition(image="busybox", name="web")
    new = old.but(healthcheck=Healthcheck(("CMD", "true")), init=True)
    assert _needs_restart(old, new) == ["healthcheck", "init"]
