"""The registry client against a real registry server (Debian's docker-registry, started here
on 127.0.0.1), with a proxy in front for token auth, broken downloads and corrupt blobs."""

import hashlib
import json
import os
import urllib.request

import pytest

from kago.storage import (
    DigestMismatch,
    ImageNotFound,
    PlatformNotFound,
    RegistryError,
    registry,
    testkit,
)
from kago.storage.store import host_platform

pytestmark = pytest.mark.skipif(not os.path.exists(testkit.Registry.BINARY),
                                reason="docker-registry is not installed")

LAYERS = [testkit.TarBuilder().dir("etc").file("etc/one", os.urandom(64 << 10)).bytes(),
          testkit.TarBuilder().dir("etc").file("etc/two", "2").bytes()]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with testkit.Registry(str(tmp_path_factory.mktemp("registry"))) as reg:
        yield reg


@pytest.fixture
def stores(tmp_path):
    yield from testkit.checked_stores(tmp_path)


@pytest.fixture
def source(stores, tmp_path):
    """A store holding a two-layer image named app:1."""
    store = stores.new("source")
    testkit.oci_layout(str(tmp_path / "layout"), LAYERS, name="app:1")
    store.import_oci(str(tmp_path / "layout"), name="app:1")
    return store


def test_push_then_pull_gives_the_same_image(server, source, stores):
    digest = registry.push(source, "app:1", f"{server.host}/kagotest/app:1", insecure=True)
    assert digest.startswith("sha256:")
    dest = stores.new("dest")
    img = registry.pull(dest, f"{server.host}/kagotest/app:1", insecure=True)
    assert img.id == source.image("app:1").id
    assert img.names == [f"{server.host}/kagotest/app:1"]
    by_digest = registry.pull(dest, f"{server.host}/kagotest/app@{digest}", insecure=True)
    assert by_digest.id == img.id
    with dest:
        r = dest.create_rootfs("c1", img.id)
        assert sorted(os.listdir(os.path.join(r.path, "etc"))) == ["one", "two"]
        dest.remove_rootfs("c1")


def test_push_and_pull_skip_blobs_already_there(server, source, stores):
    with testkit.Proxy(server.host) as proxy:
        registry.push(source, "app:1", f"{proxy.host}/kagotest/skip:1", insecure=True)
        proxy.seen.clear()
        registry.push(source, "app:1", f"{proxy.host}/kagotest/skip:2", insecure=True)
        assert not [s for s in proxy.seen if s[0] in ("POST", "PATCH")], "no blob re-sent"
        dest = stores.new("dest")
        registry.pull(dest, f"{proxy.host}/kagotest/skip:1", insecure=True)
        proxy.seen.clear()
        registry.pull(dest, f"{proxy.host}/kagotest/skip:2", insecure=True)
        fetched = [p for m, p, _r in proxy.seen if m == "GET" and "/blobs/" in p]
        assert len(fetched) == 1, f"only the config is fetched again: {fetched}"


def test_token_auth(server, source, stores):
    with testkit.Proxy(server.host, user="kago", password="s3cret") as proxy:
        ref = f"{proxy.host}/kagotest/auth:1"
        with pytest.raises(RegistryError, match="401"):
            registry.push(source, "app:1", ref, insecure=True, auth=("kago", "wrong"))
        registry.push(source, "app:1", ref, insecure=True, auth=("kago", "s3cret"))
        assert any(p.startswith("/token") for _m, p, _r in proxy.seen)
        img = registry.pull(stores.new("dest"), ref, insecure=True, auth=("kago", "s3cret"))
        assert img.id == source.image("app:1").id


