"""The console's one sampler: every second (one thread, whatever the number of clients) it
lists the root's containers, reads each running one's cgroup as ``kago stats`` does, and
keeps the last ``keep`` samples per container in a bounded ring (dropped when the container
is removed). The list rows, ``/api/stream``, ``/history`` and ``/samples`` all read what it
kept; none of them reads a cgroup itself.

Listing the containers (the manager's records and the runtime's states) is read again only
when the root's event log changed (a start, stop, death, creation or removal writes it) or
every RELIST seconds, and each running container's cgroup files are kept open while it runs
(linux/cgroups/brief.py): 100 containers cost the sampler a few percent of one core
(bench/console_cost).

Asyncio code waits for the next tick with ``await sampler.next_tick()``: the thread wakes
the event loop once per tick (``call_soon_threadsafe``).
"""

import asyncio
import collections
import os
import threading
import time

from kago.console import rows as R

RELIST = 5.0  # seconds: the longest the sampler goes without listing the containers again


class Ring:
    """A container's samples, oldest first, at most ``keep`` of them."""

    def __init__(self, keep):
        self.samples = collections.deque(maxlen=keep)
        self.reading = None  # the latest raw reading (for the memory limit)

    def history(self):
        out = {"t": [s["t"] for s in self.samples]}
        for key in R.SERIES:
            out[key] = [s[key] for s in self.samples]
        out["mem_limit"] = R.mem_limit(self.reading)
        return out


class Sampler:
    def __init__(self, client, interval=1.0, keep=600):
        self.client, self.interval, self.keep = client, interval, keep
        self.rings = {}  # container id -> Ring
        self.readings = {}  # container id -> (its pid, its previous raw reading)
        self.reader_of = {}  # container id -> (its pid, its stats reader)
        self.snapshot = (0.0, [])  # (epoch seconds, every container's row) of the last tick
        self.ticks = 0
        self.lists = 0  # how many ticks listed the containers again (_list)
        self._listed, self._list_key, self._listed_at = None, None, 0.0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = None
        self._loop = None
        self._event = None
        self._lock = threading.Lock()

    # --- the thread ------------------------------------------------------------------------
    def start(self, loop=None):
        self._loop = loop
        self._event = asyncio.Event() if loop is not None else None
        self._thread = threading.Thread(target=self._run, name="kago-console-sampler",
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.close()

    def _run(self):
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a bad tick must not end the sampler
                self.errors += 1
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (a busy host): the next tick one interval from now
                next_at, delay = time.monotonic() + self.interval, self.interval
            self._stop.wait(delay)

    def tick(self):
        """One round: read every running container, append to its ring, make the rows."""
        from kago.manager import views
        from kago.manager.errors import ManagerError
        mgr = self.client.manager
        listed = self._list(mgr)
        now = time.time()
        seen, out = set(), []
        for record, live in listed:
            cid = record["id"]
            seen.add(cid)
            ring = self.rings.get(cid)
            if live == "running":
                pid = (record.get("state") or {}).get("pid")
                try:
                    reading = views.reading(record, self._reader(mgr, record, pid)(), net=False)
                except (ManagerError, OSError):
                    self._drop_reader(cid)
                    self._listed = None  # it ended (or went): list again next tick
                    reading = None
                if ring is None:
                    ring = self.rings[cid] = Ring(self.keep)
                before = self.readings.get(cid)
                before = before[1] if before is not None and before[0] == pid else None
                if reading is not None:
                    self.readings[cid] = (pid, reading)
                    ring.reading = reading
                    ring.samples.append(R.sample(now, before, reading))
            else:
                self.readings.pop(cid, None)
                self._drop_reader(cid)
            last = ring.samples[-1] if ring is not None and ring.samples else None
            out.append(R.row(record, live, now, last, ring.reading if ring else None))
        for cid in set(self.rings) - seen:  # removed: its history goes with it
            del self.rings[cid]
            self.readings.pop(cid, None)
            self._drop_reader(cid)
        with self._lock:
            self.snapshot = (now, out)
            self.ticks += 1
        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed under us (shutdown)
                pass

    def _list(self, mgr):
        """The manager's list of every container: read again when the root's event log
        changed (every start, stop, die, create, removal writes it), or RELIST s since;
        else the last one (listing costs 2/3 of a tick otherwise)."""
        from kago.manager import events
        try:
            st = os.stat(events.path(mgr.paths))
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        now = time.monotonic()
        if (self._listed is None or key != self._list_key
                or now - self._listed_at >= RELIST):
            self._listed, self._list_key, self._listed_at = mgr.list(all=True), key, now
            self.lists += 1
        return self._listed

    def _reader(self, mgr, record, pid):
        """The container's stats reader for this run of it (its cgroup found once)."""
        cid = record["id"]
        known = self.reader_of.get(cid)
        if known is None or known[0] != pid:
            self._drop_reader(cid)
            known = self.reader_of[cid] = (pid, mgr.runtime(record).stats_reader(cid))
        return known[1]

    def _drop_reader(self, cid):
        known = self.reader_of.pop(cid, None)
        if known is not None:
            known[1].close()

    def close(self):
        """Close every reader (the sampler stopped)."""
        for cid in list(self.reader_of):
            self._drop_reader(cid)

    def _wake(self):
        event, self._event = self._event, asyncio.Event()
        event.set()

    # --- readers ---------------------------------------------------------------------------
    async def next_tick(self, timeout=5.0):
        """Wait (in the event loop) until the next tick is done."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def last_samples(self):
        """{container id: its latest sample}."""
        return {cid: ring.samples[-1] for cid, ring in list(self.rings.items()) if ring.samples}

    def history(self, cid):
        ring = self.rings.get(cid)
        if ring is None:
            return {"t": [], **{k: [] for k in R.SERIES}, "mem_limit": None}
        return ring.history()

    def latest(self, cid):
        ring = self.rings.get(cid)
        return ring.samples[-1] if ring is not None and ring.samples else None

    def rows(self, all=False):
        """The list now: the containers as the manager lists them at this moment, with the
        sampler's last metrics."""
        now = time.time()
        out = []
        for record, live in self.client.manager.list(all=all):
            ring = self.rings.get(record["id"])
            last = ring.samples[-1] if ring is not None and ring.samples else None
            out.append(R.row(record, live, now, last, ring.reading if ring else None))
        return out
