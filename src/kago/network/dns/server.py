"""The resolver process: one selectors loop, no threads, serving one network on its gateway.

Queries come over UDP and TCP on ``listen`` (the network's gateway address, port 53, in the
host's network namespace) and only from the network's subnet: anybody else (another
network's containers, the LAN if the host routes it) gets REFUSED, so the containers' names
stay on their network and this is never an open resolver. A name of the table is answered
here (A, AAAA; any other type NOERROR with no records; PTR of the network's addresses);
everything else is forwarded to the upstream servers, one at a time, with a fresh ID and
source port per query, over the protocol the client used, bounded by ``ATTEMPT`` seconds per
server and ``DEADLINE`` in all. At most ``MAX_INFLIGHT`` forwards and ``MAX_TCP`` client
connections are open at once; beyond that, SERVFAIL and closed connections.

The table file is re-read on SIGHUP and whenever its inode, size or mtime changed (checked
before each query and every ``CHECK`` seconds): a container's first query never sees the
table from before its own attach. The process exits on SIGTERM/SIGINT, when its table file is
gone, or when the process record no longer names it (a newer resolver took over).

A plain ``selectors`` loop with a timer heap rather than asyncio: asyncio costs ~5 MB of RSS
and ~40 ms of imports for what is two listening sockets and a few sockets per forward.
"""

import errno
import heapq
import os
import random
import selectors
import signal
import socket
import struct
import time

from kago.network.dns import codec, table as names

TTL = 5
ATTEMPT = 2.0
DEADLINE = 5.0
TCP_IDLE = 10.0
MAX_INFLIGHT = 128
MAX_TCP = 64
MAX_TCP_QUERIES = 100
CHECK = 2.0
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def _v4(address):
    return int.from_bytes(socket.inet_aton(address), "big")


class Loop:
    """Callbacks on readable/writable sockets and on timers; ``run`` until ``stop``."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.timers = []
        self.seq = 0
        self.running = True

    def watch(self, sock, events, callback):
        try:
            self.sel.modify(sock, events, callback)
        except KeyError:
            self.sel.register(sock, events, callback)

    def forget(self, sock):
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass

    def later(self, delay, callback):
        """A timer; returns a handle whose ``[2] = None`` cancels it."""
        self.seq += 1
        timer = [time.monotonic() + delay, self.seq, callback]
        heapq.heappush(self.timers, timer)
        return timer

    def run(self):
        while self.running:
            now = time.monotonic()
            while self.timers and (self.timers[0][2] is None or self.timers[0][0] <= now):
                _, _, callback = heapq.heappop(self.timers)
                if callback is not None:
                    _guarded(callback)
            if not self.running:
                break
            timeout = max(0.0, self.timers[0][0] - now) if self.timers else None
            for key, mask in self.sel.select(timeout):
                _guarded(key.data, mask)


def _guarded(callback, *args):
    """One query's trouble (a bug, an odd socket error) must not take every name down."""
    try:
        callback(*args)
    except Exception:  # noqa: BLE001
        pass


