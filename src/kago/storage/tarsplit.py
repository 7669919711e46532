"""A layer's tar without its file contents (docker's "tar-split" idea): what lets the store keep
one copy of a layer, the extracted files, and still give back the exact tar (the same bytes,
so the same diff_id) for save, export and push.

While a layer is applied, every byte of its uncompressed tar passes through a ``Recorder``
(the tee of the hashing reader). The bytes of a regular file's content, which the layer now
holds at that path, are left out and replaced by a reference (path, size); everything else
(headers, pax records, padding, the end blocks, any trailing bytes) is kept as is. The result
is a small gzip file of frames:

    b"R" + u64 length + bytes               raw tar bytes
    b"F" + u64 size + u32 length + path     ``size`` bytes of the layer's file at ``path``

``chunks(split, layer_dir)`` plays it back: raw bytes as they were, file contents read from
the layer (each path resolved inside the layer, as apply wrote it). The store checks at import
that the playback hashes to the layer's diff_id before it drops the blob (a tar that writes a
path twice, for one, cannot be played back: its layer keeps its blob), and checks it again on
every playback.
"""

import collections
import gzip
import os
import struct

from kago.errors import KernelError
from kago.kernel import rooted
from kago.storage.errors import StoreError
from kago.storage.stream import CHUNK

SPLIT_SUFFIX = ".tar-split.gz"  # <store>/layers/<chain hex>.tar-split.gz


_RAW = struct.Struct(">Q")
_FILE = struct.Struct(">QI")
_FLUSH = 1 << 20  # raw bytes kept before a frame is written


class Recorder:
    """Receives a tar stream's bytes in order (``write``) and is told, for each entry, where
    its content lies and whether the layer keeps it (``entry``); writes the split file."""

    def __init__(self, path):
        self.path = path
        self._out = gzip.GzipFile(path, "wb", compresslevel=6, mtime=0)
        self.size = 0              # bytes of tar seen
        self._pending = bytearray()
        self._start = 0            # stream offset of _pending[0]
        self._safe = 0             # bytes before this offset are never file content
        self._ranges = collections.deque()
        self._raw = bytearray()

    def write(self, data):
        self._pending += data
        self.size += len(data)
        self._flush()
        return len(data)

    def entry(self, offset_data, size, path=None):
        """An entry whose data starts at ``offset_data``; ``path``: its content is the layer's
        file there (a regular file, not sparse), else its data stays raw."""
        if path is not None and size > 0 and offset_data >= self._start:
            self._ranges.append((offset_data, offset_data + size, path))
        # (content already passed on as raw bytes stays raw: the tar is still exact)
        self._safe = max(self._safe, offset_data + size)
        self._flush()

    def skip(self):
        """An entry whose data length is not its size (a sparse file): nothing is known to be
        safe beyond what is; its bytes stay raw."""

    def _flush(self, final=False):
        while True:
            end_of_pending = self._start + len(self._pending)
            if self._ranges:
                start, end, path = self._ranges[0]
                limit = start
            else:
                start = end = path = None
                limit = end_of_pending if final else self._safe
            cut = min(limit, end_of_pending) - self._start
            if cut > 0:
                self._raw += self._pending[:cut]
                del self._pending[:cut]
                self._start += cut
                if len(self._raw) >= _FLUSH:
                    self._write_raw()
            if start is None or self._start < start:
                return
            drop = min(end, self._start + len(self._pending)) - self._start
            del self._pending[:drop]
            self._start += drop
            if self._start < end:
                return
            self._write_raw()
            name = path.encode("utf-8", "surrogateescape")
            self._out.write(b"F" + _FILE.pack(end - start, len(name)) + name)
            self._ranges.popleft()

    def _write_raw(self):
        if self._raw:
            self._out.write(b"R" + _RAW.pack(len(self._raw)))
            self._out.write(self._raw)
            self._raw = bytearray()

    def finish(self):
        """Write what is left; the stream has ended. Returns the tar's size."""
        if self._ranges and self._ranges[-1][1] > self.size:
            raise StoreError(f"{self.path}: the tar ended inside a file's content")
        self._flush(final=True)
        self._write_raw()
        self._out.close()
        return self.size

    def abort(self):
        self._out.close()


def chunks(split, layer_dir):
    """The layer's tar again, in chunks: raw frames from ``split``, file contents from the
    layer directory. A file that is missing or shorter than recorded is a StoreError."""
    rootfd = os.open(layer_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with gzip.open(split, "rb") as f:
            while kind := f.read(1):
                if kind == b"R":
                    (left,) = _RAW.unpack(_read(f, _RAW.size, split))
                    while left:
                        data = _read(f, min(left, CHUNK), split)
                        left -= len(data)
                        yield data
                elif kind == b"F":
                    size, length = _FILE.unpack(_read(f, _FILE.size, split))
                    path = _read(f, length, split).decode("utf-8", "surrogateescape")
                    yield from _content(rootfd, path, size, layer_dir)
                else:
                    raise StoreError(f"{split}: corrupt layer index (frame {kind!r}); re-pull "
                                     "or re-import the image")
    finally:
        os.close(rootfd)


def _read(f, n, split):
    data = f.read(n)
    if len(data) != n:
        raise StoreError(f"{split}: truncated layer index; re-pull or re-import the image")
    return data


def _content(rootfd, path, size, layer_dir):
    try:
        fd = rooted.open_in_root(rootfd, path, os.O_RDONLY | os.O_NOFOLLOW)
    except KernelError as e:
        raise StoreError(f"layer {layer_dir}: {path}: {e}") from None
    with open(fd, "rb") as f:
        left = size
        while left:
            data = f.read(min(left, CHUNK))
            if not data:
                raise StoreError(f"layer {layer_dir}: {path} is shorter than the layer's tar "
                                 "recorded (the layer was changed; re-import the image)")
            left -= len(data)
            yield data


class Reader:
    """A file-like view of ``chunks``: ``read(n)`` for tarfile.addfile and uploads; after the
    last byte, ``digest()`` is the sha256 of all that was read."""

    def __init__(self, chunks_iter):
        import hashlib
        self._chunks = chunks_iter
        self._buf = b""
        self._pos = 0
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        want = float("inf") if n is None or n < 0 else n
        out = []
        while want > 0:
            if self._pos >= len(self._buf):
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._buf, self._pos = chunk, 0
            take = self._buf[self._pos:self._pos + want] if want != float("inf") \
                else self._buf[self._pos:]
            self._pos += len(take)
            want -= len(take)
            out.append(take)
        data = b"".join(out)
        self._hash.update(data)
        self.size += len(data)
        return data

    def digest(self):
        return "sha256:" + self._hash.hexdigest()

    def close(self):
        """Stop early: the layer's files are let go."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
