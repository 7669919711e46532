"""Structural validation of an OCI runtime-spec config.json (v1.0 to v1.2, the Linux parts).

``validate_config(cfg)`` checks shapes and types only: that each value is the JSON type the
runtime-spec says, that paths which must be absolute are, that enumerations hold a known word.
It raises ``SpecError(field, message)`` for the first problem found, ``field`` being the JSON
path (``mounts[2].destination``, ``linux.sysctl["net.ipv4.ip_forward"]``). What the values *mean*
together (capability names, ID mapping arithmetic, sysctls against namespaces) is
``kago.plan.validate``'s job.

The checks are tables of ``(key, checker, required)`` walked by one function, so each section of
the spec reads as data. Unknown keys are accepted, as runc accepts them: a newer spec or a
vendor extension must not stop an older runtime.

Imports only ``kago.errors``: this module is on ``kago-oci create``'s start-up path.
"""

from kago.errors import SpecError

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Kept here rather than imported from kago.plan.tables: oci sits below plan in the import order.
# tests/unit/plan/test_tables.py checks that the two lists agree.
NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared",
                "unbindable", "runbindable")
DEVICE_TYPES = ("c", "b", "u", "p")
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
TIME_CLOCKS = ("monotonic", "boottime")


# ---------------------------------------------------------------- message helpers

def quote(value) -> str:
    """Quote a string the way Go's %q does, so messages match runc's ("proc", "a\\"b")."""
    out = []
    for ch in str(value):
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def join(field: str, key: str) -> str:
    """Extend a JSON path with an object key: plain ``a.b`` for identifiers, ``a["x.y"]`` else."""
    if key.isidentifier():
        return f"{field}.{key}" if field else key
    return f"{field}[{quote(key)}]"


