"""A client for the OCI distribution API (registries): pull and push images.

    from kago.storage import Store, registry
    img = registry.pull(store, "127.0.0.1:5000/busybox:latest", insecure=True)
    registry.push(store, "busybox:latest", "127.0.0.1:5000/team/busybox:1", insecure=True)

- Manifests are asked for in every form a registry may hold (OCI index and manifest, Docker
  manifest list and v2 manifest); an index picks the host's platform.
- Auth: anonymous first; on 401 the ``WWW-Authenticate`` challenge says how: ``Bearer``
  (token from its realm, with ``auth=(user, password)`` as basic credentials if given) or
  ``Basic``. Tokens are kept per scope for the client's life.
- Resumable by blob: a pull fetches only blobs the store lacks, and continues a blob whose
  download broke off (``Range`` from the bytes kept in <root>/downloads); a push uploads only
  blobs the registry lacks (``HEAD`` first). Every blob is checked against its digest.
- Transport, as docker's: a registry is reached over HTTPS with a verified certificate,
  except an insecure one: ``insecure=True``, or by default (``insecure=None``) one on
  loopback (127.0.0.0/8, ::1, localhost), as docker treats 127.0.0.0/8 (and localhost, which
  resolves there). An insecure registry is tried over HTTPS without verifying its
  certificate first, then over plain HTTP if HTTPS does not answer (docker's endpoint
  order). ``insecure=False`` insists on verified HTTPS even on loopback. A registry that
  answers HTTPS with plain HTTP is one error line naming ``--insecure``.
"""

import base64
import hashlib
import http.client
import ipaddress
import json
import os
import ssl
import urllib.parse

from kago.storage import oci, reference
from kago.storage.errors import DigestMismatch, ImageNotFound, RegistryError, StoreError
from kago.storage.stream import CHUNK, check_digest, hex_of, sha256_file

ACCEPT = ", ".join([oci.MEDIA_OCI_INDEX, oci.MEDIA_OCI_MANIFEST, oci.MEDIA_DOCKER_LIST,
                    oci.MEDIA_DOCKER_MANIFEST])
TIMEOUT = 60.0
MAX_REDIRECTS = 5


