"""Healthchecks as docker keeps them, pure: which check applies, when it runs next, and what a
result does to the container's health (``State.Health``: Status, FailingStreak, Log).

    conf = effective(definition, image_config)  # docker's Config.Healthcheck, or None
    check = probe(conf, image_config)           # the argv to exec, or None (no check to run)
    health = begin(previous)                    # at each start: "starting", streak 0
    health = apply(health, result, conf, since_start)   # a result in -> the new health
    seconds = next_in(conf, health["Status"], since_start)

The supervisor runs the checks (supervisor/health.py) and stores ``health`` in the record's
state; ``kago ps`` and ``inspect`` read it. The rules are dockerd's (daemon/health.go): the
first check one interval after the start (``start_interval`` while starting within
``start_period``), exit status 0 is healthy and anything else a failure, a failure in the start
period before any success does not count, ``retries`` failures in a row make it unhealthy, the
last 5 results are kept with their output cut at 4096 bytes ("..." marks the cut), a check past
its timeout fails with exit code -1.
"""

NS = 1_000_000_000
DEFAULT_INTERVAL = 30 * NS
DEFAULT_TIMEOUT = 30 * NS
DEFAULT_START_INTERVAL = 5 * NS
DEFAULT_RETRIES = 3
MAX_LOG = 5
MAX_OUTPUT = 4096
STATUSES = ("starting", "healthy", "unhealthy")

_FIELDS = (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period"),
           ("StartInterval", "start_interval"), ("Retries", "retries"))


def effective(definition, image_config):
    """docker's Config.Healthcheck: the definition's, each field it leaves at 0 (and the
    command, when it gives none) taken from the image's; None when neither has one."""
    image = (image_config or {}).get("Healthcheck") or None
    h = definition.healthcheck
    if h is None:
        return dict(image) if image else None
    conf = {"Test": list(h.test)}
    for key, name in _FIELDS:
        conf[key] = getattr(h, name)
    if image:
        if not conf["Test"]:
            conf["Test"] = list(image.get("Test") or ())
        for key, _name in _FIELDS:
            if not conf[key]:
                conf[key] = image.get(key) or 0
    return {k: v for k, v in conf.items() if v or k == "Test"}


def probe(conf, image_config=None):
    """The command a check execs in the container, or None when there is nothing to run (no
    healthcheck, NONE, an empty or unknown test)."""
    test = list((conf or {}).get("Test") or ())
    if len(test) < 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    if test[0] == "CMD":
        return test[1:]
    shell = list((image_config or {}).get("Shell") or ()) or ["/bin/sh", "-c"]
    return shell + test[1:2]


def timeout(conf):
    return (conf.get("Timeout") or DEFAULT_TIMEOUT) / NS


def begin(previous=None):
    """The health at a (re)start: starting, no failure counted; the log of earlier runs kept."""
    return {"Status": "starting", "FailingStreak": 0,
            "Log": list((previous or {}).get("Log") or ())}


def next_in(conf, status, since_start):
    """Seconds until the next check: ``start_interval`` while starting within the start
    period, else ``interval``."""
    interval = (conf.get("Interval") or DEFAULT_INTERVAL) / NS
    start_period = (conf.get("StartPeriod") or 0) / NS
    if since_start < start_period and status == "starting":
        return (conf.get("StartInterval") or DEFAULT_START_INTERVAL) / NS
    return interval


def output(data, truncated=False):
    """A check's output as docker stores it: at most 4096 bytes, "..." when more came."""
    cut = truncated or len(data) > MAX_OUTPUT
    return data[:MAX_OUTPUT].decode(errors="replace") + ("..." if cut else "")


def apply(health, result, conf, since_start):
    """The health after ``result`` ({"Start", "End", "ExitCode", "Output"}, docker's Log
    entry) of a check that began ``since_start`` seconds after the container started."""
    retries = conf.get("Retries") or DEFAULT_RETRIES
    status = health.get("Status", "starting")
    streak = health.get("FailingStreak", 0)
    log = (list(health.get("Log") or ()) + [result])[-MAX_LOG:]
    if result.get("ExitCode") == 0:
        status, streak = "healthy", 0
    elif not (status == "starting" and since_start < (conf.get("StartPeriod") or 0) / NS):
        streak += 1
        if streak >= retries:
            status = "unhealthy"
    return {"Status": status, "FailingStreak": streak, "Log": log}


def suffix(health):
    """What ``kago ps`` adds to "Up 5 seconds": " (healthy)", " (health: starting)"..."""
    status = (health or {}).get("Status")
    if not status:
        return ""
    return " (health: starting)" if status == "starting" else f" ({status})"


def at_start(record, definition=None):
    """Record edit at a start: a fresh ``state.health`` when a check applies, none otherwise.
    ``definition``: the record's, when the caller has it (or a reader of its fields)."""
    if definition is None:
        from kago.manager.definition import of
        definition = of(record)
    state = record["state"]
    if probe(effective(definition, record.get("image_config")),
             record.get("image_config")) is None:
        state.pop("health", None)
    else:
        state["health"] = begin(state.get("health"))
