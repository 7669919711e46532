"""Image references: ``[registry[:port]/]path[:tag][@sha256:hex]`` (the distribution grammar).

Names in the store are kept as written plus a tag (``busybox`` is stored as ``busybox:latest``);
no ``docker.io/library/`` is added locally, so what a user typed is what ``images`` shows.
Registry operations resolve the registry part: ``busybox`` there means Docker Hub's
``library/busybox``.
"""

import re

from kago.storage.errors import StoreError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*"
           r"[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")  # a name or [IPv6], and a port
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_REF = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
                  rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_TAG = "latest"
DOCKER_HUB = "registry-1.docker.io"


class Reference:
    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain, path, tag, digest):
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def repository(self):
        """``[domain/]path``, without tag or digest."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def name(self):
        """The store name: repository plus tag (``latest`` when neither tag nor digest)."""
        if self.digest and not self.tag:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or DEFAULT_TAG}"

    def remote(self):
        """(registry host, repository path on it, tag-or-digest) for the distribution API."""
        domain, path = self.domain, self.path
        if domain is None or domain in ("docker.io", "index.docker.io"):
            domain = DOCKER_HUB
            if "/" not in path:
                path = "library/" + path
        return domain, path, self.digest or self.tag or DEFAULT_TAG

    def __str__(self):
        out = self.repository
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out


def parse(ref):
    """Parse an image reference; StoreError (naming it) if it is not one."""
    m = _REF.match(ref) if isinstance(ref, str) and len(ref) <= 255 else None
    if m is None:
        raise StoreError(f"invalid image reference {ref!r} (expected name[:tag], lower case, "
                         "e.g. busybox:latest or 127.0.0.1:5000/team/app:1.0)")
    domain = m.group("domain")
    path = m.group("path")
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        path = f"{domain}/{path}"  # 'team/app': the first part is a path, not a registry
        domain = None
    if HEX64.match(path):
        raise StoreError(f"invalid image reference {ref!r}: a 64-digit hex name would read as "
                         "an image ID (as docker, kago refuses it)")
    return Reference(domain, path, m.group("tag"), m.group("digest"))


def normalize(name):
    """The stored form of a name: ``busybox`` -> ``busybox:latest``."""
    return parse(name).name()


def looks_like_id(ref):
    """An image ID or an unambiguous-looking prefix of one (``sha256:`` allowed)."""
    text = ref.removeprefix("sha256:")
    return 3 <= len(text) <= 64 and all(c in "0123456789abcdef" for c in text)


_CID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")


def validate_cid(cid):
    """Container IDs become directory names: letters, digits, ``_.+-``, not starting with a
    symbol, at most 128 characters."""
    if not isinstance(cid, str) or not _CID.match(cid):
        raise StoreError(f"invalid container id {cid!r} (use letters, digits and _.+-, "
                         "starting with a letter or digit, at most 128 characters)")
    return cid
