"""Healthchecks, pure: docker's state machine (results in -> status, failing streak, log),
which check applies (the definition's over the image's), when the next one runs, the output
kept, and what ``kago ps`` adds to its STATUS."""

import pytest

from kago.manager import health as H
from kago.manager.definition import Definition, Healthcheck

S = H.NS
OK = {"ExitCode": 0, "Output": "ok"}
FAIL = {"ExitCode": 1, "Output": "no"}
TIMEOUT = {"ExitCode": -1, "Output": "Health check exceeded timeout (1s)"}


def run(results, conf=None, start_period=0, since=100.0):
    """Feed ``results`` (each checked ``since`` seconds after the start) from a fresh start."""
    conf = dict(conf or {})
    if start_period:
        conf["StartPeriod"] = start_period * S
    health = H.begin()
    for result in results:
        health = H.apply(health, dict(result), conf, since)
    return health["Status"], health["FailingStreak"]


STATE_ROWS = [
    ("nothing yet", [], {}, ("starting", 0)),
    ("one success", [OK], {}, ("healthy", 0)),
    ("one failure: starting, streak 1", [FAIL], {}, ("starting", 1)),
    ("three failures: unhealthy (docker's 3 retries)", [FAIL] * 3, {}, ("unhealthy", 3)),
    ("two failures with retries=2", [FAIL] * 2, {"Retries": 2}, ("unhealthy", 2)),
    ("retries=0 is docker's 3", [FAIL] * 2, {"Retries": 0}, ("starting", 2)),
    ("a success resets the streak", [FAIL, FAIL, OK], {}, ("healthy", 0)),
    ("healthy then failing stays healthy below retries", [OK, FAIL, FAIL], {},
     ("healthy", 2)),
    ("healthy then retries failures", [OK, FAIL, FAIL, FAIL], {}, ("unhealthy", 3)),
    ("unhealthy back to healthy", [FAIL] * 3 + [OK], {}, ("healthy", 0)),
    ("a timeout (-1) is a failure", [TIMEOUT] * 3, {}, ("unhealthy", 3)),
    ("exit status 2 is a failure", [{"ExitCode": 2}] * 3, {}, ("unhealthy", 3)),
    ("the streak goes on counting", [FAIL] * 5, {}, ("unhealthy", 5)),
]


@pytest.mark.parametrize("results,conf,expected", [r[1:] for r in STATE_ROWS],
                         ids=[r[0] for r in STATE_ROWS])
def test_state_machine(results, conf, expected):
    assert run(results, conf) == expected


def test_failures_in_the_start_period_do_not_count_while_starting():
    assert run([FAIL] * 5, start_period=10, since=3.0) == ("starting", 0)
    assert run([FAIL] * 3, start_period=10, since=10.0) == ("unhealthy", 3)


def test_failures_in_the_start_period_count_once_healthy():
    health = H.apply(H.begin(), dict(OK), {"StartPeriod": 10 * S}, 1.0)
    for _ in range(3):
        health = H.apply(health, dict(FAIL), {"StartPeriod": 10 * S}, 2.0)
    assert (health["Status"], health["FailingStreak"]) == ("unhealthy", 3)


def test_the_log_keeps_the_last_five_results_in_order():
    health = H.begin()
    for i in range(7):
        health = H.apply(health, {"ExitCode": 0, "Output": str(i)}, {}, 50.0)
    assert [e["Output"] for e in health["Log"]] == ["2", "3", "4", "5", "6"]


def test_begin_keeps_the_log_and_starts_again():
    before = {"Status": "unhealthy", "FailingStreak": 4, "Log": [FAIL]}
    assert H.begin(before) == {"Status": "starting", "FailingStreak": 0, "Log": [FAIL]}
    assert H.begin(None) == {"Status": "starting", "FailingStreak": 0, "Log": []}


def test_apply_does_not_change_its_input():
    health = H.begin()
    H.apply(health, dict(FAIL), {}, 100.0)
    assert health == H.begin()


NEXT_ROWS = [
    ("docker's default interval", {}, "starting", 100.0, 30.0),
    ("interval", {"Interval": 2 * S}, "healthy", 100.0, 2.0),
    ("start interval while starting in the start period",
     {"Interval": 60 * S, "StartPeriod": 30 * S, "StartInterval": 1 * S}, "starting", 5.0, 1.0),
    ("docker's 5 s start interval", {"StartPeriod": 30 * S}, "starting", 5.0, 5.0),
    ("after the start period: interval",
     {"Interval": 60 * S, "StartPeriod": 30 * S, "StartInterval": 1 * S}, "starting", 31.0,
     60.0),
    ("healthy in the start period: interval",
     {"Interval": 60 * S, "StartPeriod": 30 * S, "StartInterval": 1 * S}, "healthy", 5.0, 60.0),
]


