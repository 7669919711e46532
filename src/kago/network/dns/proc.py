"""A resolver process's identity: pid and /proc start time (a reused pid is never taken for
it). Imported by the resolver itself, so it imports nothing but os."""

import os


def start_time(pid):
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), or None
    when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def process_record(pid, table, address, port):
    return {"pid": pid, "start_time": start_time(pid), "listen": [address, port],
            "table": os.path.abspath(table)}


def alive(record):
    """Whether the recorded resolver is the process running under its pid."""
    return bool(record) and record.get("start_time") is not None \
        and start_time(record["pid"]) == record["start_time"]
