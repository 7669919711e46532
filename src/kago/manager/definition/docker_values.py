"""docker's run flags added after the first ones: --workdir, --add-host, --dns, --device,
--expose, --mount, --pull, --cgroup-parent -> the typed parts. Pure, as values.py (whose
size, name and mount-destination rules these share); each parser raises
``BadValue(field, message)`` naming the flag or option it was given."""

import os

from kago.manager.definition.parts import Mount
from kago.manager.definition.values import _BIND_OPTIONS, mount_destination, name, size
from kago.manager.errors import BadValue


def workdir(text, field):
    """-w: docker refuses a relative working directory before anything is made."""
    text = str(text or "")
    if text and not text.startswith("/"):
        raise BadValue(field, f"the working directory '{text}' is invalid, it needs to be an "
                              f"absolute path")
    return os.path.normpath(text) if text and text != "/" else text


def ip_address(text, field, what="ip address"):
    import ipaddress
    try:
        return str(ipaddress.ip_address(str(text).strip("[]")))
    except ValueError:
        raise BadValue(field, f'"{text}" is not an {what}') from None


def extra_host(text, field):
    """--add-host NAME:IP (or NAME=IP); IP may be ``host-gateway``."""
    from kago.manager.definition.parts import ExtraHost
    text = str(text)
    sep = "=" if "=" in text else ":"
    name, found, ip = text.partition(sep)
    if not found or not name or not ip:
        raise BadValue(field, f'bad format for add-host: "{text}": use NAME:IP')
    if ip != "host-gateway":
        ip = ip_address(ip, field, "ip address in add-host")
    return ExtraHost(name, ip)


def dns(servers, search, options, fields=("--dns", "--dns-search", "--dns-option")):
    from kago.manager.definition.parts import Dns
    for item in search:
        if not item or any(c.isspace() for c in item) or len(item) > 255:
            raise BadValue(fields[1], f'"{item}" is not a valid domain')
    for item in options:
        if not item or any(c.isspace() for c in item):
            raise BadValue(fields[2], f'"{item}" is not a resolver option')
    return Dns(tuple(ip_address(s, fields[0]) for s in servers),
               tuple(s for s in search if s != "."), tuple(options))


def device(text, field):
    """--device HOST[:CONTAINER][:PERMS] (docker's parser: a last part of r, w, m is the
    permissions)."""
    from kago.manager.definition.parts import Device
    parts = str(text).split(":")
    perms = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm") \
            and not parts[-1].startswith("/"):
        perms = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise BadValue(field, f'invalid device specification: "{text}"')
    host = parts[0]
    container = parts[1] if len(parts) == 2 and parts[1] else host
    for path in (host, container):
        if not path.startswith("/"):
            raise BadValue(field, f'invalid device specification "{text}": {path} is not an '
                                  f"absolute path")
    return Device(os.path.normpath(host), os.path.normpath(container), perms)


def expose(text, field):
    """--expose PORT[-PORT][/PROTO] -> ((port, proto), ...)"""
    spec, _, proto = str(text).partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = spec.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        first = last = 0
    if proto not in ("tcp", "udp") or not 0 < first <= last <= 65535:
        raise BadValue(field, f'invalid range format for --expose: "{text}": use '
                              f"PORT[-PORT][/tcp|udp]")
    return tuple((p, proto) for p in range(first, last + 1))


_MOUNT_KEYS = {"type", "source", "src", "destination", "dst", "target", "readonly", "ro",
               "bind-propagation", "bind-nonrecursive", "volume-nocopy", "volume-driver",
               "volume-opt", "tmpfs-size", "tmpfs-mode", "consistency"}
_TRUE = {"", "1", "true"}
_FALSE = {"0", "false"}


def mount(text, field):
    """--mount type=bind|volume|tmpfs,src=...,dst=...[,readonly][,...] (docker's syntax and
    its errors)."""
    text = str(text)
    kind, values, readonly = "volume", {}, False
    bad = f'invalid argument "{text}" for "{field}" flag'
    for item in text.split(","):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise BadValue(field, f"{bad}: unexpected key '{key}' in '{item}'")
        if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise BadValue(field, f"{bad}: invalid field '{item}' must be a key=value pair")
        if key in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            if value.lower() not in _TRUE | _FALSE:
                raise BadValue(field, f"{bad}: invalid value for {key}: {value}")
            if key in ("readonly", "ro"):
                readonly = value.lower() in _TRUE
            continue
        if key == "type":
            kind = value
            if kind not in ("bind", "volume", "tmpfs"):
                raise BadValue(field, f"{bad}: type '{value}' is not supported")
        values[{"src": "source", "dst": "destination", "target": "destination"}.get(
            key, key)] = value
    dest = mount_destination(values.get("destination", ""), field, kind, text)
    source = values.get("source", "")
    options = []
    prop = values.get("bind-propagation")
    if prop is not None:
        if kind != "bind":
            raise BadValue(field, f'invalid mount config for type "{kind}": field '
                                  f"BindOptions must not be specified")
        if prop not in _BIND_OPTIONS[:6]:
            raise BadValue(field, f'{bad}: invalid propagation mode "{prop}"')
        options.append(prop)
    tmpfs_keys = [k for k in ("tmpfs-size", "tmpfs-mode") if k in values]
    if tmpfs_keys and kind != "tmpfs":
        raise BadValue(field, f'invalid mount config for type "{kind}": field TmpfsOptions '
                              "must not be specified")
    if kind == "tmpfs":
        if source:
            raise BadValue(field, 'invalid mount config for type "tmpfs": field Source must '
                                  "not be specified")
        opts = ["nosuid", "nodev"]
        if "tmpfs-size" in values:
            opts.append(f"size={size(values['tmpfs-size'], field)}")
        mode = values.get("tmpfs-mode", "1777")
        try:
            opts.append(f"mode={int(mode, 8):o}")
        except ValueError:
            raise BadValue(field, f"{bad}: invalid value for tmpfs-mode: {mode}") from None
        return Mount("tmpfs", dest, "tmpfs", readonly, tuple(opts))
    if kind == "bind":
        if not source:
            raise BadValue(field, 'invalid mount config for type "bind": field Source must '
                                  'not be empty')
        if not source.startswith("/"):
            raise BadValue(field, f'invalid mount config for type "bind": invalid mount '
                                  f"path: '{source}' mount path must be absolute")
        return Mount("bind", dest, os.path.normpath(source), readonly, tuple(options))
    if not source:
        raise BadValue(field, 'invalid mount config for type "volume": kago needs a volume '
                              'name (src=NAME): anonymous volumes are not supported')
    return Mount("volume", dest, name(source, field), readonly, tuple(options))


def pull(text, field):
    from kago.manager.definition.parts import PULL_POLICIES
    if text not in PULL_POLICIES:
        raise BadValue(field, f'invalid pull option: "{text}": must be one of "always", '
                              f'"missing", "never"')
    return text


def cgroup_parent(text, field):
    """docker's --cgroup-parent: a cgroup path ("/kago.slice/web", "group": from the
    hierarchies' top either way), no ".." and no empty name; "/a/b" out."""
    if not isinstance(text, str) or "\0" in text or "\n" in text:
        raise BadValue(field, f"{text!r}: use a cgroup path like /group or /group/sub")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise BadValue(field, f'"{text}": a cgroup path must not contain ".."')
    if any(len(p) > 255 for p in parts):
        raise BadValue(field, f'"{text}": a cgroup name is at most 255 characters')
    return "/" + "/".join(parts) if parts else ""