@pytest.mark.parametrize("conf,status,since,expected", [r[1:] for r in NEXT_ROWS],
                         ids=[r[0] for r in NEXT_ROWS])
def test_next_check(conf, status, since, expected):
    assert H.next_in(conf, status, since) == expected


IMAGE = {"Healthcheck": {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 10 * S,
                         "Retries": 5}}

EFFECTIVE_ROWS = [
    ("none anywhere", None, {}, None),
    ("the image's", None, IMAGE, IMAGE["Healthcheck"]),
    ("the definition's", Healthcheck(("CMD", "true"), interval=2 * S), {},
     {"Test": ["CMD", "true"], "Interval": 2 * S}),
    ("the definition's command, the image's other fields",
     Healthcheck(("CMD", "true")), IMAGE,
     {"Test": ["CMD", "true"], "Interval": 10 * S, "Retries": 5}),
    ("the definition's interval, the image's command",
     Healthcheck(interval=1 * S), IMAGE,
     {"Test": ["CMD-SHELL", "wget -q localhost"], "Interval": 1 * S, "Retries": 5}),
    ("NONE over the image's", Healthcheck(("NONE",)), IMAGE,
     {"Test": ["NONE"], "Interval": 10 * S, "Retries": 5}),
]


@pytest.mark.parametrize("check,image,expected", [r[1:] for r in EFFECTIVE_ROWS],
                         ids=[r[0] for r in EFFECTIVE_ROWS])
def test_effective(check, image, expected):
    assert H.effective(Definition(image="i", healthcheck=check), image) == expected


PROBE_ROWS = [
    ("CMD", {"Test": ["CMD", "wget", "-q", "x"]}, {}, ["wget", "-q", "x"]),
    ("CMD-SHELL", {"Test": ["CMD-SHELL", "a && b"]}, {}, ["/bin/sh", "-c", "a && b"]),
    ("CMD-SHELL with the image's SHELL", {"Test": ["CMD-SHELL", "x"]},
     {"Shell": ["/bin/bash", "-ec"]}, ["/bin/bash", "-ec", "x"]),
    ("NONE", {"Test": ["NONE"]}, {}, None),
    ("empty", {"Test": []}, {}, None),
    ("unknown kind", {"Test": ["HTTP", "x"]}, {}, None),
    ("no config", None, {}, None),
]


@pytest.mark.parametrize("conf,image,expected", [r[1:] for r in PROBE_ROWS],
                         ids=[r[0] for r in PROBE_ROWS])
def test_probe(conf, image, expected):
    assert H.probe(conf, image) == expected


def test_output_is_cut_at_4096_bytes_with_dots():
    assert H.output(b"ok\n") == "ok\n"
    assert H.output(b"x" * 4096) == "x" * 4096
    assert H.output(b"x" * 5000) == "x" * 4096 + "..."
    assert H.output(b"x" * 10, truncated=True) == "x" * 10 + "..."
    assert H.output(b"\xff") == "\ufffd"


@pytest.mark.parametrize("health,text", [
    (None, ""), ({}, ""), ({"Status": "starting"}, " (health: starting)"),
    ({"Status": "healthy"}, " (healthy)"), ({"Status": "unhealthy"}, " (unhealthy)")])
def test_ps_suffix(health, text):
    assert H.suffix(health) == text


def test_ps_status_shows_health_only_while_running():
    from kago.manager.format import status_text
    record = {"state": {"started_at": 95.0, "finished_at": 99.0, "exit_code": 0,
                        "health": {"Status": "healthy"}}}
    assert status_text(record, "running", now=100.0) == "Up 5 seconds (healthy)"
    assert status_text(record, "exited", now=100.0) == "Exited (0) 1 second ago"


def test_at_start_resets_or_drops_the_health():
    from kago.manager.definition import to_json
    with_check = {"definition": to_json(Definition(image="i", healthcheck=Healthcheck(
        ("CMD", "true")))), "image_config": {},
        "state": {"health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [FAIL]}}}
    H.at_start(with_check)
    assert with_check["state"]["health"] == {"Status": "starting", "FailingStreak": 0,
                                             "Log": [FAIL]}
    disabled = {"definition": to_json(Definition(image="i", healthcheck=Healthcheck(
        ("NONE",)))), "image_config": IMAGE, "state": {"health": {"Status": "healthy"}}}
    H.at_start(disabled)
    assert "health" not in disabled["state"]
    from_image = {"definition": to_json(Definition(image="i")), "image_config": IMAGE,
                  "state": {}}
    H.at_start(from_image)
    assert from_image["state"]["health"]["Status"] == "starting"
