"""The resolver process itself (started as kago starts it, listening on a loopback address):
local names over UDP and TCP, forwarding to a fake upstream, REFUSED to outsiders,
truncation, the table re-read on change, and its stop."""

import os
import random
import signal
import struct
import time

import pytest

from kago.network.dns import codec, control, table
from kago.network.dns.testing import FakeUpstream, addresses, ask, rcode


@pytest.fixture(name="resolver")
def resolver_fixture(tmp_path):
    upstream = FakeUpstream()
    listen = f"127.{random.randrange(1, 250)}.{random.randrange(1, 250)}.1"
    port = random.randrange(20000, 60000)
    root = str(tmp_path)
    os.makedirs(control.dns_dir(root))
    record = {"name": "t", "subnet": "127.0.0.0/8", "gateway": listen}

    def write(members):
        t = table.build(record, members, upstream=[("127.0.0.1", upstream.port)])
        t["listen"] = [listen, port]
        table.write(control.table_path(root, "t"), t)

    write([{"cid": "c1", "ipv4": "10.0.0.2", "hostname": "db", "aliases": ["Alias"]}])
    pid = control.start(root, "t")
    yield {"server": (listen, port), "write": write, "pid": pid, "root": root,
           "upstream": upstream}
    control.stop(root, "t")
    upstream.close()
    assert control.start_time(pid) is None


def test_local_names_udp_and_tcp(resolver):
    for tcp in (False, True):
        reply = ask(resolver["server"], "DB", tcp=tcp)
        assert rcode(reply) == codec.NOERROR and addresses(reply) == ["10.0.0.2"]
        assert addresses(ask(resolver["server"], "alias", tcp=tcp)) == ["10.0.0.2"]
    aaaa = ask(resolver["server"], "db", codec.AAAA)
    assert rcode(aaaa) == codec.NOERROR and codec.parse_answers(aaaa) == []
    ptr = ask(resolver["server"], "2.0.0.10.in-addr.arpa", codec.PTR)
    assert codec.parse_answers(ptr)[0][2] == codec.encode_name("db")
    assert resolver["upstream"].asked == []


def test_unknown_names_are_forwarded(resolver):
    for tcp in (False, True):
        reply = ask(resolver["server"], "example.org", tcp=tcp)
        assert addresses(reply) == ["192.0.2.77"]
        assert struct.unpack_from("!H", reply)[0] == 0x1234   # the client's ID back
    assert resolver["upstream"].asked == ["example.org", "example.org"]


def test_outsiders_are_refused(resolver):
    resolver["write"]([{"cid": "c1", "ipv4": "10.0.0.2", "hostname": "db"}])
    t = table.load(control.table_path(resolver["root"], "t"))
    t["subnet"] = "127.1.0.0/16" if not resolver["server"][0].startswith("127.1.") \
        else "127.2.0.0/16"
    table.write(control.table_path(resolver["root"], "t"), t)
    assert rcode(ask(resolver["server"], "db")) == codec.REFUSED
    assert resolver["upstream"].asked == []


def test_big_answer_sets_tc_over_udp_and_comes_whole_over_tcp(resolver):
    resolver["write"]([{"cid": f"c{i}", "ipv4": f"10.0.0.{i + 2}", "aliases": ["many"]}
                       for i in range(40)])
    udp = ask(resolver["server"], "many")
    assert struct.unpack_from("!H", udp, 2)[0] & codec.TC and codec.parse_answers(udp) == []
    assert len(addresses(ask(resolver["server"], "many", tcp=True))) == 40
    assert len(addresses(ask(resolver["server"], "many", edns=1232))) == 40


def test_table_changes_are_seen_at_once_and_on_sighup(resolver):
    resolver["write"]([{"cid": "c2", "ipv4": "10.0.0.9", "hostname": "web"}])
    assert addresses(ask(resolver["server"], "web")) == ["10.0.0.9"]
    os.kill(resolver["pid"], signal.SIGHUP)
    reply = ask(resolver["server"], "db")                    # gone: forwarded, unknown there
    assert rcode(reply) == codec.NXDOMAIN and resolver["upstream"].asked == ["db"]


def test_no_upstream_is_servfail_and_malformed_is_formerr(resolver):
    t = table.load(control.table_path(resolver["root"], "t"))
    t["upstream"] = []
    table.write(control.table_path(resolver["root"], "t"), t)
    assert rcode(ask(resolver["server"], "example.org")) == codec.SERVFAIL
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.connect(resolver["server"])
        s.send(struct.pack("!HHHHHH", 5, 0, 1, 0, 0, 0) + b"\x05ab")
        assert rcode(s.recv(512)) == codec.FORMERR


def test_it_exits_when_its_table_is_gone(resolver):
    os.unlink(control.table_path(resolver["root"], "t"))
    deadline = time.monotonic() + 10
    while control.start_time(resolver["pid"]) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert control.start_time(resolver["pid"]) is None


def test_start_reports_why_it_cannot_listen(tmp_path):
    root = str(tmp_path)
    os.makedirs(control.dns_dir(root))
    t = table.build({"name": "x", "subnet": "127.0.0.0/8", "gateway": "127.0.0.1"}, [])
    t["listen"] = ["203.0.113.300", 53]
    table.write(control.table_path(root, "x"), t)
    with pytest.raises(control.ResolverError, match="dns resolver of network x: .*203.0.113.300"):
        control.start(root, "x")
    assert control.strays(root) == []


