"""The worker: adds a note to the Redis server every INTERVAL seconds and says so."""

import os
import signal
import sys
import time

from store import RedisStore

# as PID 1 in its container, a signal without a handler does nothing: stop on SIGTERM
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
store = RedisStore(os.environ.get("REDIS_HOST", "db"))
interval = float(os.environ.get("INTERVAL", "2"))
while True:
    n = store.command("INCR", "ticks")  # counted in redis: a new worker goes on from there
    store.add(f"tick {n} from the worker")
    print(f"worker: wrote tick {n} ({store.command('LLEN', 'notes')} notes in redis)", flush=True)
    time.sleep(interval)