def test_a_broken_download_resumes(server, source, stores):
    registry.push(source, "app:1", f"{server.host}/kagotest/resume:1", insecure=True)
    dest = stores.new("dest")
    with testkit.Proxy(server.host) as proxy:
        proxy.cut_blobs = 1
        ref = f"{proxy.host}/kagotest/resume:1"
        with pytest.raises(RegistryError, match="broke off after .* pull again to resume"):
            registry.pull(dest, ref, insecure=True)
        partial = os.listdir(os.path.join(dest.root, "downloads"))
        assert len(partial) == 1 and partial[0].endswith(".partial")
        assert dest.images() == []
        proxy.seen.clear()
        img = registry.pull(dest, ref, insecure=True)
        ranges = [r for _m, _p, r in proxy.seen if r]
        assert ranges and ranges[0].startswith("bytes=") and ranges[0] != "bytes=0-"
        assert img.id == source.image("app:1").id


def test_a_corrupt_blob_is_refused_and_leaves_nothing(server, source, stores):
    registry.push(source, "app:1", f"{server.host}/kagotest/corrupt:1", insecure=True)
    dest = stores.new("dest")
    with testkit.Proxy(server.host) as proxy:
        proxy.corrupt = True
        with pytest.raises(DigestMismatch):
            registry.pull(dest, f"{proxy.host}/kagotest/corrupt:1", insecure=True)
    assert dest.images() == []
    assert os.listdir(os.path.join(dest.root, "blobs/sha256")) == []


def _put(server, path, body, kind):
    req = urllib.request.Request(f"http://{server.host}{path}", data=body, method="PUT",
                                 headers={"Content-Type": kind})
    urllib.request.urlopen(req, timeout=10).close()


def _index_for(server, source, repo, platforms):
    """Push app:1's manifest by digest and an index listing it under ``platforms``."""
    digest = registry.push(source, "app:1", f"{server.host}/{repo}:single", insecure=True)
    manifest = urllib.request.urlopen(urllib.request.Request(
        f"http://{server.host}/v2/{repo}/manifests/{digest}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}), timeout=10).read()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digest
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": digest, "size": len(manifest),
                            "platform": {"os": o, "architecture": a}} for o, a in platforms]}
    _put(server, f"/v2/{repo}/manifests/multi", json.dumps(index).encode(),
         "application/vnd.oci.image.index.v1+json")


def test_an_index_picks_the_host_platform(server, source, stores):
    _index_for(server, source, "kagotest/multi", [("linux", "arm64"), host_platform()])
    img = registry.pull(stores.new("dest"), f"{server.host}/kagotest/multi:multi",
                        insecure=True)
    assert img.id == source.image("app:1").id


def test_an_index_for_other_platforms_only_is_refused(server, source, stores):
    _index_for(server, source, "kagotest/arm", [("linux", "arm64"), ("linux", "ppc64le")])
    dest = stores.new("dest")
    with pytest.raises(PlatformNotFound, match="linux/arm64, linux/ppc64le"):
        registry.pull(dest, f"{server.host}/kagotest/arm:multi", insecure=True)
    assert dest.images() == []


def test_unknown_image_and_unreachable_registry(server, stores):
    dest = stores.new("dest")
    with pytest.raises(ImageNotFound, match="the registry has no such manifest"):
        registry.pull(dest, f"{server.host}/kagotest/nothing:1", insecure=True)
    port = testkit.free_port()
    with pytest.raises(RegistryError, match=f"registry 127.0.0.1:{port}: .*refused"):
        registry.pull(dest, f"127.0.0.1:{port}/x:1", insecure=True)


def test_verified_https_when_asked_and_a_plain_http_answer_names_the_fix(server, source,
                                                                          stores, tmp_path):
    dest = stores.new("dest")
    with pytest.raises(RegistryError) as err:
        registry.pull(dest, f"{server.host}/kagotest/app:1", insecure=False)
    assert str(err.value) == (f"registry {server.host}: it answers plain HTTP, not HTTPS "
                              "(wrong version number); if it is an HTTP registry you trust, "
                              "use --insecure")
    with testkit.Proxy(server.host, tls=testkit.self_signed(str(tmp_path))) as proxy:
        with pytest.raises(RegistryError, match="certificate verify failed"):
            registry.push(source, "app:1", f"{proxy.host}/kagotest/tls:1", insecure=False)
        registry.push(source, "app:1", f"{proxy.host}/kagotest/tls:1")  # loopback: unverified
        assert proxy.seen
    assert dest.images() == []
