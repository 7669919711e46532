"""A container's log for an SSE client: the json-lines log (manager/logs.py) read, then
followed, in a thread of its own, its entries handed to the event loop through a bounded
queue (a slow client holds the reader back, not the server's memory). The thread ends when
the container does, or soon after the client goes (``close``: the follow checks it every
0.2 s)."""

import asyncio
import os
import threading

RUNNING = ("running", "paused", "restarting")


class Gone(Exception):
    """The client went: the reader thread ends."""


class LogStream:
    def __init__(self, client, cid, tail=None, follow=False, size=1000):
        self.client, self.cid, self.tail, self.follow = client, cid, tail, follow
        self.loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue(maxsize=size)
        self.gone = threading.Event()
        self.thread = threading.Thread(target=self._read, name="kago-console-logs",
                                       daemon=True)

    async def entries(self):
        """The log's entries ({"stream", "log", ...}), then None at its end; a dict with
        "error" if reading it failed."""
        self.thread.start()
        try:
            while True:
                entry = await self.queue.get()
                yield entry
                if entry is None or "error" in entry:
                    return
        finally:
            self.close()

    def close(self):
        self.gone.set()
        while not self.queue.empty():  # unblock a put waiting on a full queue
            self.queue.get_nowait()

    def _put(self, item):
        if self.gone.is_set():
            raise Gone
        asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop).result()

    def _stopped(self):
        if self.gone.is_set():
            return True
        mgr = self.client.manager
        return mgr.live(mgr.resolve(self.cid)) not in RUNNING

    def _read(self):
        from kago.manager import logs
        path = self.client.manager.paths.log(self.cid)
        try:
            # from here on the follow reads: a line written while the tail is read comes
            # twice rather than never
            offset = os.path.getsize(path) if os.path.exists(path) else 0
            for entry in logs.read(path, tail=self.tail):
                self._put(entry)
            if self.follow:
                for entry in logs.follow(path, self._stopped, interval=0.2, offset=offset):
                    self._put(entry)
            self._put(None)
        except Gone:
            return
        except Exception as e:  # noqa: BLE001 - the stream says why it ended
            try:
                self._put({"error": " ".join(str(e).split())})
            except Gone:
                return
