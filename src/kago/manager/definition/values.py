"""What a user writes -> the typed parts: every parser is pure and raises
``BadValue(field, message)`` naming the flag or definition field it was given.

Both builders use these (flags.py with ``--memory``, dsl.py with ``memory``), so ``kago run``
and a definition file accept the same spellings: docker's sizes (512m, 1.5g), its restart
policies (on-failure:3), its -p/-v syntax, capability names with or without CAP_.
The parsers of docker's later run flags (--workdir, --mount, --dns...) are in docker_values.py.
"""

import os

from kago.manager.definition.parts import (
    INDEPENDENT,
    NAMESPACE_KINDS,
    RESTART_NAMES,
    TMPFS_OPTIONS,
    IdMapping,
    IdRange,
    LogOptions,
    Mount,
    Namespace,
    Network,
    Port,
    RestartPolicy,
)
from kago.manager.errors import BadValue

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}
_BIND_OPTIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "nocopy",
                 "noexec", "nosuid", "nodev")


def size(text, field):
    """docker's sizes: 512, 512b, 64k, 512m, 1.5g (powers of 1024) -> bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise BadValue(field, f"{text} is negative")
        return text
    value = str(text).strip().lower()
    i = len(value)
    while i and value[i - 1].isalpha():
        i -= 1
    number, unit = value[:i], value[i:]
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in _SIZE_UNITS or amount < 0 or not number:
        raise BadValue(field, f'invalid size "{text}": use a number with b, k, m or g')
    return int(amount * _SIZE_UNITS[unit])


def swap(text, field):
    """--memory-swap: a size, or -1 for unlimited."""
    return -1 if str(text).strip() == "-1" else size(text, field)


def cpus(text, field):
    """--cpus 1.5: a positive number of CPUs (up to 1024)."""
    if isinstance(text, bool):
        raise BadValue(field, f'invalid number of CPUs "{text}"')
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise BadValue(field, f'invalid number of CPUs "{text}"') from None
    if not 0 < value <= 1024:
        raise BadValue(field, f"{text}: give a positive number of CPUs like 0.5 or 2")
    return value


def count(value, field, minimum=0, allow_max=False):
    """A whole number >= minimum (-1 also for "no limit" when ``allow_max``)."""
    if allow_max and value in (-1, "-1", "max"):
        return -1
    try:
        number = int(value) if not isinstance(value, (bool, float)) else None
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        raise BadValue(field, f'invalid number "{value}": give a whole number >= {minimum}')
    return number


def env(items, field, environ=None):
    """["K=V", "K"] -> ("K=V", ...); a bare K takes the caller's value (and is dropped if
    unset), as docker does."""
    environ = os.environ if environ is None else environ
    out = []
    for item in items or ():
        key, eq, value = str(item).partition("=")
        if not key or any(c.isspace() for c in key):
            raise BadValue(field, f'invalid environment variable "{item}"')
        if eq:
            out.append(f"{key}={value}")
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return tuple(out)


def merge_env(base, overrides):
    """Environment lists merged by key: later entries replace earlier ones, order kept."""
    order, values = [], {}
    for item in list(base or ()) + list(overrides or ()):
        key = item.partition("=")[0]
        if key not in values:
            order.append(key)
        values[key] = item
    return [values[k] for k in order]


def argv(value, field):
    """A command: a list of strings, or one string run by /bin/sh -c; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return ("/bin/sh", "-c", value)
    if isinstance(value, (list, tuple)) and all(isinstance(a, str) for a in value):
        return tuple(value)
    raise BadValue(field, "a list of strings (or one shell command string)")


def mount_destination(dest, field, kind, text):
    """A mount's destination as docker takes it: absolute, cleaned (``/x/../../etc`` is
    /etc), never the root itself."""
    if not dest:
        raise BadValue(field, f'invalid mount config for type "{kind}": field Target must not '
                              f'be empty')
    if not dest.startswith("/"):
        raise BadValue(field, f'invalid mount config for type "{kind}": invalid mount path: '
                              f"'{dest}' mount path must be absolute")
    clean = "/" + os.path.normpath(dest).lstrip("/")
    if clean == "/":
        of_kind = f' for type "{kind}"' if kind else ""
        raise BadValue(field, f"invalid mount config{of_kind}: invalid specification: "
                              f"destination can't be '/'")
    return clean


