"""Fuzzing the config.json pipeline: whatever the bytes, the answer is a clean SpecError.

kago-oci reads config.json from a bundle that someone else wrote (podman, containerd, a user,
an attacker with write access to a bundle directory). The pipeline ::

    kago.jsonio.loads -> kago.oci.schema.validate_config -> kago.plan.validate.validate
                      -> kago.plan.build.build

must either succeed or raise ``kago.errors.SpecError``: a TypeError, KeyError or RecursionError
would reach the user as a traceback (or, worse, as a half-built plan). Three generators feed it:
random bytes; the default spec's JSON text with bytes inserted, deleted or replaced; and the
default spec as a tree with values replaced by random JSON values, keys dropped or added.

Bounded (``max_examples``, no deadline) to run in a few seconds; raise ``KAGO_FUZZ_EXAMPLES``
for a longer run. The fuzz targets are pure (no root, no containers); the bugs they found are
checked in-process and through ``kago-oci run`` (which needs root).
"""

import contextlib
import copy
import json
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kago import jsonio
from kago.errors import SpecError
from kago.oci import schema
from kago.oci.defaults import default_spec
from kago.plan import build, validate

EXAMPLES = int(os.environ.get("KAGO_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DEFAULT = default_spec(args=["sh"], terminal=False)
DEFAULT_TEXT = json.dumps(DEFAULT, indent=1).encode()


@contextlib.contextmanager
def as_in_kago_oci():
    """Run as kago-oci runs: without ``json.decoder`` loaded (kago.jsonio exists to avoid its
    import cost). It matters: the C scanner reports most syntax errors by looking up
    json.decoder.JSONDecodeError in sys.modules, and pytest has long since imported it."""
    saved = sys.modules.pop("json.decoder", None)
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["json.decoder"] = saved


def pipeline(data):
    """What kago-oci create does with config.json, up to the plan (no I/O, no fork)."""
    with as_in_kago_oci():
        cfg = jsonio.loads(data)
    schema.validate_config(cfg)
    validate.validate(cfg)
    return build.build(cfg, "/tmp/b", "id")


def only_spec_errors(data):
    try:
        pipeline(data)
    except SpecError as e:
        assert str(e), "a SpecError with no message"


# ---------------------------------------------------------------- generators

def _paths(node, prefix=()):
    """Every path (tuple of keys and indices) in a JSON tree, the root included."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, prefix + (i,))


PATHS = list(_paths(DEFAULT))
# keys the spec knows but the default leaves out, so mutations reach their checkers too
EXTRA = {("linux", "uidMappings"), ("linux", "gidMappings"), ("linux", "devices"),
         ("linux", "sysctl"), ("linux", "timeOffsets"), ("linux", "rootfsPropagation"),
         ("linux", "cgroupsPath"), ("hooks",), ("hooks", "prestart"), ("annotations",),
         ("domainname",), ("process", "user", "additionalGids"), ("process", "oomScoreAdj"),
         ("process", "consoleSize"), ("process", "capabilities", "inheritable"),
         ("process", "user", "umask"), ("process", "apparmorProfile")}
# object keys the spec uses: random objects are more interesting with real keys in them
SPEC_KEYS = sorted({k for path in PATHS + sorted(EXTRA, key=str) for k in path
                    if isinstance(k, str)})


# JSON values, with the edge cases a Go or Python parser trips on: huge and negative numbers,
# floats where integers belong, empty and odd strings (NUL, surrogates are not JSON text)
scalars = (st.none() | st.booleans()
           | st.integers(min_value=-2**70, max_value=2**70)
           | st.sampled_from([0, -1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64])
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20)
           | st.sampled_from(["", "/", "..", "/proc", "rootfs", "CAP_SYS_ADMIN", "user",
                              "RLIMIT_NOFILE", "bind", "rbind", "idmap", "\x00", "a=b"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=12) | st.sampled_from(SPEC_KEYS), inner, max_size=4),
    max_leaves=12)


def _set(tree, path, value):
    node = tree
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return tree
    if not path:
        return value
    if isinstance(node, dict) or (isinstance(node, list) and path[-1] < len(node)):
        node[path[-1]] = value
    return tree


def _delete(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    if path:
        del node[path[-1]]
    return tree


mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(PATHS + sorted(EXTRA, key=str)), json_values),
    st.tuples(st.just("delete"), st.sampled_from([p for p in PATHS if p]), st.none()),
)


@st.composite
def mutated_specs(draw):
    tree = copy.deepcopy(DEFAULT)
    for kind, path, value in draw(st.lists(mutation, min_size=1, max_size=4)):
        try:
            tree = _set(tree, path, value) if kind == "set" else _delete(tree, path)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the path
    return tree


@st.composite
def mangled_text(draw):
    """The default spec's bytes with a few insertions, deletions and replacements."""
    data = bytearray(DEFAULT_TEXT)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=8)
                     | st.sampled_from([b"{", b"}", b"[", b"]", b'"', b",", b":", b"-",
                                        b"1e999", b"null", b"\\u0000", b"\xff", b"\xc3"]))
        if what == "insert":
            data[pos:pos] = chunk
        elif what == "delete":
            del data[pos:pos + len(chunk)]
        else:
            data[pos:pos + len(chunk)] = chunk
    return bytes(data)


