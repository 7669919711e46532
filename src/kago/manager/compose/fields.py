"""A service's own values -> what the Definition builder takes: commands, environment
(and env_file), durations, limits, ulimits, healthcheck, build; and the helpers that turn a
BadValue into a ComposeError at the value's line. Pure.
"""

import os
import shlex
from dataclasses import dataclass

from kago.manager.compose.errors import ComposeError
from kago.manager.errors import BadValue


@dataclass(frozen=True)
class Build:
    context: str                    # absolute
    dockerfile: str                 # as given (relative to the context) or absolute
    args: tuple[tuple[str, str], ...] = ()
    target: str = ""


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]           # ("CMD", ...), ("CMD-SHELL", "..."), ("NONE",)
    interval: float = 30.0          # seconds
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def message(e):
    """A BadValue's message without the field it names (ours names the compose path)."""
    text = str(e)
    prefix = f"{e.field}: "
    return text[len(prefix):] if e.field and text.startswith(prefix) else text


def has_field(name):
    from dataclasses import fields

    from kago.manager.definition import Definition
    return any(f.name == name for f in fields(Definition))


def has_health_field():
    return has_field("healthcheck")


def health_option(hc):
    """compose's healthcheck -> the Definition builder's option (its durations are Go's,
    as compose's)."""
    if hc.get("disable"):
        return False
    return {k: v for k, v in hc.items() if k in ("test", "interval", "timeout", "retries",
                                                  "start_period", "start_interval")}


def checked(project, path, parse, *args):
    try:
        return parse(*args, ".".join(map(str, path)))
    except BadValue as e:
        raise project.error(path, message(e)) from None


def list_of(s, key):
    value = s.svc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise s.error(key, "must be a list")
    return value


def boolean(s, key, value):
    if not isinstance(value, bool):
        raise s.error(key, f"{value!r} is not true or false")
    return value


def argv(s, key, value):
    """compose's command/entrypoint: a list, or a string split as a shell would (not run by
    a shell); an empty one clears the image's."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as e:
            raise s.error(key, f"{value!r}: {e}") from None
    if isinstance(value, list) and all(isinstance(a, (str, int, float)) for a in value):
        return [str(a) for a in value]
    raise s.error(key, "a string or a list of strings")


def key_values(s, key):
    """A list of K=V (or K) or a mapping -> {K: V}."""
    value = s.svc.get(key)
    if isinstance(value, dict):
        return {str(k): "" if v is None else scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    raise s.error(key, "a list of KEY=VALUE or a mapping")


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def environment(s):
    """env_file values, then environment over them; a name without a value takes the
    project environment's (and is left out when unset there)."""
    env = {}
    files = s.svc.get("env_file")
    if files is not None:
        for i, item in enumerate([files] if isinstance(files, (str, dict)) else files):
            required = True
            if isinstance(item, dict):
                required = item.get("required", True)
                item = item.get("path")
            path = os.path.join(s.project.directory, os.path.expanduser(str(item)))
            if not os.path.exists(path) and not required:
                continue
            from kago.manager.compose import yamlfile
            file, line = s.project.where(s.base + ("env_file",))
            try:
                env.update(yamlfile.read_env_file(path, str(item)))
            except ComposeError as e:
                raise ComposeError(str(e).replace(f"{item}: ", "", 1),
                                   file, line, f"services.{s.name}.env_file") from None
    value = s.svc.get("environment")
    if value is None:
        pass
    elif isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                if k in s.project.env:
                    env[str(k)] = s.project.env[k]
            else:
                env[str(k)] = scalar(v)
    elif isinstance(value, list):
        for item in value:
            k, eq, v = str(item).partition("=")
            if eq:
                env[k] = v
            elif k in s.project.env:
                env[k] = s.project.env[k]
    else:
        raise s.error("environment", "a list of KEY=VALUE or a mapping")
    out = []
    for k, v in env.items():
        if not k or any(c.isspace() for c in k):
            raise s.error(("environment", k), f'invalid environment variable "{k}"')
        out.append(f"{k}={v}")
    return out


