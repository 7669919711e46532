"""linux.resources.devices: v1 devices.allow/devices.deny lines, or the v2 device filter's rules.

cgroup-v1/devices.rst: "a" in devices.deny clears every rule and denies all; runc starts there.

cgroup v2 has no devices files: access is decided by an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE)
attached to the cgroup. As runc does (libcontainer/cgroups/devices: devices_emulator.go,
devicefilter.go), the spec's list is first run through an emulation of the v1 devices cgroup, so
the rules mean the same on both versions: from deny-all, a rule of type ``a`` resets the list to
allow-all or deny-all; any other rule adds its access to the exceptions of the default (an
"allow" while denying by default) or takes it away from the exception of exactly the same
device (a "deny" then). Taking access away from inside a wildcard exception (deny c 1:3 after
allow c *:* rwm) is what v1 silently ignores: like runc, it is an error here. What remains is
the default and a set of exceptions, sorted as runc sorts them (major, minor, type; a wildcard
first): the one ``Write`` of the plan, ``(DEVICE_FILTER, text)``, one rule a line::

    deny a               <- the default (``allow a``: allow all, the privileged case)
    allow c *:* m        <- exceptions, each the opposite of the default
    allow c 1:3 rwm

``kago.linux.cgroups.device_filter`` compiles that text into the program, ``devices_v2`` loads
and attaches it.
"""

from kago.errors import SpecError

from .values import DEVICE_FILTER, _bool, _dict, _int, _list, _show, _str

_ORDER = "rwm"


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
    kind, major, minor, access = parse_rule(rule, field)
    if kind == "a":
        return "a"  # the kernel reads any line starting with "a" as every device
    return f"{kind} {_number(major)}:{_number(minor)} {access}"


def parse_rule(rule, field):
    """(type, major, minor, access) of one spec rule; -1 is a wildcard number."""
    kind = rule.get("type")
    kind = "a" if kind is None else kind
    if kind not in ("a", "b", "c"):
        raise SpecError(field + ".type", f"must be a, b or c, not {_show(kind)}")
    access = rule.get("access")
    access = "rwm" if access in (None, "") else _str(access, field + ".access")
    if access.strip("rwm") or len(set(access)) != len(access):
        raise SpecError(field + ".access", f"must be letters of rwm, not {_show(access)}")
    major, minor = (_device_number(rule.get(k), f"{field}.{k}") for k in ("major", "minor"))
    return kind, major, minor, access


def _device_number(value, field):
    if value is None or value == -1:
        return -1
    return _int(value, field, 0, 0xFFFFFFFF)


def _number(n):
    return "*" if n == -1 else str(n)


def _access(letters):
    return "".join(c for c in _ORDER if c in letters)


# --- v2: the emulated list, for the eBPF program ----------------------------------------------

def _device_filter(rules, field, host):
    """The v2 plan: one pseudo write whose value is the emulated rule list (module docstring)."""
    default_allow, exceptions = emulate(
        (_bool(_dict(r, f"{field}[{i}]").get("allow"), f"{field}[{i}].allow"),
         parse_rule(r, f"{field}[{i}]"), f"{field}[{i}]")
        for i, r in enumerate(_list(rules, field)))
    verb = "deny" if default_allow else "allow"
    lines = ["allow a" if default_allow else "deny a"]
    lines += [f"{verb} {kind} {_number(major)}:{_number(minor)} {access}"
              for kind, major, minor, access in exceptions]
    return [(DEVICE_FILTER, "\n".join(lines), field)]


def emulate(rules):
    """runc's devices emulator: ``rules`` is ``(allow, (type, major, minor, access), field)``
    in spec order; -> (default_allow, [(type, major, minor, access)] sorted as runc sorts)."""
    default_allow = False  # a new v2 filter denies what no rule allows
    exceptions = {}  # (type, major, minor) -> set of access letters
    for allow, (kind, major, minor, access), field in rules:
        if kind == "a":
            default_allow, exceptions = allow, {}
            continue
        meta = (kind, major, minor)
        if allow == default_allow:  # takes an exception away
            _check_no_hole(exceptions, meta, access, allow, field)
            left = exceptions.get(meta, set()) - set(access)
            if left:
                exceptions[meta] = left
            else:
                exceptions.pop(meta, None)
        else:
            exceptions[meta] = exceptions.get(meta, set()) | set(access)
    ordered = sorted(exceptions.items(), key=lambda e: (e[0][1], e[0][2], e[0][0]))
    return default_allow, [(*meta, _access(letters)) for meta, letters in ordered]


def _check_no_hole(exceptions, meta, access, allow, field):
    kind, major, minor = meta
    for wider in ((kind, -1, minor), (kind, major, -1), (kind, -1, -1)):
        overlap = set(access) & exceptions.get(wider, set())
        if wider != meta and overlap:
            shown = f"{kind} {_number(wider[1])}:{_number(wider[2])} {_access(exceptions[wider])}"
            raise SpecError(field, f"cannot {'allow' if allow else 'deny'} {_access(overlap)} "
                            f"of {kind} {_number(major)}:{_number(minor)} inside the earlier "
                            f"rule {shown}: the device cgroup cannot punch a hole in a wildcard "
                            "rule (as with runc)")