def test_one_thread_and_neither_networks_nor_pyroute2_nor_tls(resolver):
    for tcp in (False, True):                  # forwarding (TCP too) starts no thread
        assert addresses(ask(resolver["server"], "example.org", tcp=tcp)) == ["192.0.2.77"]
    assert os.listdir(f"/proc/{resolver['pid']}/task") == [str(resolver["pid"])]
    with open(f"/proc/{resolver['pid']}/maps") as f:
        maps = f.read()
    assert "libssl" not in maps and "_ssl" not in maps
    import subprocess
    import sys
    src = os.path.dirname(os.path.dirname(os.path.dirname(control.__file__)))
    out = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ssl'] = None; "
         "import kago.cli.resolver, kago.network.dns.daemon, kago.network.dns.server; "
         "print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, env={"PYTHONPATH": os.path.dirname(src)})
    loaded = set(out.stdout.split())
    assert {m for m in loaded if m.startswith("kago.")} <= {
        "kago.cli", "kago.cli.resolver", "kago.network", "kago.network.dns",
        "kago.network.dns.daemon",
        "kago.network.dns.codec", "kago.network.dns.proc", "kago.network.dns.server",
        "kago.network.dns.table", "kago.version"}
    assert not {m for m in loaded if m.startswith("pyroute2")}


def test_sighup_right_after_start_does_not_kill_it(resolver):
    control.stop(resolver["root"], "t")
    resolver["write"]([{"cid": "c1", "ipv4": "10.0.0.2", "hostname": "db"}])
    pid = control.start(resolver["root"], "t")
    os.kill(pid, signal.SIGHUP)                 # a second attach's, while it is still loading
    assert addresses(ask(resolver["server"], "db")) == ["10.0.0.2"]
    assert control.alive(control.read_record(resolver["root"], "t"))
    resolver["pid"] = pid


def set_upstream(resolver, servers):
    t = table.load(control.table_path(resolver["root"], "t"))
    t["upstream"] = [list(s) for s in servers]
    table.write(control.table_path(resolver["root"], "t"), t)


def test_a_silent_upstream_is_skipped_after_its_attempt(resolver):
    import socket
    from kago.network.dns import server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        set_upstream(resolver, [silent.getsockname(), ("127.0.0.1", resolver["upstream"].port)])
        t0 = time.monotonic()
        reply = ask(resolver["server"], "example.org", timeout=server.DEADLINE + 2)
        took = time.monotonic() - t0
    assert addresses(reply) == ["192.0.2.77"]
    assert server.ATTEMPT - 0.2 < took < server.DEADLINE


def test_it_never_forwards_to_itself(resolver):
    set_upstream(resolver, [resolver["server"]])
    t0 = time.monotonic()
    assert rcode(ask(resolver["server"], "example.org")) == codec.SERVFAIL
    assert time.monotonic() - t0 < 1


def test_forwards_in_flight_are_capped(resolver):
    import socket
    from kago.network.dns import server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        silent.bind(("127.0.0.1", 0))
        set_upstream(resolver, [silent.getsockname()])
        client.settimeout(server.DEADLINE + 2)
        client.connect(resolver["server"])
        for i in range(server.MAX_INFLIGHT + 1):
            client.send(codec.make_query(f"n{i}.example", id_=i))
        t0 = time.monotonic()
        first = client.recv(512)                # the one over the cap, at once
        assert time.monotonic() - t0 < 1
        assert rcode(first) == codec.SERVFAIL
        assert struct.unpack_from("!H", first)[0] == server.MAX_INFLIGHT
        for _ in range(server.MAX_INFLIGHT):    # the others when their attempt timed out
            assert rcode(client.recv(512)) == codec.SERVFAIL


def test_tcp_queries_pipelined_on_one_connection(resolver):
    import socket
    from kago.network.dns.testing import _exactly
    with socket.create_connection(resolver["server"], timeout=5) as s:
        queries = [codec.make_query("db", id_=1), codec.make_query("example.org", id_=2),
                   codec.make_query("alias", id_=3)]
        s.sendall(b"".join(struct.pack("!H", len(q)) + q for q in queries))
        replies = {}
        for _ in queries:
            data = _exactly(s, struct.unpack("!H", _exactly(s, 2))[0])
            replies[struct.unpack_from("!H", data)[0]] = addresses(data)
    assert replies == {1: ["10.0.0.2"], 2: ["192.0.2.77"], 3: ["10.0.0.2"]}


def test_sighup_rereads_even_when_the_stamp_looks_the_same(resolver):
    path = control.table_path(resolver["root"], "t")
    # answered from the table as written: the resolver has read it (it reads it after it
    # says ready, so a change made before that would be seen without any SIGHUP)
    assert addresses(ask(resolver["server"], "db")) == ["10.0.0.2"]
    st = os.stat(path)
    with open(path, "r+") as f:                 # same inode, size and mtime: "db" -> "dc"
        text = f.read().replace('"db"', '"dc"')
        f.seek(0)
        f.write(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert rcode(ask(resolver["server"], "dc")) == codec.NXDOMAIN      # not seen yet
    os.kill(resolver["pid"], signal.SIGHUP)
    deadline = time.monotonic() + 5
    while addresses(ask(resolver["server"], "dc")) != ["10.0.0.2"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
