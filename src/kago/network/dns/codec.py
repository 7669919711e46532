"""The DNS wire format (RFC 1035), as much as the resolver needs: a query's header, question
and EDNS(0) buffer size (RFC 6891) read; answers of A, AAAA and PTR records written; a reply
too big for the client's UDP limit cut down to its header and question with TC set.

Forwarded messages are never re-encoded: only their 16-bit ID is swapped (``with_id``).
Pure functions over bytes; every malformed input raises ``CodecError``.
"""

import struct

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, OPT, ANY = 1, 2, 5, 6, 12, 15, 16, 28, 41, 255
IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
HEADER = struct.Struct("!HHHHHH")
UDP_LIMIT = 512             # without EDNS (RFC 1035 4.2.1)
EDNS_LIMIT = 1232           # the most we send over UDP with EDNS (DNS flag day 2020)
MAX_NAME = 255
MAX_POINTERS = 64


class CodecError(ValueError):
    """A message that is not well-formed DNS."""


class Query:
    """A parsed query: ``name`` lower-case without the final dot ("" for the root)."""

    __slots__ = ("id", "flags", "name", "qtype", "qclass", "question", "edns", "raw")

    def __init__(self, id, flags, name, qtype, qclass, question, edns, raw):
        self.id = id
        self.flags = flags
        self.name = name
        self.qtype = qtype
        self.qclass = qclass
        self.question = question   # the question's bytes as they came (echoed in replies)
        self.edns = edns           # the client's EDNS UDP size, or None without an OPT record
        self.raw = raw

    @property
    def opcode(self):
        return (self.flags >> 11) & 0xF

    def udp_limit(self):
        """How big a UDP reply the client takes."""
        if self.edns is None:
            return UDP_LIMIT
        return max(UDP_LIMIT, min(self.edns, EDNS_LIMIT))