def duration(s, key, value):
    """compose's durations: 10s, 1m30s, 500ms, 1h; a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text, total, number = str(value).strip(), 0.0, ""
    i = 0
    if not text:
        raise s.error(key, f'"{value}" is not a duration (10s, 1m30s, 500ms)')
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = next((u for u in ("us", "ms", "h", "m", "s") if text.startswith(u, i)), None)
        if unit is None or not number:
            raise s.error(key, f'"{value}" is not a duration (10s, 1m30s, 500ms)')
        try:
            total += float(number) * _UNITS[unit]
        except ValueError:
            raise s.error(key, f'"{value}" is not a duration (10s, 1m30s, 500ms)') from None
        number, i = "", i + len(unit)
    if number:
        raise s.error(key, f'"{value}" is not a duration: give a unit (10s, 1m30s, 500ms)')
    return total


def ulimits(s):
    value = s.svc.get("ulimits")
    if not isinstance(value, dict):
        raise s.error("ulimits", "a mapping: nofile: {soft: N, hard: N} or nproc: N")
    out = {}
    for name, spec in value.items():
        if isinstance(spec, dict):
            if set(spec) - {"soft", "hard"} or "soft" not in spec or "hard" not in spec:
                raise s.error(("ulimits", name), "give soft: and hard:")
            out[name] = (spec["soft"], spec["hard"])
        else:
            out[name] = spec
    return out


def limits(s):
    opts, svc = s.opts, s.svc
    deploy = svc.get("deploy")
    limits = {}
    if deploy is not None:
        if not isinstance(deploy, dict):
            raise s.error("deploy", "must be a mapping")
        for k in deploy:
            if k != "resources":
                raise s.error(("deploy", k), "not supported by kago compose (only "
                                             "deploy.resources.limits)")
        resources = deploy.get("resources") or {}
        for k in resources:
            if k != "limits":
                raise s.error(("deploy", "resources", k), "not supported by kago compose "
                                                          "(only deploy.resources.limits)")
        limits = resources.get("limits") or {}
        for k in limits:
            if k not in ("cpus", "memory", "pids"):
                raise s.error(("deploy", "resources", "limits", k),
                              "not supported: use cpus, memory or pids")
    if "cpus" in limits or "cpus" in svc:
        opts["cpus"] = limits.get("cpus", svc.get("cpus"))
    if "memory" in limits or "mem_limit" in svc:
        opts["memory"] = limits.get("memory", svc.get("mem_limit"))
    if "pids" in limits or "pids_limit" in svc:
        opts["pids_limit"] = limits.get("pids", svc.get("pids_limit"))


def healthcheck(s):
    hc = s.svc.get("healthcheck")
    if hc is None:
        return None
    if not isinstance(hc, dict):
        raise s.error("healthcheck", "must be a mapping")
    for k in hc:
        if k not in ("test", "interval", "timeout", "retries", "start_period", "disable",
                     "start_interval"):
            raise s.error(("healthcheck", k), "not supported by kago compose")
    if hc.get("disable"):
        return Healthcheck(("NONE",))
    test = hc.get("test")
    if isinstance(test, str):
        test = ("CMD-SHELL", test)
    elif isinstance(test, list) and test and all(isinstance(t, str) for t in test):
        if test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise s.error(("healthcheck", "test"), 'a list starts with "CMD", "CMD-SHELL" '
                                                   'or "NONE"')
        test = tuple(test)
    else:
        raise s.error(("healthcheck", "test"), 'a string or a list ["CMD", ...]')
    values = {}
    for k in ("interval", "timeout", "start_period"):
        if k in hc:
            values[k] = duration(s, ("healthcheck", k), hc[k])
    if "retries" in hc:
        r = hc["retries"]
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise s.error(("healthcheck", "retries"), f"{r!r}: a whole number >= 1")
        values["retries"] = r
    return Healthcheck(test, **values)


def build(s):
    value = s.svc.get("build")
    if value is None:
        return None
    if isinstance(value, str):
        value = {"context": value}
    if not isinstance(value, dict):
        raise s.error("build", "a context directory or a mapping (context, dockerfile, "
                               "args, target)")
    for k in value:
        if k not in ("context", "dockerfile", "args", "target") and not k.startswith("x-"):
            raise s.error(("build", k), "not supported by kago compose (context, dockerfile, "
                                        "args, target)")
    context = os.path.normpath(os.path.join(s.project.directory,
                                            os.path.expanduser(str(value.get("context", ".")))))
    args = value.get("args") or {}
    if isinstance(args, list):
        args = dict(str(a).partition("=")[::2] for a in args)
    if not isinstance(args, dict):
        raise s.error(("build", "args"), "a list of KEY=VALUE or a mapping")
    return Build(context, str(value.get("dockerfile") or ""),
                 tuple((str(k), "" if v is None else scalar(v)) for k, v in args.items()),
                 str(value.get("target") or ""))
