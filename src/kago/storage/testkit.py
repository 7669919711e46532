"""Helpers for the storage tests and benchmarks: tars built entry by entry (malicious ones
included), a real registry server on 127.0.0.1, a btrfs on a loop device, a small tmpfs.

Everything here names what it makes on the host with the ``kagotest-st`` prefix and removes
it on exit; processes are stopped by PID with bounded waits.
"""

import contextlib
import gzip
import io
import lzma
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.request

PREFIX = "kagotest-st"


class TarBuilder:
    """A tar made entry by entry, exactly as written (no path cleaning): for tests."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid, gid, xattrs=None, mtime=1_700_000_000):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
        if xattrs:
            info.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                                for k, v in xattrs.items()}
        return info

    def dir(self, name, mode=0o755, uid=0, gid=0, **kw):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, uid, gid, **kw))
        return self

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, **kw):
        data = data.encode() if isinstance(data, str) else data
        info = self._info(name, tarfile.REGTYPE, mode, uid, gid, **kw)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, name, target, uid=0, gid=0):
        info = self._info(name, tarfile.SYMTYPE, 0o777, uid, gid)
        info.linkname = target
        self.tar.addfile(info)
        return self

    def hardlink(self, name, target):
        info = self._info(name, tarfile.LNKTYPE, 0o644, 0, 0)
        info.linkname = target
        self.tar.addfile(info)
        return self

    def device(self, name, major, minor, char=True, mode=0o666):
        info = self._info(name, tarfile.CHRTYPE if char else tarfile.BLKTYPE, mode, 0, 0)
        info.devmajor, info.devminor = major, minor
        self.tar.addfile(info)
        return self

    def fifo(self, name, mode=0o644):
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode, 0, 0))
        return self

    def whiteout(self, name):
        head, _, base = name.rpartition("/")
        return self.file((head + "/" if head else "") + ".wh." + base)

    def opaque(self, dirname):
        return self.file(dirname.rstrip("/") + "/.wh..wh..opq")

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()

    def write(self, path, compression=None):
        return write_compressed(path, self.bytes(), compression)


def write_compressed(path, data, compression=None):
    if compression == "gzip":
        data = gzip.compress(data, mtime=0)
    elif compression == "xz":
        data = lzma.compress(data)
    elif compression == "zstd":
        import zstandard
        data = zstandard.ZstdCompressor().compress(data)
    elif compression is not None:
        raise ValueError(compression)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>, storage in a
    temporary directory; ``with Registry() as reg: reg.host`` is "127.0.0.1:PORT"."""

    BINARY = "/usr/bin/docker-registry"

    def __init__(self, workdir=None):
        self.dir = tempfile.mkdtemp(prefix=PREFIX + "-registry-", dir=workdir)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.proc = None

    def __enter__(self):
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {self.dir}/data\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{self.port}\n")
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen([self.BINARY, "serve", config], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.host}")

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _run(argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def loop_btrfs(mountpoint, size=512 << 20):
    """A btrfs made on a sparse file through a loop device, mounted at ``mountpoint``."""
    image = mountpoint.rstrip("/") + f".{PREFIX}.img"
    with open(image, "wb") as f:
        f.truncate(size)
    loop = None
    mounted = False
    try:
        loop = _run(["losetup", "--find", "--show", image]).stdout.strip()
        _run(["mkfs.btrfs", "-q", "-L", PREFIX, loop])
        os.makedirs(mountpoint, exist_ok=True)
        _run(["mount", "-t", "btrfs", loop, mountpoint])
        mounted = True
        yield mountpoint
    finally:
        if mounted:
            subprocess.run(["umount", mountpoint], check=False, timeout=60)
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False, timeout=60)
        os.unlink(image)


@contextlib.contextmanager
def tmpfs(mountpoint, size="64m"):
    """A tmpfs of ``size`` at ``mountpoint`` (source name: kagotest-st)."""
    os.makedirs(mountpoint, exist_ok=True)
    _run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=755", PREFIX, mountpoint])
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", mountpoint], check=False, timeout=60)


def mounts_under(path):
    """Mount points at or below ``path`` (to assert that nothing was left mounted)."""
    from kago.storage.syscalls import mounts
    path = os.path.realpath(path)
    return [mp for mp, _t, _s in mounts() if mp == path or mp.startswith(path + "/")]


class Stores:
    """Stores made by one test, and the check that they left nothing behind: no mount under
    any store, no staging, no half-downloaded blob."""

    def __init__(self, base):
        self.base = str(base)
        self.made = []

    def new(self, name=None, **kw):
        from kago.storage import Store
        root = os.path.join(self.base, name or f"store{len(self.made)}")
        store = Store(root, **kw)
        self.made.append(store)
        return store

    def leaks(self):
        found = []
        for store in self.made:
            found += [f"mount {m}" for m in mounts_under(store.root)]
            for sub in ("tmp", "downloads"):
                path = os.path.join(store.root, sub)
                if os.path.isdir(path):
                    found += [f"{sub}/{e}" for e in os.listdir(path)]
        return found

    def cleanup(self):
        from kago.storage import syscalls
        for store in self.made:
            for mp in sorted(mounts_under(store.root), key=len, reverse=True):
                syscalls.unmount(mp)
            store.close()
            from kago.storage.drivers import _rmtree
            if os.path.exists(store.root):
                _rmtree(store.root)


