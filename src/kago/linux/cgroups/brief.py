"""What ``docker stats`` shows of a cgroup, read cheaply and often: CPU usage, memory usage,
limit and memory.stat, pids.current, block I/O bytes and PSI, in the shape of
``stats.collect`` (runc's ``events --stats``; the fields it does not read stay zero).

``collect_brief`` reads ~10 files where ``collect`` reads ~60. ``BriefReader`` keeps them
open and rereads each from offset 0 (``pread``: the kernel regenerates a cgroup file's text
at offset 0): an open of a cgroup file costs ~10x its read, so a sampler that reads every
container every second keeps its descriptors (10 a container) and closes them when the
container ends. Open descriptors do not hold a cgroup: its rmdir goes ahead, and a read of
a removed cgroup's file fails with ENODEV (read as absent, like a missing file).
"""

import errno
import os

from . import stats as S

MEMORY_V1 = ("memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat")
MEMORY_V2 = ("memory.current", "memory.max", "memory.stat")
_SECTIONS = (
    ("memory", MEMORY_V1, MEMORY_V2, S.memory_v1, S.memory_v2, "memory"),
    ("pids", ("pids.current",), ("pids.current",), S.pids, S.pids, "pids"),
    ("blkio", S._BLKIO_V1["ioServiceBytesRecursive"], S.BLKIO_V2_FILES, S.blkio_v1,
     S.blkio_v2, "blkio"),
)
_ABSENT = (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP, errno.EINVAL)


def collect_brief(manager, read=S.read_files):
    """docker stats' fields of the manager's cgroup; ``read(d, names) -> {name: text}``."""
    stats = S.empty_stats()
    d, version = S.dir_of(manager, "cpu")
    if version == 2:
        stats["cpu"].update(S.cpu_v2(read(d, S.CPU_V2_FILES)))
    else:
        acct = manager._find("cpuacct") if manager.mode != "v2" else None
        if acct is not None:
            stats["cpu"]["usage"] = S.usage_v1(read(acct, ("cpuacct.usage",)))
    for controller, v1_files, v2_files, build_v1, build_v2, key in _SECTIONS:
        d, version = S.dir_of(manager, controller)
        if version == 1:
            texts = read(d, v1_files)
            if key == "blkio":  # the first candidate that counts, as blkio_v1 picks it
                texts = {k: v for k, v in texts.items() if S.parse_blkio(v)}
            stats[key] = build_v1(texts)
        elif version == 2:
            stats[key] = build_v2(read(d, v2_files))
    S.add_psi(manager, stats, read)
    return stats


class BriefReader:
    """``collect_brief`` of one cgroup with its files kept open; call it for a reading,
    ``close()`` it when done."""

    def __init__(self, manager):
        self.manager = manager
        self.fds = {}  # path -> descriptor, or None: absent

    def read(self, d, names):
        out = {}
        for name in names:
            path = f"{d}/{name}"
            fd = self.fds.get(path, -1)
            if fd == -1:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    if e.errno not in _ABSENT:
                        raise
                    fd = None
                self.fds[path] = fd
            if fd is None:
                continue
            try:
                out[name] = os.pread(fd, 1 << 16, 0).decode()
            except OSError as e:
                if e.errno not in _ABSENT:
                    raise
        return out

    def __call__(self):
        return collect_brief(self.manager, self.read)

    def close(self):
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            if fd is not None:
                os.close(fd)