def destination(text, field):
    if not isinstance(text, str) or not text.startswith("/"):
        raise BadValue(field, f'invalid mount destination "{text}": it must be absolute')
    return mount_destination(text, field, "", text)


def volume(text, field):
    """-v SRC:DST[:OPTS]: an absolute SRC is a bind mount, a name a kago volume.

    OPTS: ro, rw, and the bind propagations; SELinux's z/Z are accepted and ignored (this
    host has no SELinux; podman ignores them the same way).
    """
    parts = str(text).split(":")
    if len(parts) == 1 or len(parts) > 3 or not all(parts[:2]):
        raise BadValue(field, f'invalid volume "{text}": use SRC:DST[:ro]')
    source, dest = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 and parts[2] else []
    if not dest.startswith("/"):
        raise BadValue(field, f'invalid volume "{text}": the destination must be absolute')
    dest = mount_destination(dest, field, "bind" if source.startswith("/") else "volume", text)
    readonly = False
    options = []
    for opt in opts:
        if opt in ("ro", "rw"):
            readonly = opt == "ro"
        elif opt in ("z", "Z"):
            continue
        elif opt in _BIND_OPTIONS:
            options.append(opt)
        else:
            raise BadValue(field, f'invalid volume option "{opt}" in "{text}"')
    if source.startswith("/"):
        return Mount("bind", dest, source, readonly, tuple(options))
    if source.startswith("."):
        raise BadValue(field, f'invalid volume "{text}": a bind source must be absolute')
    return Mount("volume", dest, name(source, field), readonly, tuple(options))


_NAME_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_NAME_REST = _NAME_FIRST + "_.-"