class Resolver:
    def __init__(self, table_path, proc_path=None, resolv_conf=names.RESOLV_CONF):
        self.table_path = table_path
        self.proc_path = proc_path
        self.resolv_conf = resolv_conf
        self.table = None
        self.stamp = None
        self.servers = []
        self.inflight = 0
        self.tcp_clients = 0
        self.loop = None
        self.load()

    # --- the table
    def load(self):
        st = os.stat(self.table_path)
        self.table = names.load(self.table_path)
        self.stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        self.servers = names.upstreams(self.table, self.resolv_conf)
        net, _, bits = self.table["subnet"].partition("/")
        self.mask = (0xFFFFFFFF << (32 - int(bits))) & 0xFFFFFFFF
        self.net = _v4(net) & self.mask

    def fresh(self, force=False):
        """Re-reads a changed table (any table with ``force``: a SIGHUP's, which also covers
        a same-size rewrite within the clock's tick on a reused inode); False when it is gone
        (then we stop)."""
        try:
            st = os.stat(self.table_path)
        except FileNotFoundError:
            self.stop()
            return False
        if force or (st.st_ino, st.st_size, st.st_mtime_ns) != self.stamp:
            try:
                self.load()
            except (OSError, ValueError):
                pass                 # caught mid-replace: the rename comes with a new stamp
        return True

    def ours(self, src):
        try:
            return _v4(src[0]) & self.mask == self.net
        except OSError:
            return False            # not IPv4

    # --- answering
    def local(self, query, client=None):
        """A reply from the table (with ``client``'s view: the names of its container's
        other networks), or None to forward."""
        if query.qclass != codec.IN:
            return None
        if query.qtype == codec.PTR and query.name.endswith(".in-addr.arpa"):
            parts = query.name[:-len(".in-addr.arpa")].split(".")
            if len(parts) != 4:
                return None
            address = ".".join(reversed(parts))
            target = self.table["ptr"].get(address)
            if target is not None:
                return codec.reply(query, answers=[(codec.PTR, TTL, codec.encode_name(target))],
                                   authoritative=True)
            try:
                inside = _v4(address) & self.mask == self.net
            except OSError:
                return None
            return codec.reply(query, codec.NXDOMAIN, authoritative=True) if inside else None
        family = {codec.A: "4", codec.AAAA: "6"}.get(query.qtype)
        found = names.lookup(self.table, query.name, family or "4", client)
        if found is None:
            return None
        if family is None:
            found = []              # the name exists, without records of that type
        if family == "6":
            answers = [(codec.AAAA, TTL, socket.inet_pton(socket.AF_INET6, a)) for a in found]
        else:
            answers = [(codec.A, TTL, socket.inet_aton(a)) for a in found]
        return codec.reply(query, answers=answers, authoritative=True)

    def prepare(self, data, src, tcp):
        """(reply, None) when it is answered here (reply None: say nothing), else (None, query)
        to forward."""
        self.fresh()
        if not self.ours(src):
            return codec.error_reply(data, codec.REFUSED), None
        try:
            query = codec.parse_query(data)
        except codec.CodecError:
            return codec.error_reply(data, codec.FORMERR), None
        if query.opcode != 0:
            return codec.error_reply(data, codec.NOTIMP), None
        message = self.local(query, src[0])
        if message is not None:
            return (message if tcp else codec.truncate(message, query.udp_limit())), None
        return None, query

    # --- forwarding
    def forward(self, query, tcp, done):
        """Forwards ``query``; ``done(reply bytes)`` later (SERVFAIL when nobody answered)."""
        if not self.servers or self.inflight >= MAX_INFLIGHT:
            done(codec.reply(query, codec.SERVFAIL))
            return
        _Forward(self, query, tcp, done).next()

    # --- transports
    def serve(self, udp, tcp):
        self.loop = loop = Loop()
        wake_r, wake_w = socket.socketpair()
        for s in (wake_r, wake_w):
            s.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: None)  # the wakeup fd says it: re-read there
        loop.watch(wake_r, READ, lambda _: (_drain(wake_r), self.fresh(force=True)))
        self.udp = udp
        loop.watch(udp, READ, lambda _: self._datagrams())
        loop.watch(tcp, READ, lambda _: self._accept(tcp))
        self._watch()
        loop.run()
        for s in (udp, tcp, wake_r, wake_w):
            s.close()

    def stop(self):
        if getattr(self, "loop", None) is not None:
            self.loop.running = False

    def _watch(self):
        if self.fresh() and self.proc_path and not self._still_ours():
            self.stop()
        self.loop.later(CHECK, self._watch)

    def _still_ours(self):
        try:
            return names.load(self.proc_path).get("pid") == os.getpid()
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True

    def _datagrams(self):
        for _ in range(64):         # a burst, then the others get their turn
            try:
                data, addr = self.udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue            # an ICMP error for an earlier reply
            message, query = self.prepare(data, addr, tcp=False)
            if query is not None:
                limit = query.udp_limit()
                self.forward(query, False,
                             lambda reply, a=addr, n=limit: self._send(codec.truncate(reply, n), a))
            elif message is not None:
                self._send(message, addr)

    def _send(self, message, addr):
        try:
            self.udp.sendto(message, addr)
        except OSError:
            pass                    # a full buffer or a gone client: it asks again

    def _accept(self, listener):
        try:
            conn, addr = listener.accept()
        except OSError:
            return
        if self.tcp_clients >= MAX_TCP:
            conn.close()
            return
        _Client(self, conn, addr)


def _drain(sock):
    try:
        while sock.recv(512):
            pass
    except OSError:
        pass


