"""``-f a.yaml -f b.yaml``: later files override earlier ones, by compose's merge rules.

    doc, lines = merge(base, base_lines, override, override_lines)

Mappings merge key by key, recursively; a plain value or a list the override gives replaces
the base's (``command``, ``entrypoint``, ``healthcheck.test``...), except for a service's:

    environment, labels, sysctls, extra_hosts   merged by key (list or mapping spelling)
    depends_on, networks                        merged by name (list or mapping spelling)
    ports, expose, env_file, cap_add, cap_drop, dns, tmpfs
                                                appended, each value once
    volumes                                     merged by target path
    build                                       a string is {context: STRING}, then merged
    ulimits                                     merged by name

``lines`` (yamlfile.read's paths -> (file, line)) follow the values, so an error in a merged
value names the file that gave it.
"""

_BY_KEY = ("environment", "labels", "sysctls", "extra_hosts")
_BY_NAME = ("depends_on", "networks")
_APPENDED = ("ports", "expose", "env_file", "cap_add", "cap_drop", "dns", "tmpfs")


def merge(base, base_lines, over, over_lines):
    lines = dict(base_lines)
    doc = _mapping(base, over, (), lines, over_lines, service=False)
    return doc, lines


def _relocate(src, old, new, out):
    """Copy src's lines under path ``old`` to under ``new`` in ``out``."""
    n = len(old)
    for path, where in src.items():
        if path[:n] == old:
            out[new + path[n:]] = where


def _drop(lines, prefix):
    n = len(prefix)
    for path in [p for p in lines if p[:n] == prefix and len(p) > n]:
        del lines[path]


def _mapping(base, over, path, lines, over_lines, service):
    out = dict(base)
    if path in over_lines:
        lines[path] = over_lines[path]
    for key, value in over.items():
        here = path + (key,)
        if key not in out:
            out[key] = value
            _relocate(over_lines, here, here, lines)
            continue
        old = out[key]
        in_service = len(path) == 2 and path[0] == "services"
        if in_service and key in _BY_KEY:
            out[key] = _keyed(old, value, here, lines, over_lines, _env_pairs)
        elif in_service and key in _BY_NAME:
            out[key] = _keyed(old, value, here, lines, over_lines, _names)
        elif in_service and key in _APPENDED:
            out[key] = _appended(old, value, here, lines, over_lines)
        elif in_service and key == "volumes":
            out[key] = _volumes(old, value, here, lines, over_lines)
        elif in_service and key == "build":
            old = {"context": old} if isinstance(old, str) else old
            value = {"context": value} if isinstance(value, str) else value
            if isinstance(value, str) or not isinstance(old, dict) or not isinstance(value, dict):
                out[key] = value
                _drop(lines, here)
                _relocate(over_lines, here, here, lines)
            else:
                out[key] = _mapping(old, value, here, lines, over_lines, service)
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _mapping(old, value, here, lines, over_lines, service)
        else:
            out[key] = value
            _drop(lines, here)
            _relocate(over_lines, here, here, lines)
    return out


def _env_pairs(value):
    """[(key, item or value, index)] of a list (K=V) or mapping spelling."""
    if isinstance(value, dict):
        return [(k, v, k) for k, v in value.items()], True
    if isinstance(value, list):
        return [(str(item).partition("=")[0], item, i) for i, item in enumerate(value)], False
    return None, None


def _names(value):
    if isinstance(value, dict):
        return [(k, v, k) for k, v in value.items()], True
    if isinstance(value, list):
        return [(str(item), None, i) for i, item in enumerate(value)], False
    return None, None


def _keyed(old, new, path, lines, over_lines, pairs_of):
    a, a_map = pairs_of(old)
    b, b_map = pairs_of(new)
    if a is None or b is None:
        _drop(lines, path)
        _relocate(over_lines, path, path, lines)
        return new
    if a_map == b_map and not a_map:
        # both lists: keep the list spelling, later items replace earlier ones by key
        items, where = {}, {}
        for key, item, i in a:
            items[key], where[key] = item, ("a", i)
        for key, item, i in b:
            items[key], where[key] = item, ("b", i)
        old_lines = {p: w for p, w in lines.items() if p[:len(path)] == path}
        _drop(lines, path)
        out = []
        for k, key in enumerate(items):
            side, i = where[key]
            src = old_lines if side == "a" else over_lines
            _relocate(src, path + (i,), path + (k,), lines)
            out.append(items[key])
        return out
    # any mapping: the merged mapping (a list item K=V -> K: V; a bare name -> {})
    out, new_lines = {}, {}
    old_lines = {p: w for p, w in lines.items() if p[:len(path)] == path}
    for side, pairs, is_map, src in (("a", a, a_map, old_lines), ("b", b, b_map, over_lines)):
        for key, item, i in pairs:
            if is_map:
                out[key] = item
            elif pairs_of is _names:
                out[key] = out.get(key) if isinstance(out.get(key), dict) else None
            else:
                k, eq, v = str(item).partition("=")
                out[key] = v if eq else None
            _relocate(src, path + (i,), path + (key,), new_lines)
    _drop(lines, path)
    lines.update(new_lines)
    if path in over_lines:
        lines[path] = over_lines[path]
    return out


def _appended(old, new, path, lines, over_lines):
    if not isinstance(old, list):
        old = [old]
    if not isinstance(new, list):
        new = [new]
    out = list(old)
    for i, item in enumerate(new):
        if item in out:
            continue
        _relocate(over_lines, path + (i,), path + (len(out),), lines)
        out.append(item)
    return out


def _target(item):
    if isinstance(item, dict):
        return item.get("target")
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _volumes(old, new, path, lines, over_lines):
    if not isinstance(old, list) or not isinstance(new, list):
        _drop(lines, path)
        _relocate(over_lines, path, path, lines)
        return new
    out = list(old)
    targets = [_target(v) for v in out]
    for i, item in enumerate(new):
        t = _target(item)
        if t in targets:
            k = targets.index(t)
            out[k] = item
            _drop(lines, path + (k,))
        else:
            k = len(out)
            out.append(item)
            targets.append(t)
        _relocate(over_lines, path + (i,), path + (k,), lines)
    return out