def parse_challenge(header):
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params, key, i = {}, None, 0
    rest = rest.strip()
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lstrip(",").strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = rest.find('"', i + 1)
            end = len(rest) if end < 0 else end
            params[key] = rest[i + 1:end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
        while i < len(rest) and rest[i] in ", ":
            i += 1
    return scheme.lower(), params


class Response:
    __slots__ = ("body", "conn", "headers", "raw", "status")

    def __init__(self, status, headers, conn, raw):
        self.status = status
        self.headers = headers
        self.conn = conn
        self.raw = raw

    def read_all(self, limit=oci.MAX_JSON):
        data = self.raw.read(limit + 1)
        self.close()
        if len(data) > limit:
            raise RegistryError("registry answer too large")
        return data

    def close(self):
        self.conn.close()


def host_name(host):
    """The name or address in "name[:port]" / "[v6][:port]"."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if ":" in host else host


def is_loopback(host):
    """A registry host on this machine's loopback: 127.0.0.0/8, ::1 or localhost."""
    name = host_name(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_for(host, insecure=None):
    """Whether ``host`` is an insecure registry: as asked, else loopback ones (docker's
    default: 127.0.0.0/8 is an insecure registry range)."""
    return is_loopback(host) if insecure is None else bool(insecure)


PLAIN_HTTP_REASONS = ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                      "HTTP_REQUEST", "UNKNOWN_PROTOCOL")


class Client:
    """One registry host and repository."""

    def __init__(self, host, repository, insecure=None, auth=None, timeout=TIMEOUT):
        self.host = host
        self.repository = repository
        self.insecure = insecure_for(host, insecure)
        self.auth = auth
        self.timeout = timeout
        self._scheme = None if self.insecure else "https"
        self._tokens = {}      # scope -> Authorization header value
        self._basic = None

    @property
    def scheme(self):
        """https, or for an insecure registry the first of https (unverified), http that
        answers GET /v2/ (docker's order)."""
        if self._scheme is None:
            self._scheme = "https"
            try:
                self._send("GET", f"https://{self.host}/v2/", {}, None, None, None).close()
            except RegistryError:
                self._scheme = "http"
        return self._scheme

    def url(self, path):
        return f"{self.scheme}://{self.host}/v2/{self.repository}/{path}"

    def _connection(self, parts, origin):
        if parts.scheme != "https":
            return http.client.HTTPConnection(parts.netloc, timeout=self.timeout)
        context = None
        if self.insecure and parts.netloc == origin:  # redirects elsewhere are verified
            context = ssl._create_unverified_context()  # noqa: S323 - an insecure registry
        return http.client.HTTPSConnection(parts.netloc, timeout=self.timeout, context=context)

    # --- transport ----------------------------------------------------------------------------

    def request(self, method, url, headers=None, body=None, scope="pull", ok=(200,),
                length=None):
        """Send a request, answering an auth challenge once and following redirects; raise
        RegistryError unless the status is in ``ok``. ``body`` may be bytes or a file."""
        headers = dict(headers or {})
        for attempt in range(2):
            auth = self._tokens.get(scope) or self._basic
            resp = self._send(method, url, headers, body, auth, length)
            if resp.status == 401 and attempt == 0:
                challenge = resp.headers.get("www-authenticate", "")
                resp.close()
                self._answer(challenge, scope)
                if hasattr(body, "seek"):
                    body.seek(0)
                continue
            break
        if resp.status not in ok:
            raise self._error(method, url, resp)
        return resp

    def _send(self, method, url, headers, body, auth, length):
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            conn = self._connection(parts, origin)
            sent = dict(headers)
            if auth and parts.netloc == origin:  # credentials never go to another host
                sent["Authorization"] = auth
            if length is not None:
                sent["Content-Length"] = str(length)
            elif body is not None and isinstance(body, (bytes, bytearray)):
                sent["Content-Length"] = str(len(body))
            elif body is None and method in ("PUT", "POST", "PATCH"):
                sent["Content-Length"] = "0"
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request(method, path, body=body, headers=sent)
                raw = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                if isinstance(e, ssl.SSLError) and e.reason in PLAIN_HTTP_REASONS:
                    raise RegistryError(
                        f"registry {self.host}: it answers plain HTTP, not HTTPS "
                        f"({_describe(e)}); if it is an HTTP registry you trust, use "
                        "--insecure") from None
                raise RegistryError(f"registry {self.host}: {method} {parts.path}: "
                                    f"{_describe(e)}") from None
            lowered = {k.lower(): v for k, v in raw.getheaders()}
            if raw.status in (301, 302, 303, 307, 308) and "location" in lowered:
                url = urllib.parse.urljoin(url, lowered["location"])
                raw.read()
                conn.close()
                if raw.status == 303:
                    method, body = "GET", None
                continue
            return Response(raw.status, lowered, conn, raw)
        raise RegistryError(f"registry {self.host}: too many redirects for {method} {url}")

    def _answer(self, challenge, scope):
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.auth:
                raise RegistryError(f"registry {self.host} asks for a user and password "
                                    "(give auth=(user, password))")
            self._basic = _basic(self.auth)
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.host}: unsupported auth challenge "
                                f"{challenge!r:.120}")
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or \
            f"repository:{self.repository}:{'pull,push' if scope == 'push' else 'pull'}"
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + \
            urllib.parse.urlencode({k: v for k, v in query.items() if v})
        headers = {"Authorization": _basic(self.auth)} if self.auth else {}
        resp = self._send("GET", url, headers, None, None, None)
        if resp.status != 200:
            raise self._error("GET", url, resp, what="token")
        try:
            doc = json.loads(resp.read_all())
            token = doc.get("token") or doc["access_token"]
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"registry {self.host}: the token service answered "
                                "no token") from None
        self._tokens[scope] = f"Bearer {token}"

    def _error(self, method, url, resp, what=None):
        try:
            body = resp.read_all(64 << 10)
        except RegistryError:
            body = b""
        detail = ""
        try:
            errs = json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".lower()
                               for e in errs if isinstance(e, dict))
        except (ValueError, AttributeError):
            detail = body[:200].decode("utf-8", "replace").strip()
        path = urllib.parse.urlsplit(url).path
        if resp.status == 401:
            detail = detail or "unauthorized"
            detail += " (check the credentials)"
        return RegistryError(f"registry {self.host}: {what or method} {path}: "
                             f"{resp.status}{' ' + detail if detail else ''}")

    # --- API ----------------------------------------------------------------------------------

    def manifest(self, ref):
        """(body bytes, media type, digest) of manifest ``ref`` (tag or digest)."""
        try:
            resp = self.request("GET", self.url(f"manifests/{ref}"), {"Accept": ACCEPT})
        except RegistryError as e:
            if ": 404" in str(e):
                raise ImageNotFound(f"{self.host}/{self.repository}:{ref}",
                                    "the registry has no such manifest; check the name and "
                                    "tag") from None
            raise
        kind = resp.headers.get("content-type", "").split(";")[0].strip()
        body = resp.read_all()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if ref.startswith("sha256:") and digest != ref:
            raise DigestMismatch(f"registry {self.host}: manifest", ref, digest)
        return body, kind, digest

    def blob_bytes(self, digest):
        data = self.request("GET", self.url(f"blobs/{digest}")).read_all()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(f"registry {self.host}: blob", digest, actual)
        return data

    def download(self, digest, path):
        """Fetch blob ``digest`` into ``path``, continuing a partial file there; checked."""
        have = os.path.getsize(path) if os.path.exists(path) else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self.request("GET", self.url(f"blobs/{digest}"), headers, ok=(200, 206, 416))
        try:
            if resp.status == 416:  # nothing left to fetch: the partial file is whole
                resp.close()
            else:
                mode = "ab" if resp.status == 206 else "wb"
                expected = resp.headers.get("content-length")
                got = 0
                with open(path, mode) as f:
                    while chunk := resp.raw.read(CHUNK):
                        f.write(chunk)
                        got += len(chunk)
                if expected is not None and got != int(expected):
                    # http.client's read(n) returns b"" when the peer closes early
                    raise http.client.IncompleteRead(b"", int(expected) - got)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as e:
            raise RegistryError(f"registry {self.host}: download of blob {digest[:19]} broke "
                                f"off after {os.path.getsize(path)} bytes ({_describe(e)}); "
                                "pull again to resume it") from None
        finally:
            resp.close()
        actual = sha256_file(path)
        if actual != digest:
            os.unlink(path)  # wrong bytes are not worth resuming
            raise DigestMismatch(f"registry {self.host}: blob", digest, actual)

    def has_blob(self, digest):
        resp = self.request("HEAD", self.url(f"blobs/{digest}"), scope="push", ok=(200, 404))
        resp.close()
        return resp.status == 200

    def upload(self, digest, path):
        resp = self.request("POST", self.url("blobs/uploads/"), scope="push", ok=(202,))
        location = resp.headers.get("location")
        resp.close()
        if not location:
            raise RegistryError(f"registry {self.host}: no upload location for {digest}")
        url = urllib.parse.urljoin(self.url("blobs/uploads/"), location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        with open(path, "rb") as f:
            self.request("PUT", url, {"Content-Type": "application/octet-stream"}, f,
                         scope="push", ok=(201, 204), length=os.path.getsize(path)).close()

    def put_manifest(self, ref, body, kind):
        self.request("PUT", self.url(f"manifests/{ref}"), {"Content-Type": kind}, body,
                     scope="push", ok=(201, 204)).close()


def _basic(auth):
    user, password = auth
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _describe(err):
    if isinstance(err, ssl.SSLError) and err.reason:
        return err.reason.lower().replace("_", " ")
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.lower()


def _client(ref, insecure, auth):
    r = reference.parse(ref)
    host, repo, tag = r.remote()
    return r, Client(host, repo, insecure, auth), tag


def pull(store, ref, insecure=None, auth=None):
    """Pull ``ref`` (``host[:port]/repo[:tag|@digest]``) into ``store``; the image is named
    ``ref`` (with ``:latest`` added when no tag is given). Returns its ImageInfo.
    ``insecure``: see the module docstring (None: loopback registries are insecure)."""
    from kago.storage.model import host_platform
    r, client, tag = _client(ref, insecure, auth)
    what = f"{client.host}/{client.repository}:{tag}"
    cache = {}

    def load(digest):
        if digest not in cache:
            body, _, _ = client.manifest(digest)
            cache[digest] = body
        return cache[digest]

    body, _kind, digest = client.manifest(tag)
    cache[digest] = body
    manifest, _ = oci.resolve_manifest(load, {"digest": digest}, host_platform(), what)
    cdigest = check_digest((manifest.get("config") or {}).get("digest"), f"{what}: config")
    config = client.blob_bytes(cdigest)
    oci.check_config_platform(oci.parse_json(config, f"{what}: image config"), host_platform(),
                              what)
    layers = oci._manifest_layers(manifest, what)
    downloads = store._p("downloads")
    os.makedirs(downloads, mode=0o700, exist_ok=True)
    fetched = []

    def fetch(index, desc):
        """Completed blobs stay in <root>/downloads until the image is in the store, so a
        pull that fails later (another blob, a full disk) does not fetch them again."""
        from kago.storage.model import Layer
        complete = os.path.join(downloads, hex_of(desc[0]))
        if not os.path.exists(complete):
            client.download(desc[0], complete + ".partial")
            os.rename(complete + ".partial", complete)
        fetched.append(complete)
        staged = stage.path(f"blob-{hex_of(desc[0])}")
        os.link(complete, staged)
        return Layer(desc[0], os.path.getsize(staged), desc[1], path=staged)

    with store.staging() as stage:
        image = oci.build_image(store, stage, config, layers, fetch, [r.name()], what)
    for path in fetched:
        os.unlink(path)
    image.digest = digest
    return image


def push(store, ref, dest_ref, insecure=None, auth=None):
    """Push image ``ref`` to ``dest_ref`` (``host[:port]/repo[:tag]``); blobs the registry has
    are not sent again. Returns the manifest's digest."""
    rec = store._find(ref)
    r, client, tag = _client(dest_ref, insecure, auth)
    if r.digest:
        raise StoreError(f"push to {dest_ref}: give a tag, not a digest")
    layers = [_push_layer(store, client, chain, source)
              for chain, source in zip(rec["chain"], rec["layers"])]
    if not client.has_blob(rec["config"]):
        client.upload(rec["config"], store.blob_path(rec["config"]))
    body = oci.manifest_of(store, rec, layers)
    client.put_manifest(tag, body, oci.MEDIA_OCI_MANIFEST)
    return "sha256:" + hashlib.sha256(body).hexdigest()


OCI_LAYER_TYPE = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip":
        "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}


def _push_layer(store, client, chain, source):
    """The descriptor of layer ``chain`` in the registry, uploading it if the registry lacks
    it. A blob the registry already has is used as is: the one the layer came as (pulled or
    imported; a blob is known by its tar, whoever compressed it) or the one kago pushed
    before. Otherwise the layer's tar is played back, gzip-compressed into staging (as
    docker pushes), uploaded, and its descriptor kept for the next push."""
    from kago.storage.stream import MEDIA_TYPES, gzip_copy
    pushed = store.pushed_blob(chain)
    for desc in (source, pushed):
        if desc and desc.get("digest") and client.has_blob(desc["digest"]):
            # the manifest is OCI's: docker's name for a gzip layer is OCI's gzip layer
            kind = OCI_LAYER_TYPE.get(desc["media_type"], desc["media_type"])
            return {"mediaType": kind, "digest": desc["digest"], "size": desc["size"]}
    with store.staging() as stage:
        out = stage.path("layer.tar.gz")
        tar = store.layer_tar(chain)
        digest, size = gzip_copy(tar, out)
        tar.check()
        desc = {"media_type": MEDIA_TYPES["gzip"], "digest": digest, "size": size}
        if not client.has_blob(digest):
            client.upload(digest, out)
    store.remember_pushed_blob(chain, desc)
    return {"mediaType": desc["media_type"], "digest": digest, "size": size}
