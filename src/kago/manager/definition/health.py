"""What users write for a healthcheck -> a Healthcheck part (parts.py); errors name the field.

    healthcheck_flags(cmd="curl -f localhost", interval="5s", ...)   # kago run's --health-*
    healthcheck({"test": "curl -f localhost", "interval": 5}, "healthcheck")   # DSL, Client

Durations are Go's (``30s``, ``1m30s``, ``500ms``: docker's flags and HEALTHCHECK) or a number
of seconds; they become nanoseconds, docker's unit. The rules are docker's: nothing negative,
a duration that is not 0 is at least 1 ms, ``--no-healthcheck`` with no ``--health-*``.
"""

import re

from kago.manager.definition.parts import Healthcheck
from kago.manager.errors import BadValue

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
MINIMUM = 1_000_000
"""docker's least non-zero duration (1 ms)."""

DURATIONS = ("interval", "timeout", "start_period", "start_interval")


def duration(value, field):
    """Go's time.ParseDuration, or a number of seconds -> nanoseconds (>= 0; 0 or >= 1 ms)."""
    if isinstance(value, bool):
        raise BadValue(field, f"invalid duration {value!r}: use 30s, 1m30s, 500ms or seconds")
    if isinstance(value, (int, float)):
        ns = int(round(value * 1_000_000_000))
    else:
        text = str(value).strip()
        sign = -1 if text.startswith("-") else 1
        body = text.lstrip("+-")
        pos, ns = 0, 0.0
        for m in _PART.finditer(body):
            if m.start() != pos:
                break
            ns += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if body == "0":
            pos = len(body)
        if not body or pos != len(body):
            raise BadValue(field, f'invalid duration "{text}": use 30s, 1m30s or 500ms')
        ns = sign * int(round(ns))
    if ns < 0:
        raise BadValue(field, "cannot be negative")
    if 0 < ns < MINIMUM:
        raise BadValue(field, "cannot be less than 1ms")
    return ns


def retries(value, field):
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadValue(field, f"invalid number {value!r}") from None
    if isinstance(value, bool) or n < 0:
        raise BadValue(field, "cannot be negative")
    return n


def test(value, field):
    """A command: a string (CMD-SHELL), a list (CMD), or docker's own ["CMD"/"CMD-SHELL"/
    "NONE", ...] form."""
    if isinstance(value, str):
        if not value.strip():
            raise BadValue(field, "an empty command")
        return ("CMD-SHELL", value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        if value[0] in ("CMD", "CMD-SHELL", "NONE"):
            if value[0] == "NONE":
                return ("NONE",)
            if len(value) < 2 or (value[0] == "CMD-SHELL" and len(value) != 2):
                raise BadValue(field, f"{value[0]} needs a command")
            return tuple(value)
        return ("CMD",) + tuple(value)
    raise BadValue(field, "use a command string (run by /bin/sh -c) or a list of arguments")


def healthcheck_flags(cmd=None, interval=None, timeout=None, start_period=None,
                      start_interval=None, retries_=None, none=False):
    """kago run's --health-* and --no-healthcheck -> a Healthcheck, or None (the image's)."""
    given = {"--health-cmd": cmd, "--health-interval": interval, "--health-timeout": timeout,
             "--health-start-period": start_period, "--health-start-interval": start_interval,
             "--health-retries": retries_}
    if none:
        if any(v is not None for v in given.values()):
            raise BadValue("--no-healthcheck", "conflicts with --health-* options")
        return Healthcheck(test=("NONE",))
    if all(v is None for v in given.values()):
        return None
    return Healthcheck(
        test=test(cmd, "--health-cmd") if cmd is not None else (),
        **{name: duration(value, flag) for name, (flag, value) in zip(
            DURATIONS, list(given.items())[1:5]) if value is not None},
        retries=retries(retries_, "--health-retries") if retries_ is not None else 0)


def healthcheck(value, field):
    """A definition file's or the Client's ``healthcheck``: None (the image's), False or
    "NONE" (none), a command (string or list), a dict {"test", "interval", "timeout",
    "start_period", "start_interval", "retries"} (durations as "5s" or seconds), or a
    Healthcheck."""
    if value is None:
        return None
    if value is False or value == "NONE" or value == ["NONE"] or value == ("NONE",):
        return Healthcheck(test=("NONE",))
    if isinstance(value, Healthcheck):
        value = {"test": list(value.test) or None, "retries": value.retries,
                 **{k: getattr(value, k) / 1e9 for k in DURATIONS}}
    if isinstance(value, (str, list, tuple)):
        return Healthcheck(test=test(value, field))
    if not isinstance(value, dict):
        raise BadValue(field, "use a command, a dict {test, interval, timeout, start_period, "
                              "start_interval, retries} or False")
    unknown = sorted(set(value) - {"test", *DURATIONS, "retries"})
    if unknown:
        raise BadValue(f"{field}.{unknown[0]}", "not a healthcheck field (test, interval, "
                                                 "timeout, start_period, start_interval, "
                                                 "retries)")
    return Healthcheck(
        test=test(value["test"], f"{field}.test") if value.get("test") is not None else (),
        **{k: duration(value[k], f"{field}.{k}") for k in DURATIONS
           if value.get(k) is not None},
        retries=retries(value["retries"], f"{field}.retries")
        if value.get("retries") is not None else 0)
