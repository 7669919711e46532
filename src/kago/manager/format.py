"""docker's output shapes: tables, human durations, status words, ``--format`` templates.

Plain string work (no ``rich``: importing it costs ~35 ms, a third of ``kago ps``).

Templates are the subset of Go's text/template that docker users write:
``{{.Names}}``, ``{{.State.Pid}}``, ``{{json .}}``, ``{{json .Config.Env}}``, ``{{upper .X}}``,
``{{lower .X}}``, ``{{index .Labels "k"}}``, ``\\t`` and ``\\n``; a leading ``table`` prints
the fields as columns under their names. ``--format json`` prints one JSON object per line.
"""

import json
import time


def human_duration(seconds):
    """docker's go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def human_size(n):
    """docker's HumanSize (powers of 1000) for image and I/O sizes: 1.2MB."""
    return _scaled(n, 1000, ("B", "kB", "MB", "GB", "TB"))


def binary_size(n):
    """docker stats' BytesSize (powers of 1024) for memory: 1.5MiB."""
    return _scaled(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB"))


def _scaled(n, base, units):
    n = float(n or 0)
    for unit in units[:-1]:
        if n < base:
            return f"{n:.4g}{unit}"
        n /= base
    return f"{n:.4g}{units[-1]}"


def status_text(record, live, now=None):
    now = time.time() if now is None else now
    state = record.get("state") or {}
    if live == "running":
        from kago.manager.health import suffix
        return (f"Up {human_duration(now - state.get('started_at', now))}"
                f"{suffix(state.get('health'))}")
    if live == "paused":
        return f"Up {human_duration(now - state.get('started_at', now))} (Paused)"
    if live == "restarting":
        return (f"Restarting ({_code(state)}) "
                f"{human_duration(now - state.get('finished_at', now))} ago")
    if live == "exited":
        if not state.get("finished_at"):
            return "Exited (?)"
        return f"Exited ({_code(state)}) {human_duration(now - state['finished_at'])} ago"
    if live == "checkpointed":  # podman's state name; kago restore or start brings it back
        at = (state.get("checkpoint") or {}).get("at") or now
        return f"Checkpointed {human_duration(now - at)} ago"
    if state.get("incomplete"):
        return "Created (incomplete)"  # being created, or its creator died (journal.py)
    return "Created"


def _code(state):
    code = state.get("exit_code")
    return "?" if code is None else code


def released(record):
    """Whether the container's end released its network (and rootfs): ``Manager.release``."""
    state = record.get("state") or {}
    return bool(state.get("released")) and not state.get("network_kept")


def ports_text(record):
    """docker ps's PORTS: what is published now (nothing once an end released it)."""
    att = record.get("network") or {}
    if released(record):
        return ""
    out = []
    for p in att.get("ports") or ():
        ip = p.get("host_ip") or "0.0.0.0"
        out.append(f"{ip}:{p.get('host_port')}->{p.get('container_port')}/{p.get('proto', 'tcp')}")
    return ", ".join(out)


def command_text(record, trunc=True):
    args = record.get("args") or []
    text = " ".join(args)
    if trunc and len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


def table(headers, rows):
    """Columns padded like docker's tabwriter (3 spaces between)."""
    cells = [list(headers)] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in cells)


# --- templates ----------------------------------------------------------------------------------

class TemplateError(ValueError):
    pass


def render(template, data):
    """Fill ``{{...}}`` actions from ``data`` (dicts, nested)."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")
    out, rest = [], template
    while "{{" in rest:
        before, _, rest = rest.partition("{{")
        action, sep, rest = rest.partition("}}")
        if not sep:
            raise TemplateError(f"unclosed action in template: {template!r}")
        out.append(before)
        out.append(_action(action.strip(), data))
    out.append(rest)
    return "".join(out)


def _action(action, data):
    words = _split(action)
    if not words:
        return ""
    fn = None
    if words[0] in ("json", "upper", "lower", "index", "len", "join", "title"):
        fn, words = words[0], words[1:]
    values = [_value(w, data) for w in words]
    if fn is None:
        return _show(values[0] if values else None)
    if fn == "json":
        return json.dumps(values[0] if values else data)
    if fn == "upper":
        return _show(values[0]).upper()
    if fn == "lower":
        return _show(values[0]).lower()
    if fn == "title":
        return _show(values[0]).title()
    if fn == "len":
        return str(len(values[0] or ()))
    if fn == "join":
        return str(values[1]).join(str(v) for v in values[0] or ())
    if fn == "index":
        container = values[0] or {}
        try:
            return _show(container[values[1]])
        except (KeyError, IndexError, TypeError):
            return ""
    raise TemplateError(f"unknown function {fn}")


def _split(action):
    words, cur, quoted = [], "", False
    for ch in action:
        if ch == '"':
            quoted = not quoted
            cur += ch
        elif ch.isspace() and not quoted:
            if cur:
                words.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def _value(word, data):
    if word.startswith('"') and word.endswith('"'):
        return word[1:-1]
    if word.isdigit():
        return int(word)
    if not word.startswith("."):
        raise TemplateError(f'cannot evaluate "{word}": fields start with a dot, like .Names')
    value = data
    for part in [p for p in word.split(".") if p]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise TemplateError(f"can't evaluate field {part}")
    return value


def _show(value):
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _go_show(value)
    return str(value)


def _go_show(value):
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_show(v)}" for k, v in sorted(value.items())) + "]"
    return "[" + " ".join(_show(v) for v in value) + "]"


def formatted(fmt, rows, headers, names=None):
    """Lines for ``--format``: "json", "table ...", or a template; rows are dicts. ``names``
    overrides column titles ({"ID": "IMAGE ID"})."""
    if fmt == "json":
        return [json.dumps(r) for r in rows]
    if fmt.startswith("table"):
        template = fmt[5:].strip() or "\t".join("{{." + h + "}}" for h in headers)
        names = [_header(a, names or {}) for a in _actions(template)]
        body = [render(template, r).split("\t") for r in rows]
        width = max([len(names)] + [len(b) for b in body])
        return table(names + [""] * (width - len(names)),
                     [b + [""] * (width - len(b)) for b in body]).splitlines()
    return [render(fmt, r) for r in rows]


def _actions(template):
    out = []
    rest = template.replace("\\t", "\t")
    while "{{" in rest:
        _, _, rest = rest.partition("{{")
        action, _, rest = rest.partition("}}")
        out.append(action.strip())
    return out


_HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
            "RunningFor": "CREATED", "CreatedAt": "CREATED AT", "Status": "STATUS",
            "Ports": "PORTS", "State": "STATE", "Labels": "LABELS", "Repository": "REPOSITORY",
            "Tag": "TAG", "Size": "SIZE", "CreatedSince": "CREATED", "Pid": "PID",
            "Name": "NAME", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
            "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS",
            "Container": "CONTAINER", "Pressure": "PRESSURE (CPU/MEM/IO)"}


def _header(action, names):
    last = action.split()[-1].split(".")[-1] if action else ""
    return names.get(last) or _HEADERS.get(last, last.upper())
