"""Containers run by kago-oci on root filesystems made by the store: the bundle's rootfs is
the mounted layer stack, as the manager will hand it over. With a user namespace the
idmapped layers show the image's files as the container's own."""

import json
import os
import uuid

import pytest

from kago.storage import IdMap, testkit
from kago.testing import busybox

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]
SCRIPT = ("id -u; stat -c %u /bin/busybox /etc/passwd; echo hi > /written; cat /written; "
          "mkdir /newdir && stat -c %u /newdir")


@pytest.fixture
def store(workdir):
    """A store on the session tmpfs: its parents are traversable, as /var/lib's are."""
    for made in testkit.checked_stores(os.path.join(workdir, f"st-{uuid.uuid4().hex[:8]}")):
        yield made.new()


def bundle_for(workdir, rootfs_path, userns):
    path = os.path.join(workdir, "bundles", f"st-{uuid.uuid4().hex[:10]}")
    os.makedirs(path)
    spec = busybox.default_config(["sh", "-c", SCRIPT])
    spec["root"] = {"path": rootfs_path, "readonly": False}
    if userns:
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = spec["linux"]["gidMappings"] = MAP
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f)
    return path


@pytest.mark.parametrize("userns", [False, True])
def test_kago_oci_runs_a_store_rootfs(oci, store, workdir, rootfs_cache, userns):
    store.import_archive(rootfs_cache, name="bb")
    cid = oci.new_id("st")
    with store:
        r = store.create_rootfs(cid, "bb", idmap=IdMap([(0, 100000, 65536)]) if userns else None)
        proc = oci("run", "--bundle", bundle_for(workdir, r.path, userns), cid)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["0", "0", "0", "hi", "0"], \
            "the container's root owns the image's files and its own new ones"
        upper = os.path.join(store.root, "containers", cid, "upper")
        assert os.stat(os.path.join(upper, "written")).st_uid == (100000 if userns else 0)
        img = store.commit(cid, "bb:after")
        r2 = store.create_rootfs(cid + "-2", img.id)
        assert os.stat(os.path.join(r2.path, "written")).st_uid == 0
        store.remove_rootfs(cid + "-2")
        store.remove_rootfs(cid)
