"""Pure parts of the store: ID maps, chain IDs, challenges, platform choice, mountinfo."""

import pytest

from kago.storage import (
    IdMap,
    PlatformNotFound,
    StoreError,
    oci,
    registry,
    stream,
    syscalls,
)
from kago.storage.store import chain_id


def test_idmap_translates_both_ways_and_reports_unmapped():
    m = IdMap([(0, 100000, 1000), (1000, 200000, 10)], [(0, 300000, 65536)])
    assert m.uid_to_host(0) == 100000 and m.uid_to_host(1005) == 200005
    assert m.uid_to_host(1010) is None
    assert m.uid_to_container(200009) == 1009 and m.uid_to_container(5) is None
    assert m.gid_to_host(65535) == 365535 and m.gid_to_container(300001) == 1
    assert m.root() == (100000, 300000)


def test_idmap_gids_default_to_uids_and_roundtrip_json():
    m = IdMap.shifted(100000)
    assert m.gids == m.uids == [(0, 100000, 65536)]
    assert IdMap.from_json(m.to_json()) == m
    assert m.key() == "u0:100000:65536,g0:100000:65536"


@pytest.mark.parametrize("ranges", [[], [(0, 1)], [(0, -1, 5)], [(0, 1, 0)], "x",
                                    [(0, 100, 10), (5, 1000, 10)],
                                    [(0, 100, 10), (50, 105, 10)], [(0, 2**32 - 2, 2)]])
def test_bad_idmaps_are_refused(ranges):
    with pytest.raises(StoreError, match="idmap uids"):
        IdMap(ranges)


def test_chain_id_follows_the_oci_definition():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    import hashlib
    assert chain_id(None, a) == a
    assert chain_id(a, b) == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()


def test_bearer_challenge_is_parsed():
    scheme, params = registry.parse_challenge(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example/token", "service": "reg",
                      "scope": "repository:a/b:pull,push"}
    assert registry.parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_platform_is_picked_from_an_index_or_refused_naming_what_there_is():
    index = {"manifests": [
        {"digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "2" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert oci.pick_platform(index, ("linux", "amd64"), "x")["digest"].endswith("2" * 64)
    with pytest.raises(PlatformNotFound, match=r"linux/s390x .*linux/arm64, linux/amd64"):
        oci.pick_platform(index, ("linux", "s390x"), "x")


def test_media_type_is_inferred_when_missing():
    assert oci.media_type({"manifests": []}) == oci.MEDIA_OCI_INDEX
    assert oci.media_type({"layers": []}) == oci.MEDIA_OCI_MANIFEST
    assert oci.media_type({"mediaType": "x"}) == "x"


def test_compression_is_sniffed_from_magic_bytes():
    assert stream.sniff(b"\x1f\x8b\x08") == "gzip"
    assert stream.sniff(b"\xfd7zXZ\x00") == "xz"
    assert stream.sniff(b"\x28\xb5\x2f\xfd") == "zstd"
    assert stream.sniff(b"BZh9") == "bzip2"
    assert stream.sniff(b"etc/\x00\x00") is None


def test_digests_are_checked_before_they_become_file_names():
    assert stream.check_digest("sha256:" + "f" * 64, "x")
    for bad in ("sha256:../../etc", "md5:" + "f" * 32, "sha256:" + "F" * 64, None):
        with pytest.raises(StoreError):
            stream.check_digest(bad, "x")


def test_mountinfo_is_parsed_with_escapes(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "40 22 0:40 / /tmp/a\\040b rw,relatime shared:5 - overlay overlay rw,lowerdir=x\n")
    assert syscalls.mounts(str(info)) == [("/", "ext4", "/dev/sda1"),
                                          ("/tmp/a b", "overlay", "overlay")]
