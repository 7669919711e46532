"""docker's output shapes: durations, sizes, status words, tables and --format templates."""

import pytest

from kago.manager import format as F


@pytest.mark.parametrize("seconds,text", [
    (0.2, "Less than a second"), (1, "1 second"), (42, "42 seconds"), (61, "About a minute"),
    (600, "10 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"),
    (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration(seconds, text):
    assert F.human_duration(seconds) == text


def test_sizes():
    assert F.human_size(1983000) == "1.983MB"
    assert F.human_size(512) == "512B"
    assert F.binary_size(208 * 1024) == "208KiB"
    assert F.binary_size(3 * (1 << 30)) == "3GiB"


def test_status_words():
    now = 1000.0
    rec = {"state": {"started_at": 990.0, "finished_at": 995.0, "exit_code": 3}}
    assert F.status_text(rec, "running", now) == "Up 10 seconds"
    assert F.status_text(rec, "paused", now) == "Up 10 seconds (Paused)"
    assert F.status_text(rec, "exited", now) == "Exited (3) 5 seconds ago"
    assert F.status_text(rec, "restarting", now) == "Restarting (3) 5 seconds ago"
    assert F.status_text({"state": {}}, "created", now) == "Created"
    assert F.status_text({"state": {"exit_code": None, "finished_at": 999}}, "exited",
                         now) == "Exited (?) 1 second ago"


def test_templates():
    doc = {"Name": "/web", "State": {"Pid": 42, "Running": True},
           "Config": {"Env": ["A=1"], "Labels": {"k": "v"}}}
    assert F.render("{{.Name}} {{.State.Pid}}", doc) == "/web 42"
    assert F.render("{{.State.Running}}", doc) == "true"
    assert F.render("{{json .Config.Env}}", doc) == '["A=1"]'
    assert F.render('{{index .Config.Labels "k"}}', doc) == "v"
    assert F.render("{{upper .Name}}\\t{{len .Config.Env}}", doc) == "/WEB\t1"
    with pytest.raises(F.TemplateError):
        F.render("{{.Nope}}", doc)
    with pytest.raises(F.TemplateError):
        F.render("{{.Name", doc)


def test_table_format_names_columns_like_docker():
    rows = [{"ID": "abc", "Names": "web", "Status": "Up 1 second"}]
    lines = F.formatted("table {{.ID}}\\t{{.Names}}", rows, ())
    assert lines[0].split("   ") == ["CONTAINER ID", "NAMES"]
    assert lines[1].split() == ["abc", "web"]
    expected = '{"ID": "abc", "Names": "web", "Status": "Up 1 second"}'
    assert F.formatted("json", rows, ()) == [expected]
    assert F.formatted("{{.Names}}", rows, ()) == ["web"]
    assert F.formatted("table", rows, ("ID",), {"ID": "IMAGE ID"})[0] == "IMAGE ID"
