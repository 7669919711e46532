"""Image verbs through `kago` as docker has them: content-addressed image IDs, archives on
stdin/stdout, registries on loopback, and the smaller shapes (rmi, inspect, commit -c)."""

import hashlib
import json
import os
import subprocess

from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)


def _tar(rootfs, path, *flags):
    subprocess.run(["tar", *flags, "--numeric-owner", "-C", rootfs, "-cf", str(path), "."],
                   check=True)
    return path


def _image_ids(kmt):
    return kmt.kago("images", "-q", "--no-trunc", check=True).stdout.split()


def test_importing_the_same_tarball_twice_is_one_image(kmt, tmp_path):
    tar = _tar(kmt.rootfs, tmp_path / "bb.tar")
    diff_id = "sha256:" + hashlib.sha256(tar.read_bytes()).hexdigest()
    gz = _tar(kmt.rootfs, tmp_path / "bb.tgz", "-z")
    first = kmt.kago("import", tar, "kmt-one", check=True).stdout.strip()
    again = kmt.kago("import", tar, "kmt-one", check=True).stdout.strip()
    other = kmt.kago("import", gz, "kmt-two", check=True).stdout.strip()
    assert first == again == other and first.startswith("sha256:")
    doc = kmt.inspect("kmt-two")
    assert doc["Id"] == first and doc["RepoTags"] == ["kmt-one:latest", "kmt-two:latest"]
    assert doc["RootFS"]["Layers"] == [diff_id]  # a layer is its uncompressed tar's digest
    with open(os.path.join(kmt.root, "storage", "blobs", "sha256",
                           first.removeprefix("sha256:")), "rb") as f:
        raw = f.read()
    config = json.loads(raw)
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == first  # the ID is the config's digest
    assert config["rootfs"]["diff_ids"] == [diff_id]
    assert first.removeprefix("sha256:") in _image_ids(kmt)
    assert len([i for i in _image_ids(kmt) if i == first.removeprefix("sha256:")]) == 1
    layers = [e for e in os.listdir(os.path.join(kmt.root, "storage", "layers"))
              if not e.endswith(".json") and e != "empty" and "." not in e]
    assert len(layers) == 2  # busybox imported from a directory, and this tar's one layer
    kmt.kago("rmi", "kmt-one", "kmt-two", check=True)