def checked_stores(base):
    """For a pytest fixture (``yield from checked_stores(tmp_path)``): a Stores, then the
    check that the test left nothing behind, after everything was cleaned up anyway."""
    made = Stores(base)
    yield made
    leaks = made.leaks()
    made.cleanup()
    assert not leaks, f"test left things behind: {leaks}"


def sha256(data):
    import hashlib
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_layout(path, layer_tars, platforms=None, name=None, config=None, diff_ids=None,
               compress=True):
    """Write an OCI image layout at ``path`` (a directory) with one image per platform in
    ``platforms`` (default: the host's), each made of ``layer_tars`` (tar bytes, bottom first).
    ``diff_ids`` overrides the config's (to make a bad one). Returns {platform: manifest digest}.
    """
    import json

    from kago.storage.model import host_platform
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        digest = sha256(data)
        with open(os.path.join(blobs, digest[7:]), "wb") as f:
            f.write(data)
        return digest, len(data)

    layers = []
    for tar in layer_tars:
        blob = gzip.compress(tar, mtime=0) if compress else tar
        digest, size = put(blob)
        mtype = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        layers.append({"mediaType": mtype, "digest": digest, "size": size})
    entries, out = [], {}
    for os_name, arch in platforms or [host_platform()]:
        cfg = {"architecture": arch, "os": os_name, "config": config or {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers",
                          "diff_ids": diff_ids or [sha256(t) for t in layer_tars]}}
        cdigest, csize = put(json.dumps(cfg).encode())
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": cdigest, "size": csize}, "layers": layers}
        mdigest, msize = put(json.dumps(manifest).encode())
        entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
                 "size": msize, "platform": {"os": os_name, "architecture": arch}}
        if name:
            entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        entries.append(entry)
        out[(os_name, arch)] = mdigest
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": entries}, f)
    return out


class Proxy:
    """An HTTP proxy in front of a registry, run in a thread of the test: it can demand a
    bearer token (served at /token for ``user``/``password``), cut one blob download short
    (``cut_blobs``), corrupt blobs (``corrupt``), and it records the requests it saw.
    ``tls=(certfile, keyfile)`` makes it speak HTTPS only (see ``self_signed``)."""

    def __init__(self, upstream, user=None, password=None, tls=None):
        import http.server
        import threading
        self.upstream = upstream
        self.user, self.password = user, password
        self.token = "kagotest-st-token"
        self.cut_blobs = 0
        self.corrupt = False
        self.seen = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy.handle(self)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls:
            import ssl
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def _send(self, h, status, headers, body=b""):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def handle(self, h):
        import base64
        import http.client
        self.seen.append((h.command, h.path, h.headers.get("Range")))
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        if h.path.startswith("/token"):
            want = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if h.headers.get("Authorization") != want:
                return self._send(h, 401, {}, b'{"errors":[{"code":"DENIED","message":"bad"}]}')
            return self._send(h, 200, {"Content-Type": "application/json"},
                              ('{"token": "%s"}' % self.token).encode())
        if self.user and h.headers.get("Authorization") != f"Bearer {self.token}":
            realm = f"{self.scheme}://{self.host}/token"
            return self._send(h, 401, {"WWW-Authenticate":
                                       f'Bearer realm="{realm}",service="kagotest-st"'},
                              b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}')
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() not in ("host", "authorization", "connection")}
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        out = {k: v for k, v in resp.getheaders()
               if k.lower() not in ("content-length", "connection", "transfer-encoding")}
        if "location" in {k.lower() for k in out}:
            for k in list(out):
                if k.lower() == "location":
                    out[k] = out[k].replace(f"http://{self.upstream}",
                                            f"{self.scheme}://{self.host}")
                    out[k] = out[k].replace(self.upstream, self.host)
        is_blob = h.command == "GET" and "/blobs/sha256:" in h.path and resp.status in (200, 206)
        if is_blob and self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        if is_blob and self.cut_blobs > 0 and len(data) > 1024:
            self.cut_blobs -= 1
            h.send_response(resp.status)
            for k, v in out.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[:len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send(h, resp.status, out, data)


def as_container_root(root, idmap, fn):
    """Run ``fn()`` in a forked child whose cwd is ``root`` and who is root in a user
    namespace with ``idmap`` (none: plain root), as a container's init would be: its file
    operations carry the container's IDs. Raises AssertionError with the child's error."""
    import traceback

    from kago.kernel import consts as C
    from kago.kernel import libc
    from kago.storage import idshift
    nsfd = idshift.make_userns(idmap) if idmap else None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(r)
            os.chdir(root)  # before the user namespace: the host's parents stay traversable
            if nsfd is not None:
                libc.setns(nsfd, C.CLONE_NEWUSER)
                os.setgroups([])
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            fn()
            status = 0
        except BaseException:  # noqa: BLE001 - reported to the parent
            os.write(w, traceback.format_exc().encode()[-4000:])
        finally:
            os._exit(status)
    os.close(w)
    try:
        err = b""
        while chunk := os.read(r, 4096):
            err += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
        if nsfd is not None:
            os.close(nsfd)
    if status != 0:
        raise AssertionError(f"in the container: {err.decode(errors='replace')}")


def self_signed(directory, name="127.0.0.1"):
    """A self-signed certificate and key for ``name`` (an IP address) in ``directory``:
    (certfile, keyfile), for a TLS ``Proxy``."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-subj", f"/CN={name}", "-addext", f"subjectAltName=IP:{name}",
          "-keyout", key, "-out", cert])
    return cert, key
