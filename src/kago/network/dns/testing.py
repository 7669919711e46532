"""Test helpers: a fake upstream DNS server on 127.0.0.1, and a small client.

``FakeUpstream`` answers the A queries of the names it knows ({name: address}), NXDOMAIN for
others (UDP and TCP, one thread each), and remembers the names it was asked, so a test can
see what the resolver forwarded.
"""

import socket
import struct
import threading

from kago.network.dns import codec


class FakeUpstream:
    def __init__(self, known=None, host="127.0.0.1"):
        self.known = {"example.org": "192.0.2.77"} if known is None else known
        self.asked = []
        self.udp, self.tcp, self.port = _pair(host)
        self.tcp.listen(8)
        self.host = host
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    @property
    def server(self):
        return f"{self.host}:{self.port}"

    def _answer(self, data):
        q = codec.parse_query(data)
        self.asked.append(q.name)
        if q.name not in self.known:
            return codec.reply(q, codec.NXDOMAIN)
        answers = ([(codec.A, 60, socket.inet_aton(self.known[q.name]))]
                   if q.qtype == codec.A else [])
        return codec.reply(q, answers=answers)

    def _serve_udp(self):
        while True:
            try:
                data, addr = self.udp.recvfrom(65535)
                self.udp.sendto(self._answer(data), addr)
            except OSError:
                return
            except codec.CodecError:
                continue

    def _serve_tcp(self):
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    size = struct.unpack("!H", _exactly(conn, 2))[0]
                    message = self._answer(_exactly(conn, size))
                    conn.sendall(struct.pack("!H", len(message)) + message)
                except (OSError, codec.CodecError, struct.error):
                    continue

    def close(self):
        for s in (self.udp, self.tcp):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(2)


def _exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def ask(server, name, qtype=codec.A, tcp=False, timeout=3.0, source=None, edns=None):
    """One query to (address, port); the reply's bytes."""
    query = codec.make_query(name, qtype, edns=edns)
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect(server)
        if tcp:
            s.sendall(struct.pack("!H", len(query)) + query)
            return _exactly(s, struct.unpack("!H", _exactly(s, 2))[0])
        s.send(query)
        return s.recv(65535)


def rcode(message):
    return struct.unpack_from("!H", message, 2)[0] & 0xF


def addresses(message):
    return [socket.inet_ntoa(rdata) for _, rtype, rdata in codec.parse_answers(message)
            if rtype == codec.A]


def _pair(host, tries=50):
    """A UDP and a TCP socket bound to the same free port: the UDP one takes a free port, the
    TCP one may find it taken (another program's), then both are tried again."""
    for _ in range(tries):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp, port
    raise OSError(f"no port free for both UDP and TCP on {host} in {tries} tries")