class _Forward:
    """One forwarded query: tries the servers in turn, each for at most ATTEMPT seconds."""

    def __init__(self, resolver, query, tcp, done):
        self.r = resolver
        self.query = query
        self.tcp = tcp
        self.done = done
        self.servers = list(resolver.servers)
        self.deadline = time.monotonic() + DEADLINE
        self.sock = None
        self.timer = None
        self.qid = 0
        self.out = b""
        self.buf = b""
        resolver.inflight += 1

    def next(self):
        self._close()
        left = self.deadline - time.monotonic()
        if not self.servers or left <= 0:
            self._finish(None)
            return
        host, port = self.servers.pop(0)
        self.qid = random.getrandbits(16)
        message = codec.with_id(self.query.raw, self.qid)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.sock = socket.socket(family, socket.SOCK_STREAM if self.tcp
                                      else socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            if self.tcp:
                self.out = struct.pack("!H", len(message)) + message
                err = self.sock.connect_ex((host, int(port)))
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
                self.r.loop.watch(self.sock, WRITE, self._tcp_writable)
            else:
                self.sock.connect((host, int(port)))
                self.sock.send(message)
                self.r.loop.watch(self.sock, READ, self._udp_readable)
        except OSError:
            self.next()
            return
        self.timer = self.r.loop.later(min(ATTEMPT, left), self.next)

    def _udp_readable(self, _mask):
        try:
            data = self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:             # ICMP port unreachable: the next server
            self.next()
            return
        self._check(data)

    def _tcp_writable(self, _mask):
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.next()
            return
        self.out = self.out[sent:]
        if not self.out:
            self.r.loop.watch(self.sock, READ, self._tcp_readable)

    def _tcp_readable(self, _mask):
        try:
            chunk = self.sock.recv(65537)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.next()
            return
        self.buf += chunk
        if len(self.buf) >= 2:
            size = struct.unpack_from("!H", self.buf)[0]
            if len(self.buf) >= 2 + size:
                if not self._check(self.buf[2:2 + size]):
                    self.next()

    def _check(self, data):
        """Finishes with ``data`` when it answers our query (ID and question); else ignored
        (a late or spoofed datagram)."""
        try:
            rid, question = codec.response_id_and_question(data)
        except codec.CodecError:
            return False
        if rid != self.qid or question.lower() != self.query.question.lower():
            return False
        self._close()
        self._finish(codec.with_id(data, self.query.id))
        return True

    def _close(self):
        if self.timer is not None:
            self.timer[2] = None
            self.timer = None
        if self.sock is not None:
            self.r.loop.forget(self.sock)
            self.sock.close()
            self.sock = None

    def _finish(self, reply):
        self.r.inflight -= 1
        self.done(reply if reply is not None else codec.reply(self.query, codec.SERVFAIL))


class _Client:
    """A TCP client: length-prefixed queries in, replies out (in the order they are ready),
    closed when idle for TCP_IDLE, after MAX_TCP_QUERIES, or at its EOF."""

    def __init__(self, resolver, conn, addr):
        self.r = resolver
        self.conn = conn
        self.addr = addr
        self.inbuf = b""
        self.outbuf = b""
        self.asked = 0
        self.pending = 0
        self.closed = False
        self.eof = False
        conn.setblocking(False)
        resolver.tcp_clients += 1
        self.timer = resolver.loop.later(TCP_IDLE, self.close)
        resolver.loop.watch(conn, READ, self._ready)

    def _ready(self, mask):
        if mask & WRITE:
            self._flush()
        if mask & READ and not self.closed:
            self._read()

    def _read(self):
        try:
            chunk = self.conn.recv(65537)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            self._maybe_close()
            return
        self.inbuf += chunk
        self._idle()
        while len(self.inbuf) >= 2 and not self.closed:
            size = struct.unpack_from("!H", self.inbuf)[0]
            if len(self.inbuf) < 2 + size:
                break
            data, self.inbuf = self.inbuf[2:2 + size], self.inbuf[2 + size:]
            self.asked += 1
            if self.asked > MAX_TCP_QUERIES:
                self.close()
                return
            message, query = self.r.prepare(data, self.addr, tcp=True)
            if query is not None:
                self.pending += 1
                self.r.forward(query, True, self._forwarded)
            elif message is not None:
                self._write(message)

    def _forwarded(self, message):
        self.pending -= 1
        if not self.closed:
            self._write(message)
            self._maybe_close()

    def _write(self, message):
        self.outbuf += struct.pack("!H", len(message)) + message
        self._flush()

    def _flush(self):
        if self.closed:
            return
        try:
            sent = self.conn.send(self.outbuf) if self.outbuf else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        self.outbuf = self.outbuf[sent:]
        events = READ | (WRITE if self.outbuf else 0)
        self.r.loop.watch(self.conn, events, self._ready)
        self._idle()

    def _idle(self):
        self.timer[2] = None
        self.timer = self.r.loop.later(TCP_IDLE, self.close)

    def _maybe_close(self):
        if self.eof and not self.pending and not self.outbuf:
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.timer[2] = None
        self.r.loop.forget(self.conn)
        self.conn.close()
        self.r.tcp_clients -= 1
