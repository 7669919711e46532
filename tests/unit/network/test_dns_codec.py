"""The resolver's DNS codec: queries read (names, compression, EDNS), replies written and
truncated, malformed input refused with CodecError."""

import socket
import struct

import pytest

from kago.network.dns import codec


def test_query_round_trip_lower_cases_the_name():
    q = codec.parse_query(codec.make_query("Db.Example", codec.AAAA, id_=7))
    assert (q.id, q.name, q.qtype, q.qclass, q.edns) == (7, "db.example", codec.AAAA, codec.IN,
                                                         None)
    assert q.udp_limit() == 512


def test_edns_size_is_read_and_capped():
    q = codec.parse_query(codec.make_query("db", edns=4096))
    assert q.edns == 4096 and q.udp_limit() == codec.EDNS_LIMIT
    assert codec.parse_query(codec.make_query("db", edns=100)).udp_limit() == 512


def test_reply_with_a_records():
    q = codec.parse_query(codec.make_query("db", id_=99))
    msg = codec.reply(q, answers=[(codec.A, 5, socket.inet_aton("10.0.0.2"))], authoritative=True)
    id_, flags, qd, an, ns, ar = codec.HEADER.unpack_from(msg)
    assert (id_, qd, an, ns, ar) == (99, 1, 1, 0, 0)
    assert flags & codec.QR and flags & codec.AA and flags & codec.RD and not flags & codec.TC
    assert codec.parse_answers(msg) == [("db", codec.A, socket.inet_aton("10.0.0.2"))]


def test_reply_keeps_edns_when_asked_with_it():
    q = codec.parse_query(codec.make_query("db", edns=1232))
    msg = codec.reply(q)
    assert codec.HEADER.unpack_from(msg)[5] == 1


def test_big_udp_reply_is_truncated_to_header_and_question():
    q = codec.parse_query(codec.make_query("many"))
    answers = [(codec.A, 5, socket.inet_aton(f"10.0.{i // 250}.{i % 250}")) for i in range(40)]
    full = codec.reply(q, answers=answers)
    assert len(full) > 512
    cut = codec.truncate(full, q.udp_limit())
    flags, qd, an = codec.HEADER.unpack_from(cut)[1:4]
    assert flags & codec.TC and (qd, an) == (1, 0)
    assert cut[12:] == q.question
    assert codec.truncate(full, 65535) == full
    assert codec.reply(q, answers=answers, limit=512) == cut


def test_compression_pointer_is_followed():
    # a response: question "db", answer name as a pointer to offset 12
    q = codec.parse_query(codec.make_query("db"))
    msg = codec.reply(q, answers=[(codec.A, 5, b"\x0a\x00\x00\x02")])
    assert codec.read_name(msg, len(msg) - 16)[0] == "db"


@pytest.mark.parametrize("data", [
    b"",
    b"\x00\x01\x00\x00\x00\x01",                                    # short header
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x05ab",           # label past the end
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # pointer loop
    struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01",      # 2 questions
    struct.pack("!HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",  # a response
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 1) + b"\x00\x00\x01\x00\x01\x00",  # cut OPT
    struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x40abc\x00\x00\x01\x00\x01",  # label type
])
def test_malformed_queries_raise_codec_error(data):
    with pytest.raises(codec.CodecError):
        codec.parse_query(data)


def test_overlong_name_is_refused():
    with pytest.raises(codec.CodecError):
        codec.encode_name("a" * 64)
    data = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + (b"\x3f" + b"a" * 63) * 5 + b"\x00" \
        + b"\x00\x01\x00\x01"
    with pytest.raises(codec.CodecError, match="255"):
        codec.parse_query(data)


def test_error_reply_keeps_id_and_never_answers_a_response():
    query = codec.make_query("db", id_=0xBEEF)
    msg = codec.error_reply(query, codec.REFUSED)
    id_, flags = struct.unpack_from("!HH", msg)
    assert id_ == 0xBEEF and flags & 0xF == codec.REFUSED and flags & codec.QR
    assert codec.error_reply(msg, codec.FORMERR) is None
    assert codec.error_reply(b"\x01", codec.FORMERR) is None


def test_forwarded_reply_id_swap_and_match():
    q = codec.parse_query(codec.make_query("example.org", id_=1))
    upstream = codec.with_id(codec.reply(q, answers=[(codec.A, 60, b"\x01\x02\x03\x04")]), 555)
    assert codec.response_id_and_question(upstream) == (555, q.question)
    assert struct.unpack_from("!H", codec.with_id(upstream, 1))[0] == 1
    with pytest.raises(codec.CodecError):
        codec.response_id_and_question(codec.make_query("x"))


def test_ptr_name():
    assert codec.ptr_name("10.89.0.2") == "2.0.89.10.in-addr.arpa"
