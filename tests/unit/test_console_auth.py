"""kago console's access rules (kago.console.auth): the pure decision for each kind of
request, the loopback rule, the listen address, the token file and the sessions."""

import os
import stat

import pytest

from kago.console import auth

OWN = "127.0.0.1:9090"


def decide(**kw):
    base = {"kind": "http", "method": "GET", "path": "/api/containers", "loopback": True,
            "authenticated": False, "origin": None, "host": OWN}
    base.update(kw)
    return auth.decide(**base)


def test_loopback_is_exactly_127_0_0_1_ipv6_one_and_localhost():
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert auth.is_loopback(host), host
    for host in ("127.0.0.2", "0.0.0.0", "::", "10.0.0.1", "example.com", ""):
        assert not auth.is_loopback(host), host


def test_host_headers():
    assert auth.host_is_loopback("127.0.0.1:9090") and auth.host_is_loopback("[::1]:9090")
    assert auth.host_is_loopback("localhost")
    assert not auth.host_is_loopback("evil.example:9090") and not auth.host_is_loopback(None)


def test_split_listen():
    assert auth.split_listen("127.0.0.1:9090") == ("127.0.0.1", 9090)
    assert auth.split_listen("[::1]:9091") == ("::1", 9091)
    assert auth.split_listen(":9092") == ("127.0.0.1", 9092)
    for bad in ("9090", "host:", "host:0", "host:70000", "host:x"):
        with pytest.raises(ValueError) as e:
            auth.split_listen(bad)
        assert bad in str(e.value) and "\n" not in str(e.value)


def test_reads_on_loopback_need_nothing_but_a_loopback_host():
    assert decide() is None
    assert decide(path="/") is None
    assert decide(host="rebound.example:9090")[0] == 401  # DNS rebinding
    assert decide(host="rebound.example:9090", authenticated=True) is None


def test_reads_off_loopback_need_the_token():
    assert decide(loopback=False)[0] == 401
    assert decide(loopback=False, path="/")[0] == 401
    assert decide(loopback=False, authenticated=True) is None
    for path in ("/login", "/static/app.js", "/api/login", "/api/whoami"):
        assert decide(loopback=False, path=path) is None, path


def test_changes_need_the_token_and_the_own_origin():
    for method in ("POST", "DELETE", "PUT"):
        assert decide(method=method)[0] == 401
        assert decide(method=method, authenticated=True) is None  # no Origin: an API client
        assert decide(method=method, authenticated=True, origin=f"http://{OWN}") is None
        status, why = decide(method=method, authenticated=True, origin="http://evil.example")
        assert status == 403 and "evil.example" in why
    assert decide(method="POST", path="/api/login", origin="http://evil.example")[0] == 403
    assert decide(method="POST", path="/api/login") is None


def test_websockets_need_the_token_and_an_origin():
    ws = {"kind": "websocket", "path": "/api/containers/x/terminal"}
    assert decide(**ws)[0] == 401
    assert decide(**ws, authenticated=True)[0] == 403  # no Origin
    assert decide(**ws, authenticated=True, origin="http://evil.example")[0] == 403
    assert decide(**ws, authenticated=True, origin=f"http://{OWN}") is None


def test_token_is_made_once_0600(tmp_path):
    token, made = auth.load_or_make_token(str(tmp_path))
    path = auth.token_path(str(tmp_path))
    assert made and len(token) >= 40 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert auth.load_or_make_token(str(tmp_path)) == (token, False)


def test_a_token_that_cannot_be_made_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(auth.TokenError) as e:
        auth.load_or_make_token(str(blocker))
    assert str(blocker) in str(e.value) and "\n" not in str(e.value)


def test_refusing_a_public_listen_without_a_token(tmp_path):
    from kago.console.server import StartError, prepare
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StartError) as e:
        prepare(str(blocker), "0.0.0.0:9090")
    assert "refusing" in str(e.value) and "0.0.0.0" in str(e.value)
    host, port, token, made = prepare(str(tmp_path), "0.0.0.0:9090")
    assert (host, port, made) == ("0.0.0.0", 9090, True) and token


def test_sessions_and_cookies():
    s = auth.Sessions()
    sid = s.new()
    assert s.valid(sid) and not s.valid("other") and not s.valid(None)
    s.end(sid)
    assert not s.valid(sid)
    assert auth.cookie_value(f"a=1; {auth.COOKIE}=xyz; b=2") == "xyz"
    assert auth.cookie_value("a=1") is None and auth.cookie_value(None) is None
