"""Byte streams for layers: hashing readers and writers, compression sniffed by magic bytes.

A layer blob is hashed as it is read (its digest names it), and its decompressed tar is hashed
too (the config's diff_id): one pass over the bytes does both.
"""

import gzip
import hashlib
import lzma
import os
import zlib

from kago.storage.errors import BadArchive, DigestMismatch

CHUNK = 1 << 20

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
          (b"BZh", "bzip2"))

MEDIA_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TYPES = {None: MEDIA_TAR, "gzip": MEDIA_TAR + "+gzip", "zstd": MEDIA_TAR + "+zstd"}


def sniff(head):
    """The compression of a stream from its first bytes: gzip, xz, zstd, bzip2 or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


class HashingReader:
    """Reads from ``raw`` and hashes what passes; optionally copies it to ``tee``."""

    def __init__(self, raw, tee=None):
        self.raw = raw
        self.tee = tee
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        if self.tee is not None and data:
            self.tee.write(data)
        return data

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def readable(self):
        return True

    def digest(self):
        return "sha256:" + self.hash.hexdigest()

    def drain(self):
        """Read to the end, so the digest covers the whole stream (tar leaves padding)."""
        while self.read(CHUNK):
            pass


class HashingWriter:
    """Writes to ``raw`` and hashes what passes."""

    def __init__(self, raw):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self):
        self.raw.flush()

    def digest(self):
        return "sha256:" + self.hash.hexdigest()


class Peek:
    """A reader whose first bytes were already read to sniff the compression."""

    def __init__(self, raw, head):
        self.raw = raw
        self.head = head

    def read(self, n=-1):
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.raw.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.raw.read(n - len(data))
            return data
        return self.raw.read(n)

    def readable(self):
        return True


def decompressed(raw):
    """(reader of the decompressed bytes, compression kind) for a possibly compressed stream."""
    head = raw.read(6)
    kind = sniff(head)
    src = Peek(raw, head)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=src, mode="rb"), kind
    if kind == "xz":
        return lzma.LZMAFile(src), kind
    if kind == "bzip2":
        import bz2
        return bz2.BZ2File(src), kind
    if kind == "zstd":
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(src, read_across_frames=True), kind
    return src, kind


def corrupt_errors():
    """The exception types a corrupt or truncated compressed stream raises while read."""
    import tarfile
    errs = [EOFError, zlib.error, lzma.LZMAError, OSError, tarfile.TarError, ValueError]
    try:
        import zstandard
        errs.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    return tuple(errs)


def gzip_copy(reader, path, level=3):
    """Compress ``reader`` to a new file ``path`` with gzip; (digest, size) of the file."""
    with open(path, "wb") as raw:
        out = HashingWriter(raw)
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=level, mtime=0) as gz:
            while chunk := reader.read(CHUNK):
                gz.write(chunk)
    return out.digest(), out.size


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def verify_file(path, expected, what):
    actual = sha256_file(path)
    if actual != expected:
        raise DigestMismatch(what, expected, actual)


def check_digest(digest, what):
    """A digest must be sha256:<64 hex>: it becomes a file name in the store."""
    if not (isinstance(digest, str) and digest.startswith("sha256:") and len(digest) == 71
            and all(c in "0123456789abcdef" for c in digest[7:])):
        raise BadArchive(f"{what}: {digest!r} is not a sha256 digest")
    return digest


def hex_of(digest):
    return digest.split(":", 1)[1]


def is_enospc(err):
    return isinstance(err, OSError) and err.errno in (28, 122)  # ENOSPC, EDQUOT


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
