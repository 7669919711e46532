"""What ties a service to others and to the host: ``ports`` (texts as ``kago run -p``
takes them), ``depends_on`` (with its conditions), ``networks`` / ``network_mode``, and
container names. Pure.
"""

import json

from kago.manager.compose import fields as F
from kago.manager.definition import values as V
from kago.manager.errors import BadValue

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def container_name(project, service, number=1):
    return f"{project}-{service}-{number}"


def ports(s, i, item):
    """Short syntax ([IP:]HOST:CONTAINER[/PROTO], ranges HOST-HOST:C-C) or the long
    {target, published, host_ip, protocol}; texts as kago run -p takes them."""
    key = ("ports", i)
    if isinstance(item, dict):
        unknown = set(item) - {"target", "published", "host_ip", "protocol", "mode", "name",
                               "app_protocol"}
        if unknown:
            raise s.error(key + (sorted(unknown)[0],), "not supported by kago compose")
        if item.get("published") in (None, ""):
            raise s.error(key, "kago publishes a port only with a host port: give published:")
        host = str(item.get("host_ip") or "")
        host = f"[{host}]" if ":" in host else host
        text = f"{host + ':' if host else ''}{item['published']}:{item.get('target')}" \
               f"/{item.get('protocol') or 'tcp'}"
        texts = [text]
        shown = json.dumps(item)
    else:
        shown = str(item)
        texts = expand_ports(s, key, shown)
    out = []
    for text in texts:
        try:
            V.port(text, "ports")
        except BadValue as e:
            detail = F.message(e).split("': ", 1)[-1] if F.message(e).startswith(
                "port mapping '") else F.message(e)
            raise s.error(key, f'"{shown}" is not a port: {detail}') from None
        out.append(text)
    return out


def expand_ports(s, key, text):
    spec, slash, proto = text.partition("/")
    if spec.startswith("["):
        ip, _, rest = spec[1:].partition("]:")
        ip = f"[{ip}]:"
    else:
        parts = spec.rsplit(":", 2)
        ip = parts[0] + ":" if len(parts) == 3 else ""
        rest = ":".join(parts[-2:]) if len(parts) >= 2 else parts[0]
    if ":" not in rest:
        raise s.error(key, f'"{text}": kago publishes a port only with a host port '
                           f"(HOST:CONTAINER)")
    host, container = rest.split(":", 1)
    if "-" not in host and "-" not in container:
        return [text]

    def span(part):
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise s.error(key, f'"{text}" is not a port') from None
        return list(range(lo, hi + 1))
    hosts, containers = span(host), span(container)
    if len(hosts) != len(containers):
        raise s.error(key, f'"{text}": the host and container ranges differ in length')
    return [f"{ip}{h}:{c}{slash}{proto}" for h, c in zip(hosts, containers)]


def depends_on(s):
    value = s.svc.get("depends_on")
    out = []
    if value is None:
        return out
    if isinstance(value, list):
        items = [(str(v), {}, (i,)) for i, v in enumerate(value)]
    elif isinstance(value, dict):
        items = [(str(k), v or {}, (k,)) for k, v in value.items()]
    else:
        raise s.error("depends_on", "a list of services or a mapping")
    for dep, spec, sub in items:
        key = ("depends_on",) + sub
        if dep not in s.project.services:
            raise s.error(key, f'service "{s.name}" depends on undefined service "{dep}"')
        if dep == s.name:
            raise s.error(key, f'service "{s.name}" depends on itself')
        if not isinstance(spec, dict):
            raise s.error(key, "a mapping with condition:")
        condition = spec.get("condition", "service_started")
        if condition not in CONDITIONS:
            raise s.error(key + ("condition",), f'"{condition}": use '
                                                + ", ".join(CONDITIONS))
        if condition == "service_healthy":
            if not F.has_health_field():
                raise s.error(key + ("condition",),
                              "service_healthy needs healthchecks, which this kago does not "
                              "run yet: use service_started")
            hc = (s.project.services[dep] or {}).get("healthcheck") or {}
            if hc.get("disable") or hc.get("test") in (["NONE"], "NONE"):
                raise s.error(key + ("condition",), f'service "{dep}" has its healthcheck '
                                                    f"disabled: nothing to wait for")
        out.append((dep, condition))
    return out


def service_network(s):
    """(project network keys, network option, ip, aliases) of the first network; the others
    go to ``s.more_networks`` as (name, ip, aliases)."""
    svc = s.svc
    mode = svc.get("network_mode")
    if mode is not None and svc.get("networks") is not None:
        raise s.error("network_mode", "network_mode and networks cannot be used together")
    if mode is not None:
        mode = str(mode)
        if mode.startswith("service:"):
            other = mode.split(":", 1)[1]
            if other not in s.project.services:
                raise s.error("network_mode", f'undefined service "{other}"')
            return [], "container:" + other_container(s, other), "", []
        if mode in ("host", "none", "bridge") or mode.startswith("container:"):
            return [], mode, "", []
        raise s.error("network_mode", f'"{mode}": use host, none, bridge, service:NAME or '
                                      f"container:NAME")
    value = svc.get("networks")
    if value is None:
        items = {"default": {}}
    elif isinstance(value, list):
        items = {str(k): {} for k in value}
    elif isinstance(value, dict):
        items = {str(k): v or {} for k, v in value.items()}
    else:
        raise s.error("networks", "a list of networks or a mapping")
    keys, attached = [], []
    for key, spec in items.items():
        if key not in s.plan.networks:
            raise s.error(("networks", key), f'service "{s.name}" refers to undefined network '
                                             f"{key} (declare it under the top-level "
                                             f"networks:)")
        if not isinstance(spec, dict):
            raise s.error(("networks", key), "a mapping (aliases, ipv4_address)")
        unknown = set(spec) - {"aliases", "ipv4_address"}
        if unknown:
            raise s.error(("networks", key, sorted(unknown)[0]),
                          "not supported by kago compose")
        aliases = (s.name,) + tuple(str(a) for a in spec.get("aliases") or ())
        keys.append(key)
        attached.append((s.plan.networks[key].name, str(spec.get("ipv4_address") or ""),
                         aliases))
    s.more_networks = attached[1:]  # kago network connect'ed after create (up.py)
    first, ip, aliases = attached[0]
    return keys, first, ip, list(aliases)


def other_container(s, other):
    svc = s.project.services.get(other) or {}
    return str(svc.get("container_name") or container_name(s.project.name, other))