def name(text, field):
    """docker's rule for container and volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128
    characters; they name files too, so no "/"."""
    if (not isinstance(text, str) or not text or len(text) > 128 or text[0] not in _NAME_FIRST
            or any(c not in _NAME_REST for c in text)):
        raise BadValue(field, f'invalid container name "{text}": only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                              f'are allowed')
    return text


def tmpfs(text, field):
    """--tmpfs DST[:OPTS] (docker): a fresh tmpfs, options as mount(8) takes them."""
    dest, _, opts = str(text).partition(":")
    if not dest.startswith("/"):
        raise BadValue(field, f'invalid tmpfs "{text}": the destination must be absolute')
    options = tuple(o for o in opts.split(",") if o) if opts else TMPFS_OPTIONS
    readonly = "ro" in options
    return Mount("tmpfs", dest, "tmpfs", readonly, tuple(o for o in options
                                                        if o not in ("ro", "rw")))


def restart(text, field):
    """"no", "always", "unless-stopped", "on-failure[:N]" -> RestartPolicy."""
    name, _, number = str(text or "no").partition(":")
    if name not in RESTART_NAMES:
        raise BadValue(field, f'invalid restart policy "{text}": use no, on-failure[:N], '
                              f'always or unless-stopped')
    if number and name != "on-failure":
        raise BadValue(field, f'invalid restart policy "{text}": only on-failure takes a count')
    try:
        retries = int(number) if number else 0
    except ValueError:
        retries = -1
    if retries < 0:
        raise BadValue(field, f'invalid restart count in "{text}"')
    return RestartPolicy(name, retries)


def port(text, field):
    """[IP:]HOST:CONTAINER[/PROTO] (kago.network's parser: the same rules as publishing)."""
    from kago.network import NetworkError, PortMapping
    try:
        p = PortMapping.parse(str(text))
    except NetworkError as e:
        raise BadValue(field, str(e)) from None
    return Port(p.host_port, p.container_port, p.proto, p.host_ip)


def network(text, field, ip="", aliases=()):
    """bridge, host, none, container:REF, or a network's name."""
    text = str(text or "bridge")
    if text.startswith("container:"):
        ref = text.split(":", 1)[1]
        if not ref:
            raise BadValue(field, f'"{text}": use container:NAME or container:ID')
        mode, name, container = "container", "", ref
    elif text in ("bridge", "host", "none"):
        mode, name, container = text, "", ""
    else:
        mode, name, container = "bridge", text, ""
    return Network(mode, name, container, str(ip or ""), tuple(str(a) for a in aliases or ()))


def cap_name(name, field):
    """"net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "ALL" stays."""
    upper = str(name).strip().upper()
    if upper == "ALL":
        return upper
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    from kago.oci.names import CAPABILITIES
    if upper not in CAPABILITIES:
        raise BadValue(field, f'unknown capability "{name}"')
    return upper


def userns(text, field):
    """--userns host | auto | auto:size=N | keep-id -> IdMapping (no maps yet)."""
    value = str(text or "host")
    if value in ("host", "auto", "keep-id"):
        return IdMapping(value)
    if value.startswith("auto:size="):
        return IdMapping("auto", count(value.split("=", 1)[1], field, minimum=1))
    raise BadValue(field, f'invalid user namespace mode "{text}": use auto, host or keep-id')


def id_map(value, field):
    """"inside:host:size[,...]", (inside, host, size) or a list of those -> IdRanges."""
    if isinstance(value, str):
        items = [tuple(v.split(":")) for v in value.split(",") if v]
    elif value and isinstance(value[0], (list, tuple, IdRange)):
        items = value
    else:
        items = [value] if value else []
    out = []
    for item in items:
        if isinstance(item, IdRange):
            item = (item.inside, item.host, item.size)
        try:
            inside, host, length = (int(x) for x in item)
        except (TypeError, ValueError):
            raise BadValue(field, f"invalid ID mapping {item!r}: use (inside, host, "
                                  f"size)") from None
        if inside < 0 or host < 0 or length <= 0 or host + length > 1 << 32:
            raise BadValue(field, f"invalid ID mapping {item!r}: IDs are 0..2^32-1, size > 0")
        out.append(IdRange(inside, host, length))
    return tuple(out)


def namespaces(mapping, field):
    """{"pid": "new" | "host" | PATH, ...} -> Namespaces (a container always has its own
    mount namespace)."""
    out = []
    for kind, how in dict(mapping or {}).items():
        if kind not in NAMESPACE_KINDS:
            raise BadValue(field, f'unknown namespace "{kind}": use one of '
                                  f'{", ".join(NAMESPACE_KINDS)}')
        if how not in ("new", "host") and not (isinstance(how, str) and how.startswith("/")):
            raise BadValue(f"{field}.{kind}", f'"{how}": use "new", "host" or a namespace path')
        if kind == "mount" and how != "new":
            raise BadValue(f"{field}.mount", "a container always has its own mount namespace")
        out.append(Namespace(kind, how))
    return tuple(out)


def independent(items, field):
    out = tuple(items)
    for item in out:
        if item not in INDEPENDENT:
            raise BadValue(field, f'"{item}" is not one of {", ".join(INDEPENDENT)}')
    return out


def choice(value, field, allowed):
    if value not in allowed:
        raise BadValue(field, f'"{value}": use {" or ".join(repr(a) for a in allowed)}'
                       .replace("'", '"'))
    return value


def pairs(mapping):
    """A mapping -> sorted ((str key, str value), ...)."""
    return tuple(sorted((str(k), str(v)) for k, v in dict(mapping or {}).items()))


def log(values, field):
    """{"max_size": size, "max_files": N} (either may be left out)."""
    values = dict(values or {})
    unknown = set(values) - {"max_size", "max_files"}
    if unknown:
        raise BadValue(field, f'unknown log option "{sorted(unknown)[0]}": use max_size '
                              f"and max_files")
    default = LogOptions()
    return LogOptions(size(values.get("max_size", default.max_size), f"{field}.max_size"),
                      count(values.get("max_files", default.max_files), f"{field}.max_files",
                            minimum=1))


def stop_signal(text, field):
    """A signal as kill takes it (9, KILL, SIGKILL, RTMIN+3) -> its canonical spelling."""
    from kago.errors import KagoError
    from kago.oci.names import parse_signal
    text = str(text).strip()
    try:
        parse_signal(text)
    except KagoError as e:
        raise BadValue(field, str(e)) from None
    if text.isdigit():
        return text
    upper = text.upper()
    return upper if upper.startswith("SIG") else "SIG" + upper


def absolute(path, field, base=None):
    """A host path: absolute already, or relative to ``base`` (a definition's directory)."""
    path = str(path)
    if base is not None:
        return os.path.normpath(os.path.join(base, path))
    if not os.path.isabs(path):
        raise BadValue(field, f"{path}: must be an absolute path")
    return os.path.normpath(path)
