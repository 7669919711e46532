"""The resolver process: one asyncio loop, no threads, serving one network on its gateway.

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
"""

import asyncio
import os
import random
import signal
import socket
import struct

from kago.network.dns import codec, table as names

TTL = 5
ATTEMPT = 2.0
DEADLINE = 5.0
TCP_IDLE = 10.0
MAX_INFLIGHT = 128
MAX_TCP = 64
MAX_TCP_QUERIES = 100
CHECK = 2.0


def _v4(address):
    return int.from_bytes(socket.inet_aton(address), "big")


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
        self.stopped = None         # an asyncio.Event once running
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

    def fresh(self):
        """Re-reads a changed table; False when it is gone (then we stop)."""
        try:
            st = os.stat(self.table_path)
        except FileNotFoundError:
            self.stop()
            return False
        if (st.st_ino, st.st_size, st.st_mtime_ns) != self.stamp:
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

    def stop(self):
        if self.stopped is not None:
            self.stopped.set()

    # --- answering
    def local(self, query):
        """A reply from the table, or None to forward."""
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
        found = names.lookup(self.table, query.name, family or "4")
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
        message = self.local(query)
        if message is not None:
            return (message if tcp else codec.truncate(message, query.udp_limit())), None
        return None, query

    async def forwarded(self, query, tcp):
        message = await self.forward(query, tcp)
        if message is None:
            return codec.reply(query, codec.SERVFAIL)
        return message if tcp else codec.truncate(message, query.udp_limit())

    async def answer(self, data, src, tcp):
        """The reply to ``data`` from ``src`` (None: say nothing)."""
        message, query = self.prepare(data, src, tcp)
        if query is None:
            return message
        return await self.forwarded(query, tcp)

    async def forward(self, query, tcp):
        if not self.servers or self.inflight >= MAX_INFLIGHT:
            return None
        self.inflight += 1
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE
            for server in self.servers:
                left = deadline - loop.time()
                if left <= 0:
                    break
                qid = random.getrandbits(16)
                try:
                    got = await asyncio.wait_for(
                        (self._tcp if tcp else self._udp)(server, codec.with_id(query.raw, qid),
                                                          qid, query.question),
                        min(ATTEMPT, left))
                except (OSError, asyncio.TimeoutError, codec.CodecError, EOFError,
                        asyncio.IncompleteReadError):
                    continue
                return codec.with_id(got, query.id)
            return None
        finally:
            self.inflight -= 1

    @staticmethod
    async def _udp(server, message, qid, question):
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.connect((server[0], int(server[1])))
            await loop.sock_sendall(s, message)
            while True:             # ignore what does not answer this query (spoofing)
                data = await loop.sock_recv(s, 65535)
                try:
                    rid, rquestion = codec.response_id_and_question(data)
                except codec.CodecError:
                    continue
                if rid == qid and rquestion.lower() == question.lower():
                    return data

    @staticmethod
    async def _tcp(server, message, qid, question):
        reader, writer = await asyncio.open_connection(server[0], int(server[1]))
        try:
            writer.write(struct.pack("!H", len(message)) + message)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            data = await reader.readexactly(size)
            rid, _ = codec.response_id_and_question(data)
            if rid != qid:
                raise codec.CodecError("reply to another query")
            return data
        finally:
            writer.close()

    # --- transports
    async def serve(self, udp, tcp):
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.fresh)
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
        server = await asyncio.start_server(self._client, sock=tcp)
        watch = asyncio.ensure_future(self._watch())
        try:
            await self.stopped.wait()
        finally:
            watch.cancel()
            transport.close()
            server.close()

    async def _watch(self):
        while True:
            await asyncio.sleep(CHECK)
            if self.fresh() and self.proc_path and not self._still_ours():
                self.stop()

    def _still_ours(self):
        try:
            return names.load(self.proc_path).get("pid") == os.getpid()
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True

    async def _client(self, reader, writer):
        if self.tcp_clients >= MAX_TCP:
            writer.close()
            return
        self.tcp_clients += 1
        src = writer.get_extra_info("peername")
        try:
            for _ in range(MAX_TCP_QUERIES):
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                data = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]),
                                              TCP_IDLE)
                message = await self.answer(data, src, tcp=True)
                if message is None:
                    break
                writer.write(struct.pack("!H", len(message)) + message)
                await writer.drain()
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tcp_clients -= 1
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver):
        self.resolver = resolver
        self.transport = None
        self.tasks = set()          # held until done (the loop keeps only weak references)

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        message, query = self.resolver.prepare(data, addr, tcp=False)
        if query is not None:
            task = asyncio.ensure_future(self._later(query, addr))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif message is not None:
            self.transport.sendto(message, addr)

    async def _later(self, query, addr):
        message = await self.resolver.forwarded(query, tcp=False)
        self.transport.sendto(message, addr)