# ---------------------------------------------------------------- the targets

@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data):
    only_spec_errors(data)


@FUZZ
@given(mangled_text())
def test_mangled_default_spec_text(data):
    only_spec_errors(data)


@FUZZ
@given(mutated_specs())
def test_mutated_default_spec(tree):
    only_spec_errors(json.dumps(tree).encode())


@FUZZ
@given(json_values)
def test_random_json_documents(value):
    only_spec_errors(json.dumps(value))


def test_the_default_spec_itself_builds():
    plan = pipeline(DEFAULT_TEXT)  # the generators start from a valid document
    assert plan.process.args == ["sh"]


# ---------------------------------------------------------------- found by fuzzing (kago bugs)

MALFORMED = [
    ("unterminated-string", '{"a": "x', True), ("control-char", '{"a": "\n"}', True),
    ("bad-escape", '{"a": "\\q"}', True), ("bad-unicode-escape", '{"a": "\\u12"}', True),
    ("unquoted-key", "{a: 1}", True), ("missing-colon", '{"a" 1}', True),
    ("missing-comma", "[1 2]", True), ("trailing-comma-object", '{"a":1,}', True),
    ("open-brace", "{", True), ("open-bracket", "[", False), ("bad-literal", "nul", False),
    ("extra-data", "1 2", False), ("trailing-comma-array", "[1,]", False),
]


@pytest.mark.parametrize("text", [pytest.param(text, id=name) for name, text, _bug in MALFORMED])
def test_malformed_json_is_a_spec_error(text):
    with pytest.raises(SpecError, match="config.json: .* at line 1 column"):
        pipeline(text)


def spec_with(path, value):
    tree = copy.deepcopy(DEFAULT)
    return json.dumps(_set(tree, path, value))


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_document_is_a_spec_error(opener):
    closer = "]" if opener == "[" else "}"
    with pytest.raises(SpecError):
        pipeline(opener * 100_000 + "1" + closer * 100_000)


@pytest.mark.parametrize("value", [1, True, 1.5])
def test_resources_devices_must_be_an_array(value):
    with pytest.raises(SpecError, match="linux.resources.devices"):
        pipeline(spec_with(("linux", "resources", "devices"), value))


# ---------------------------------------------------------------- the same, through kago-oci

def _run_with_config(oci, make_bundle, text):
    b = make_bundle(["true"])
    with open(os.path.join(b.path, "config.json"), "wb") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    return oci("run", "--bundle", b.path, oci.new_id())


def _cli_case(name, text, bug=None):
    marks = [pytest.mark.xfail(strict=True, reason=f"kago bug: {bug}")] if bug else []
    return pytest.param(text, id=name, marks=marks)


def _true_spec(path, value):
    tree = copy.deepcopy(DEFAULT)
    tree["process"]["args"] = ["true"]
    return json.dumps(_set(tree, path, value))



CLI_CASES = [
    _cli_case("resources-memory-string", _true_spec(("linux", "resources", "memory"), "x")),
    _cli_case("uid-huge", _true_spec(("process", "user", "uid"), 10**40)),
    _cli_case("truncated-json", DEFAULT_TEXT.decode()[:200]),
    _cli_case("missing-value", '{"ociVersion": "1.0.2", "root": '),
    _cli_case("not-utf8", b'{"ociVersion": "\xff"}'),
    _cli_case("deep-nesting", "[" * 100_000 + "]" * 100_000),
    _cli_case("resources-devices-int", _true_spec(("linux", "resources", "devices"), 1)),
    _cli_case("nul-in-mount-destination", _true_spec(("mounts", 5, "destination"), "/sy\x00s"),
              ),
    _cli_case("nul-in-cwd", _true_spec(("process", "cwd"), "/\x00")),
    _cli_case("nul-in-args", _true_spec(("process", "args"), ["tr\x00ue"])),
    _cli_case("nul-in-device-path", _true_spec(("linux", "devices"), [
        {"type": "c", "path": "/dev/\x00", "major": 1, "minor": 3}])),
    _cli_case("nul-in-hostname", _true_spec(("hostname",), "a\x00b")),
    _cli_case("surrogate-in-hostname", _true_spec(("hostname",), "\ud800")),
]


@pytest.mark.parametrize("text", CLI_CASES)
def test_kago_oci_refuses_hostile_configs_in_one_line(oci, make_bundle, text):
    proc = _run_with_config(oci, make_bundle, text)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
