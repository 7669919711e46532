"""linux.resources.devices: v1 devices.allow/devices.deny lines.

cgroup-v1/devices.rst: "a" in devices.deny clears every rule and denies all; runc starts there.
The v2 device filter is an eBPF program, not a file: on v2 ``devices`` is an error here.
"""

from kago.errors import SpecError

from . import _bool, _dict, _int, _list, _show, _str


def _devices(rules, field, host):
    out = []
    for i, rule in enumerate(_list(rules, field)):
        where = f"{field}[{i}]"
        rule = _dict(rule, where)
        allow = _bool(rule.get("allow"), where + ".allow")
        out.append(("devices.allow" if allow else "devices.deny", device_rule(rule, where),
                    where))
    if out[:1] != [("devices.deny", "a", f"{field}[0]")]:
        out.insert(0, ("devices.deny", "a", field))  # from nothing, as runc: deny, then allow
    return out


def device_rule(rule, field):
    """The devices.allow/deny line of one spec rule: "c 1:3 rwm", "a" for every device."""
    kind = rule.get("type")
    kind = "a" if kind is None else kind
    if kind not in ("a", "b", "c"):
        raise SpecError(field + ".type", f"must be a, b or c, not {_show(kind)}")
    access = rule.get("access")
    access = "rwm" if access in (None, "") else _str(access, field + ".access")
    if access.strip("rwm") or len(set(access)) != len(access):
        raise SpecError(field + ".access", f"must be letters of rwm, not {_show(access)}")
    numbers = [_device_number(rule.get(k), f"{field}.{k}") for k in ("major", "minor")]
    if kind == "a":
        return "a"  # the kernel reads any line starting with "a" as every device
    return f"{kind} {numbers[0]}:{numbers[1]} {access}"


def _device_number(value, field):
    if value is None or value == -1:
        return "*"
    return str(_int(value, field, 0, 0xFFFFFFFF))


def _no_devices_on_v2(rules, field, host):
    if _list(rules, field):
        raise SpecError(field, "cgroup v2 device rules need an eBPF device filter, which kago "
                        "cannot load yet")
    return []
