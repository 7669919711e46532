"""Image verbs through `kago` as docker has them: content-addressed image IDs, archives on
stdin/stdout, registries on loopback, and the smaller shapes (rmi, inspect, commit -c)."""

import hashlib
import json
import os
import subprocess
import tarfile

import pytest

from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)
from kago.storage import testkit


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


def _kago_io(kmt, *args, stdin=None, stdout=None):
    """`kago ARGS` with files (or fds) as its standard input and output."""
    return subprocess.run([KAGO, *map(str, args)], stdin=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, env=kmt.env, timeout=60, check=False)


def test_save_load_and_import_through_pipes(kmt, tmp_path):
    archive = tmp_path / "bb.tar"
    with open(archive, "wb") as f:
        proc = _kago_io(kmt, "save", "busybox", stdout=f)
    assert proc.returncode == 0, proc.stderr
    names = subprocess.run(["tar", "-tf", archive], capture_output=True, text=True,
                           check=True).stdout.split()
    assert "manifest.json" in names and "index.json" in names
    busybox = kmt.inspect("busybox")["Id"]
    kmt.kago("tag", "busybox", "kmt-other", check=True)
    kmt.kago("rmi", "busybox", check=True)  # the name only
    with open(archive, "rb") as f:
        proc = subprocess.run([KAGO, "load"], stdin=f, capture_output=True, text=True,
                              env=kmt.env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loaded image: busybox:latest\n"  # the archive's name, not others
    assert kmt.inspect("busybox")["Id"] == busybox  # the same image back
    assert kmt.inspect("busybox")["RepoTags"] == ["kmt-other:latest", "busybox:latest"]
    kmt.kago("rmi", "kmt-other", check=True)
    tar = _tar(kmt.rootfs, tmp_path / "root.tar")
    with open(tar, "rb") as f:
        proc = subprocess.run([KAGO, "import", "-", "kmt-piped"], stdin=f, capture_output=True,
                              text=True, env=kmt.env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    from_file = kmt.kago("import", tar, check=True).stdout
    assert proc.stdout == from_file  # the same content through a pipe is the same image
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-piped", "cat", "/etc/passwd",
                   check=True).stdout
    assert out.startswith("root:")
    kmt.kago("rmi", "kmt-piped", check=True)


def test_save_refuses_a_terminal_and_load_an_empty_stdin(kmt):
    import pty
    primary, secondary = pty.openpty()
    try:
        proc = _kago_io(kmt, "save", "busybox", stdout=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 125
    assert proc.stderr.decode() == ("kago: cowardly refusing to save to a terminal. Use the -o "
                                    "flag or redirect\n")
    proc = _kago_io(kmt, "load", stdin=subprocess.DEVNULL)
    assert proc.returncode == 125 and b"standard input is empty" in proc.stderr
    proc = subprocess.run([KAGO, "load"], input=b"garbage\n", capture_output=True,
                          env=kmt.env, timeout=60, check=False)
    assert proc.returncode == 125, proc  # named as given, not by kago's copy of it
    assert proc.stderr.decode().startswith("kago: standard input: not a tar archive"), \
        proc.stderr


def test_rmi_prints_each_name_and_id_once(kmt):
    kmt.kago("tag", "busybox", "kmt-a:1", check=True)
    kmt.kago("tag", "busybox", "kmt-b:1", check=True)
    assert kmt.kago("rmi", "kmt-a:1", check=True).stdout == "Untagged: kmt-a:1\n"
    image = kmt.inspect("busybox")
    kmt.kago("rmi", "busybox", check=True)  # the name only: kmt-b:1 still has the image
    out = kmt.kago("rmi", "kmt-b:1", check=True).stdout.splitlines()
    assert out[:2] == ["Untagged: kmt-b:1", f"Deleted: {image['Id']}"]
    assert out[2:] == [f"Deleted: {image['RootFS']['Layers'][0]}"]  # its one layer
    assert len(out) == len(set(out))


def test_inspect_of_nothing_is_no_such_object(kmt):
    proc = kmt.kago("inspect", "nosuch")
    assert proc.returncode == 125 and proc.stderr == "kago: no such object: nosuch\n"
    assert "nosuch" in kmt.kago("inspect", "--type", "image", "nosuch").stderr


def test_commit_changes_are_in_the_image_config(kmt):
    kmt.kago("run", "--name", "kmt-src", "--network", "none", "busybox", "true", check=True)
    changes = ["EXPOSE 8000", "EXPOSE 53/udp 9000-9001", "VOLUME /data", 'VOLUME ["/logs"]',
               'LABEL team=web "note=two words"', "STOPSIGNAL SIGINT", "USER 1000:1000",
               "WORKDIR /srv", "ENV A=1 B=2", "ENV A=3", 'CMD ["httpd", "-f"]',
               "ENTRYPOINT /bin/env"]
    args = [a for change in changes for a in ("-c", change)]
    kmt.kago("commit", *args, "kmt-src", "kmt-changed", check=True)
    config = kmt.inspect("kmt-changed")["Config"]
    assert config["ExposedPorts"] == {"8000/tcp": {}, "53/udp": {}, "9000/tcp": {},
                                      "9001/tcp": {}}
    assert config["Volumes"] == {"/data": {}, "/logs": {}}
    assert config["Labels"] == {"team": "web", "note": "two words"}
    assert config["StopSignal"] == "SIGINT" and config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/srv"
    assert config["Env"][0].startswith("PATH=") and config["Env"][1:] == ["B=2", "A=3"]
    assert config["Cmd"] == ["httpd", "-f"]
    assert config["Entrypoint"] == ["/bin/sh", "-c", "/bin/env"]
    bad = kmt.kago("commit", "-c", "EXPOSE http", "kmt-src", "kmt-bad")
    assert bad.returncode == 125 and "'http' is not a port" in bad.stderr
    kmt.kago("rm", "kmt-src", check=True)
    kmt.kago("rmi", "kmt-changed", check=True)


def test_inspect_of_a_container_shows_the_image_cmd_and_user(kmt):
    kmt.kago("run", "--name", "kmt-src", "--network", "none", "busybox", "true", check=True)
    kmt.kago("commit", "-c", 'CMD ["sleep", "1"]', "-c", "USER 65534", "-c", "WORKDIR /tmp",
             "kmt-src", "kmt-img", check=True)
    kmt.kago("create", "--name", "kmt-made", "--network", "none", "kmt-img", check=True)
    config = kmt.inspect("kmt-made")["Config"]
    assert config["Cmd"] == ["sleep", "1"] and config["User"] == "65534"
    assert config["WorkingDir"] == "/tmp" and config["Entrypoint"] is None
    kmt.kago("create", "--name", "kmt-own", "--network", "none", "-u", "0", "kmt-img", "id",
             check=True)
    config = kmt.inspect("kmt-own")["Config"]
    assert config["Cmd"] == ["id"] and config["User"] == "0"
    kmt.kago("rm", "kmt-src", "kmt-made", "kmt-own", check=True)
    kmt.kago("rmi", "kmt-img", check=True)


@pytest.mark.skipif(not os.path.exists(testkit.Registry.BINARY),
                    reason="docker-registry is not installed")
def test_push_and_pull_on_loopback_need_no_insecure_flag(kmt, tmp_path):
    busybox = kmt.inspect("busybox")["Id"]
    with testkit.Registry(str(tmp_path)) as reg:
        port = reg.host.rpartition(":")[2]
        out = kmt.kago("push", "busybox", f"{reg.host}/kmt/bb:1", check=True).stdout
        assert out.startswith(f"{reg.host}/kmt/bb:1: digest: sha256:")
        pushed = out.split(": digest: ")[1].split()[0]
        kmt.kago("rmi", "busybox", check=True)
        out = kmt.kago("pull", f"localhost:{port}/kmt/bb:1", check=True).stdout
        # plain HTTP to the same registry; docker's Digest line is the manifest's, not the ID
        assert out.splitlines()[0] == f"Digest: {pushed}"
        assert kmt.inspect(f"localhost:{port}/kmt/bb:1")["Id"] == busybox
        # HTTPS is tried first (its certificate unverified, as docker does for insecure
        # registries): a loopback registry that answers HTTPS gets HTTPS, not HTTP
        cert = testkit.self_signed(str(tmp_path))
        with testkit.Proxy(reg.host, tls=cert) as proxy:
            kmt.kago("push", f"localhost:{port}/kmt/bb:1", f"{proxy.host}/kmt/bb:tls",
                     check=True)
            assert ("PUT", "/v2/kmt/bb/manifests/tls", None) in proxy.seen
        kmt.kago("tag", f"localhost:{port}/kmt/bb:1", "busybox", check=True)
        kmt.kago("rmi", f"localhost:{port}/kmt/bb:1", check=True)


def test_the_store_keeps_one_copy_of_a_layer_and_saves_its_exact_tar(kmt, tmp_path):
    tar = _tar(kmt.rootfs, tmp_path / "bb.tar")
    image = kmt.kago("import", tar, "kmt-one", check=True).stdout.strip()
    blobs = os.listdir(os.path.join(kmt.root, "storage", "blobs", "sha256"))
    ids = [i.removeprefix("sha256:") for i in (image, kmt.inspect("busybox")["Id"])]
    assert sorted(blobs) == sorted(ids)  # image configs only: no layer tar beside its files
    saved = tmp_path / "saved.tar"
    kmt.kago("save", "-o", saved, "kmt-one", check=True)
    diff_id = kmt.inspect("kmt-one")["RootFS"]["Layers"][0]
    with tarfile.open(saved) as archive:
        layer = archive.extractfile(f"blobs/sha256/{diff_id.removeprefix('sha256:')}").read()
        manifest = json.load(archive.extractfile("manifest.json"))
    assert layer == tar.read_bytes()  # played back from the layer's files, byte for byte
    assert manifest[0]["Layers"] == [f"blobs/sha256/{diff_id.removeprefix('sha256:')}"]
    kmt.kago("rmi", "kmt-one", check=True)
