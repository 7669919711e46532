"""The worker: adds a note to the Redis server every INTERVAL seconds and says so."""

import os
import time

from store import RedisStore

store = RedisStore(os.environ.get("REDIS_HOST", "db"))
interval = float(os.environ.get("INTERVAL", "2"))
n = 0
while True:
    n += 1
    store.add(f"tick {n} from the worker")
    print(f"worker: wrote tick {n} ({store.command('LLEN', 'notes')} notes in redis)", flush=True)
    time.sleep(interval)
