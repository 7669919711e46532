"""Where the notes live: a file (NOTES_FILE), or a Redis server (REDIS_HOST) spoken to in
its own protocol (RESP) over a plain socket, so the image needs nothing beyond python3."""

import os
import socket


class FileStore:
    def __init__(self, path):
        self.path = path
        self.hits = 0

    def add(self, text):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(text + "\n")

    def notes(self):
        try:
            with open(self.path) as f:
                return [line.rstrip("\n") for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def hit(self):
        self.hits += 1
        return self.hits


class RedisStore:
    def __init__(self, host, port=6379):
        self.address = (host, port)

    def command(self, *words):
        """One command, one reply: an int, a str, a list of str, or None."""
        out = b"*%d\r\n" % len(words)
        for word in words:
            data = str(word).encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(self.address, timeout=5) as s:
            s.sendall(out)
            return _reply(s.makefile("rb"))

    def add(self, text):
        self.command("RPUSH", "notes", text)

    def notes(self):
        return self.command("LRANGE", "notes", 0, -1)

    def hit(self):
        return self.command("INCR", "hits")


def _reply(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        if kind == b"-":
            raise OSError(rest.decode())
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        if int(rest) < 0:
            return None
        data = f.read(int(rest) + 2)
        return data[:-2].decode()
    if kind == b"*":
        return [_reply(f) for _ in range(int(rest))]
    raise OSError(f"unexpected reply {line!r}")


def open_store():
    host = os.environ.get("REDIS_HOST")
    if host:
        return RedisStore(host)
    return FileStore(os.environ.get("NOTES_FILE", "/data/notes.txt"))