def read_name(data, offset):
    """(name, offset after it): labels joined by ".", compression pointers followed (bounded,
    never forward into themselves), lower-cased."""
    labels, end, jumps, length = [], None, 0, 0
    while True:
        if offset >= len(data):
            raise CodecError("name runs past the end of the message")
        size = data[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise CodecError("compression pointer cut short")
            jumps += 1
            if jumps > MAX_POINTERS:
                raise CodecError("compression pointer loop")
            if end is None:
                end = offset + 2
            offset = ((size & 0x3F) << 8) | data[offset + 1]
            continue
        if size & 0xC0:
            raise CodecError(f"label type {size >> 6:#x} not supported")
        offset += 1
        if size == 0:
            break
        label = data[offset:offset + size]
        if len(label) != size:
            raise CodecError("label runs past the end of the message")
        length += size + 1
        if length > MAX_NAME:
            raise CodecError("name longer than 255 bytes")
        labels.append(label.decode("ascii", "replace").lower())
        offset += size
    return ".".join(labels), (offset if end is None else end)


def encode_name(name):
    """Wire form of "a.b.c" (no compression)."""
    out = bytearray()
    for label in filter(None, name.rstrip(".").split(".")):
        raw = label.encode("ascii")
        if len(raw) > 63:
            raise CodecError(f"label {label!r} longer than 63 bytes")
        out += bytes((len(raw),)) + raw
    out += b"\0"
    if len(out) > MAX_NAME:
        raise CodecError(f"name {name!r} longer than 255 bytes")
    return bytes(out)


def _skip_rr(data, offset):
    """(type, class, ttl, rdata offset, offset after) of the record at ``offset``."""
    _, offset = read_name(data, offset)
    if offset + 10 > len(data):
        raise CodecError("record header cut short")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", data, offset)
    start = offset + 10
    if start + rdlen > len(data):
        raise CodecError("record data cut short")
    return rtype, rclass, ttl, start, start + rdlen


def parse_query(data):
    """A ``Query`` from a message with exactly one question (what every resolver sends)."""
    if len(data) < HEADER.size:
        raise CodecError("message shorter than a header")
    id_, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    if flags & QR:
        raise CodecError("a response, not a query")
    if qd != 1:
        raise CodecError(f"{qd} questions (one is supported)")
    name, offset = read_name(data, HEADER.size)
    if offset + 4 > len(data):
        raise CodecError("question cut short")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    question = data[HEADER.size:offset + 4]
    offset += 4
    edns = None
    for _ in range(an + ns):
        offset = _skip_rr(data, offset)[4]
    for _ in range(ar):
        rtype, rclass, _, _, offset = _skip_rr(data, offset)
        if rtype == OPT:
            edns = rclass           # an OPT record's class is the sender's UDP size
    return Query(id_, flags, name, qtype, qclass, question, edns, data)


def response_id_and_question(data):
    """(ID, question bytes) of a response, to match it to the query it answers."""
    if len(data) < HEADER.size:
        raise CodecError("message shorter than a header")
    id_, flags, qd = HEADER.unpack_from(data)[:3]
    if not flags & QR:
        raise CodecError("a query, not a response")
    if qd != 1:
        return id_, b""
    _, offset = read_name(data, HEADER.size)
    return id_, data[HEADER.size:offset + 4]


def with_id(data, id_):
    return struct.pack("!H", id_) + data[2:]


def _opt(size=EDNS_LIMIT):
    return b"\0" + struct.pack("!HHIH", OPT, size, 0, 0)


def reply(query, rcode=NOERROR, answers=(), authoritative=False, limit=None):
    """A reply to ``query``: ``answers`` are (type, ttl, rdata bytes) for the query's name
    (pointer to the question). With ``limit`` (the UDP size) a reply that does not fit is sent
    as header and question only, with TC set (RFC 2181 9: the client retries over TCP)."""
    flags = QR | (query.flags & (0x7800 | RD)) | RA | (rcode & 0xF)
    if authoritative:
        flags |= AA
    records = b"".join(b"\xc0\x0c" + struct.pack("!HHIH", rtype, IN, ttl, len(rdata)) + rdata
                       for rtype, ttl, rdata in answers)
    extra = _opt() if query.edns is not None else b""
    count = len(answers)
    message = (HEADER.pack(query.id, flags, 1, count, 0, 1 if extra else 0) + query.question
               + records + extra)
    if limit is not None and len(message) > limit:
        message = (HEADER.pack(query.id, flags | TC, 1, 0, 0, 1 if extra else 0)
                   + query.question + extra)
    return message


def error_reply(data, rcode):
    """FORMERR/REFUSED... for a message that may not parse: its ID and flags, no sections."""
    if len(data) < 4:
        return None
    id_, flags = struct.unpack_from("!HH", data)
    if flags & QR:
        return None                 # never answer a response (reflection loops)
    return HEADER.pack(id_, QR | (flags & (0x7800 | RD)) | RA | rcode, 0, 0, 0, 0)


def truncate(data, limit):
    """A forwarded reply cut to header + question with TC when over ``limit``."""
    if len(data) <= limit:
        return data
    id_, flags, qd = HEADER.unpack_from(data)[:3]
    question = b""
    if qd == 1:
        _, offset = read_name(data, HEADER.size)
        question = data[HEADER.size:offset + 4]
    return HEADER.pack(id_, flags | TC, 1 if question else 0, 0, 0, 0) + question


def ptr_name(address):
    """"10.0.0.2" -> "2.0.0.10.in-addr.arpa"."""
    return ".".join(reversed(address.split("."))) + ".in-addr.arpa"


def parse_answers(data):
    """[(name, type, rdata bytes)] of a response's answer section (for tests and tools)."""
    id_, flags, qd, an = HEADER.unpack_from(data)[:4]
    offset = HEADER.size
    for _ in range(qd):
        _, offset = read_name(data, offset)
        offset += 4
    out = []
    for _ in range(an):
        name, _ = read_name(data, offset)
        rtype, _, _, start, offset = _skip_rr(data, offset)
        out.append((name, rtype, data[start:offset]))
    return out


def make_query(name, qtype=A, id_=0x1234, rd=True, edns=None):
    """A query message (for tests, the resolver's own checks, and tools)."""
    ar = 1 if edns is not None else 0
    message = HEADER.pack(id_, RD if rd else 0, 1, 0, 0, ar) + encode_name(name) \
        + struct.pack("!HH", qtype, IN)
    return message + (_opt(edns) if edns is not None else b"")
