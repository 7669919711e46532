"""Image references and container IDs: what the store accepts as names, and how."""

import pytest

from kago.storage import StoreError, reference


@pytest.mark.parametrize("text, name", [
    ("busybox", "busybox:latest"),
    ("busybox:1.36", "busybox:1.36"),
    ("team/app:v1", "team/app:v1"),
    ("127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest"),
    ("localhost/x:y", "localhost/x:y"),
    ("registry.example.com/a/b/c:1.0-rc_1", "registry.example.com/a/b/c:1.0-rc_1"),
    ("busybox@sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
])
def test_names_are_normalized_with_a_tag(text, name):
    assert reference.normalize(text) == name


@pytest.mark.parametrize("bad", ["", "Busybox", "a b", "../x", "x:", ":tag", "x@sha256:12",
                                 "a//b", "-a", "x:" + "t" * 129, None, 5, "a/" * 200 + "b"])
def test_bad_references_are_one_clear_error(bad):
    with pytest.raises(StoreError, match="invalid image reference"):
        reference.parse(bad)


def test_first_component_is_a_registry_only_if_it_looks_like_a_host():
    assert reference.parse("team/app").domain is None
    assert reference.parse("team/app").path == "team/app"
    assert reference.parse("reg.io/app").domain == "reg.io"
    assert reference.parse("reg:5000/app").domain == "reg:5000"


def test_remote_defaults_to_docker_hub_library():
    assert reference.parse("busybox").remote() == ("registry-1.docker.io", "library/busybox",
                                                   "latest")
    assert reference.parse("127.0.0.1:5000/a/b:2").remote() == ("127.0.0.1:5000", "a/b", "2")
    digest = "sha256:" + "b" * 64
    assert reference.parse(f"x/y:1@{digest}").remote()[2] == digest


def test_ids_and_prefixes():
    assert reference.looks_like_id("abc")
    assert reference.looks_like_id("sha256:" + "0" * 64)
    assert not reference.looks_like_id("ab")
    assert not reference.looks_like_id("busybox")


@pytest.mark.parametrize("cid", ["c1", "A.b-c_d+e", "x" * 128])
def test_valid_container_ids(cid):
    assert reference.validate_cid(cid) == cid


@pytest.mark.parametrize("cid", ["", ".", "..", "../x", "a/b", "-a", "x" * 129, "a b", None])
def test_container_ids_never_become_paths(cid):
    with pytest.raises(StoreError, match="invalid container id"):
        reference.validate_cid(cid)


def test_a_64_digit_hex_name_is_refused_as_it_would_read_as_an_image_id():
    with pytest.raises(StoreError, match="64-digit hex"):
        reference.normalize("a" * 64)
    with pytest.raises(StoreError, match="64-digit hex"):
        reference.normalize("reg.io/" + "a" * 64 + ":1")
    assert reference.normalize("team/" + "a" * 64) == "team/" + "a" * 64 + ":latest"
    assert reference.normalize("a" * 63) == "a" * 63 + ":latest"