def _show(value) -> str:
    """A bad value for a message: strings quoted, anything else as Python shows it (short)."""
    text = quote(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- scalar checkers
# Each checker is ``check(value, field)`` and raises SpecError or returns None.

def _is_int(value) -> bool:
    # bool is a subclass of int in Python, but JSON true is not a uid.
    return isinstance(value, int) and not isinstance(value, bool)


def check_string(value, field):
    if not isinstance(value, str):
        raise SpecError(field, "must be a string")
    check_text(value, field)


def check_text(value, field):
    """What every string reaching the kernel must be: no NUL (a C string ends there, so
    "a\x00b" would silently mean "a"), and real Unicode (a lone surrogate has no bytes)."""
    if "\x00" in value:
        raise SpecError(field, "must not contain a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise SpecError(field, "is not valid Unicode (it has a lone surrogate)") from None


def check_bool(value, field):
    if not isinstance(value, bool):
        raise SpecError(field, "must be a boolean")


def check_object(value, field):
    if not isinstance(value, dict):
        raise SpecError(field, "must be an object")


def check_array(value, field):
    if not isinstance(value, list):
        raise SpecError(field, "must be an array")


def int_range(low, high):
    """A checker for an integer in [low, high]; the bounds come from the Go type runc uses."""
    def check(value, field):
        if not _is_int(value):
            raise SpecError(field, "must be an integer")
        if not low <= value <= high:
            raise SpecError(field, f"must be between {low} and {high}, got {value}")
    return check


check_int64 = int_range(INT64_MIN, INT64_MAX)
check_uint32 = int_range(0, UINT32_MAX)
check_uint64 = int_range(0, UINT64_MAX)


def check_abs_path(value, field):
    check_string(value, field)
    if not value.startswith("/"):
        raise SpecError(field, f"must be an absolute path, got {quote(value)}")


def one_of(words):
    """A checker for a string from a fixed vocabulary (namespace types, propagation...)."""
    def check(value, field):
        check_string(value, field)
        if value not in words:
            raise SpecError(field, f"must be one of {', '.join(words)}, got {quote(value)}")
    return check


# ---------------------------------------------------------------- composite checkers

def check_fields(obj, field, table):
    """Check ``obj`` is an object and walk ``table``: ``(key, checker, required)`` rows."""
    check_object(obj, field)
    for key, check, required in table:
        if key in obj:
            check(obj[key], join(field, key))
        elif required:
            raise SpecError(join(field, key), "is required")


def object_of(table):
    return lambda value, field: check_fields(value, field, table)


def plain_strings(values) -> bool:
    """True when every item of the list ``values`` is an ASCII string without NUL: the usual
    array of names, told in two C calls. Else (False) the caller walks it item by item, for
    the message naming the bad one (building each item's field path for a check that passes
    was most of a spec's check: a seccomp profile has ~350 names)."""
    try:
        joined = "\n".join(values)
    except TypeError:
        return False
    return "\x00" not in joined and joined.isascii()


def array_of(check):
    def check_each(value, field):
        check_array(value, field)
        if check is check_string and plain_strings(value):
            return
        for i, item in enumerate(value):
            check(item, f"{field}[{i}]")
    return check_each


def map_of(check):
    """An object whose values all pass ``check`` (annotations, sysctl)."""
    def check_each(value, field):
        check_object(value, field)
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(field, f"keys must be strings, got {_show(key)}")
            check_text(key, field)
            check(item, join(field, key))
    return check_each


check_strings = array_of(check_string)
check_abs_paths = array_of(check_abs_path)


# ---------------------------------------------------------------- process

def check_args(value, field):
    if not isinstance(value, list) or not value:
        raise SpecError(field, "must be a non-empty array of strings")
    check_strings(value, field)


def check_env_entry(value, field):
    """runc refuses what the kernel's execve cannot carry: no '=', an empty name (a NUL is
    refused for every string by check_text)."""
    check_string(value, field)
    name, sep, val = value.partition("=")
    if not sep:
        raise SpecError(field, f"must be \"KEY=VALUE\", got {quote(value)}")
    if not name:
        raise SpecError(field, f"variable name cannot be empty, got {quote(value)}")


_USER = (
    ("uid", check_uint32, False),
    ("gid", check_uint32, False),
    ("umask", check_uint32, False),
    ("additionalGids", array_of(check_uint32), False),
    ("username", check_string, False),
)
_CAPABILITIES = tuple((name, check_strings, False) for name in CAPABILITY_SETS)
_RLIMIT = (
    ("type", check_string, True),
    ("soft", check_uint64, True),
    ("hard", check_uint64, True),
)
_CONSOLE_SIZE = (
    ("height", check_uint32, True),
    ("width", check_uint32, True),
)
# uid and gid default to 0 when absent, as in runc (Go zero values); the spec calls them
# REQUIRED but runc runs such configs, and so must a drop-in replacement.
_PROCESS = (
    ("terminal", check_bool, False),
    ("consoleSize", object_of(_CONSOLE_SIZE), False),
    ("user", object_of(_USER), False),
    ("args", check_args, True),
    ("commandLine", check_string, False),
    ("env", array_of(check_env_entry), False),
    ("cwd", check_abs_path, True),
    ("capabilities", object_of(_CAPABILITIES), False),
    ("rlimits", array_of(object_of(_RLIMIT)), False),
    ("noNewPrivileges", check_bool, False),
    ("apparmorProfile", check_string, False),
    ("oomScoreAdj", int_range(-1000, 1000), False),
    ("selinuxLabel", check_string, False),
    ("scheduler", check_object, False),
    ("ioPriority", check_object, False),
    ("execCPUAffinity", check_object, False),
)


def validate_process(p, field: str = "process") -> None:
    """Check a process object: config.json's ``process`` or ``exec --process``'s document."""
    check_fields(p, field, _PROCESS)


# ---------------------------------------------------------------- root, mounts, hooks

_ID_MAPPING = (
    ("containerID", check_uint32, True),
    ("hostID", check_uint32, True),
    ("size", int_range(1, UINT32_MAX), True),
)
check_id_mappings = array_of(object_of(_ID_MAPPING))

_ROOT = (
    ("path", check_string, True),
    ("readonly", check_bool, False),
)
_MOUNT = (
    ("destination", check_abs_path, True),
    ("type", check_string, False),
    ("source", check_string, False),
    ("options", check_strings, False),
    ("uidMappings", check_id_mappings, False),
    ("gidMappings", check_id_mappings, False),
)
_HOOK = (
    ("path", check_abs_path, True),
    ("args", check_strings, False),
    ("env", check_strings, False),
    ("timeout", int_range(1, INT64_MAX), False),
)
_HOOKS = tuple((kind, array_of(object_of(_HOOK)), False) for kind in HOOK_KINDS)


# ---------------------------------------------------------------- linux

_NAMESPACE = (
    ("type", one_of(NAMESPACE_TYPES), True),
    ("path", check_abs_path, False),
)


def check_namespaces(value, field):
    """Each namespace type at most once: two entries for one type have no defined meaning."""
    array_of(object_of(_NAMESPACE))(value, field)
    seen = set()
    for i, ns in enumerate(value):
        if ns["type"] in seen:
            raise SpecError(f"{field}[{i}].type", f"duplicate namespace {quote(ns['type'])}")
        seen.add(ns["type"])


_DEVICE = (
    ("type", one_of(DEVICE_TYPES), True),
    ("path", check_abs_path, True),
    ("major", check_int64, False),
    ("minor", check_int64, False),
    ("fileMode", check_uint32, False),
    ("uid", check_uint32, False),
    ("gid", check_uint32, False),
)


def check_device(value, field):
    """Character, block and unbuffered devices need numbers; a fifo ("p") has none."""
    check_fields(value, field, _DEVICE)
    if value["type"] != "p":
        for key in ("major", "minor"):
            if key not in value:
                raise SpecError(join(field, key), f"is required for type {quote(value['type'])}")


_TIME_OFFSET = (
    ("secs", check_int64, False),
    ("nanosecs", int_range(0, 999_999_999), False),
)


def check_time_offsets(value, field):
    """Only the two clocks a time namespace can offset; the kernel refuses the rest."""
    map_of(object_of(_TIME_OFFSET))(value, field)
    for clock in value:
        if clock not in TIME_CLOCKS:
            raise SpecError(join(field, clock),
                            f"unknown clock {quote(clock)}: must be monotonic or boottime")


_LINUX = (
    ("namespaces", check_namespaces, False),
    ("uidMappings", check_id_mappings, False),
    ("gidMappings", check_id_mappings, False),
    ("timeOffsets", check_time_offsets, False),
    ("devices", array_of(check_device), False),
    ("cgroupsPath", check_string, False),
    ("resources", check_object, False),
    ("rootfsPropagation", one_of(PROPAGATIONS), False),
    ("seccomp", check_object, False),
    ("sysctl", map_of(check_string), False),
    ("maskedPaths", check_abs_paths, False),
    ("readonlyPaths", check_abs_paths, False),
    ("mountLabel", check_string, False),
    ("intelRdt", check_object, False),
    ("personality", check_object, False),
)


# ---------------------------------------------------------------- top level

def check_oci_version(value, field):
    check_string(value, field)
    if value.split(".", 1)[0] != "1":
        raise SpecError(field, f"unsupported ociVersion {quote(value)}: kago supports 1.x")


_CONFIG = (
    ("ociVersion", check_oci_version, True),
    ("root", object_of(_ROOT), True),
    ("process", validate_process, False),
    ("hostname", check_string, False),
    ("domainname", check_string, False),
    ("mounts", array_of(object_of(_MOUNT)), False),
    ("hooks", object_of(_HOOKS), False),
    ("annotations", map_of(check_string), False),
    ("linux", object_of(_LINUX), False),
)


def validate_config(cfg) -> None:
    """Check the structure of a parsed config.json; raise SpecError for the first problem.

    ``process`` is optional here because the spec allows it (``create`` insists on it itself).
    """
    if not isinstance(cfg, dict):
        raise SpecError("", "config must be a JSON object")
    check_fields(cfg, "", _CONFIG)
