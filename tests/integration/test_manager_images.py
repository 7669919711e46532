"""Image, network and system verbs: thin over kago.storage and kago.network, with docker's
output; plus the `kago ps` shapes (--format, filters) and `system prune`."""

import json
import os
import subprocess

import pytest

from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)


def test_images_tag_inspect_rmi(kmt):
    out = kmt.kago("images", check=True).stdout.splitlines()
    assert out[0].split()[:4] == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    assert out[1].split()[:2] == ["busybox", "latest"]
    kmt.kago("tag", "busybox", "kmt-copy:v1", check=True)
    names = kmt.kago("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert "kmt-copy:v1" in names.split()
    doc = json.loads(kmt.kago("inspect", "--type", "image", "kmt-copy:v1", check=True).stdout)
    assert doc[0]["Id"].startswith("sha256:") and "kmt-copy:v1" in doc[0]["RepoTags"]
    assert kmt.kago("rmi", "kmt-copy:v1", check=True).stdout.startswith("Untagged")
    assert kmt.kago("rmi", "no-such-image").returncode == 125


def test_commit_export_save_load(kmt, tmp_path):
    kmt.kago("run", "--name", "kmt-src", "--network", "none", "busybox", "sh", "-c",
             "echo made > /etc/made", check=True)
    kmt.kago("commit", "-m", "a file", "kmt-src", "kmt-committed", check=True)
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-committed", "cat", "/etc/made",
                   check=True).stdout
    assert out == "made\n"
    tar = tmp_path / "fs.tar"
    kmt.kago("export", "-o", str(tar), "kmt-src", check=True)
    listing = subprocess.run(["tar", "-tf", str(tar)], capture_output=True, text=True,
                             check=True).stdout
    assert "./etc/made" in listing.split()
    saved = tmp_path / "img.tar"
    kmt.kago("save", "-o", str(saved), "kmt-committed", check=True)
    kmt.kago("rm", "kmt-src", check=True)
    kmt.kago("rmi", "kmt-committed", check=True)
    assert "kmt-committed" in kmt.kago("load", "-i", str(saved), check=True).stdout
    kmt.kago("rmi", "kmt-committed", check=True)


def test_network_create_ls_rm_and_a_container_on_it(kmt):
    kmt.kago("network", "create", "--subnet", "10.249.17.0/24", "--internal", "kmtnet",
             check=True)
    ls = kmt.kago("network", "ls", "--format", "{{.Name}} {{.Subnet}}", check=True).stdout
    assert "kmtnet 10.249.17.0/24" in ls
    kmt.kago("run", "-d", "--name", "kmt-on-net", "--network", "kmtnet", "--ip", "10.249.17.9",
             "busybox", "sleep", "60", check=True)
    doc = kmt.inspect("kmt-on-net")
    assert doc["NetworkSettings"]["IPAddress"] == "10.249.17.9"
    assert kmt.kago("network", "rm", "kmtnet").returncode == 125  # still in use
    kmt.kago("rm", "-f", "kmt-on-net", check=True)
    kmt.kago("network", "rm", "kmtnet", check=True)


def test_ps_format_filters_and_prune(kmt):
    kmt.kago("create", "--name", "kmt-made", "--network", "none", "-l", "tier=web",
             "busybox", "true", check=True)
    kmt.kago("run", "--name", "kmt-ran", "--network", "none", "busybox", "true", check=True)
    names = kmt.kago("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()
    assert names == ["kmt-ran", "kmt-made"]  # newest first
    assert kmt.kago("ps", "-a", "-f", "name=made", "--format", "{{.Names}}",
                    check=True).stdout.split() == ["kmt-made"]
    assert kmt.kago("ps", "-a", "-f", "label=tier=web", "-q", check=True).stdout.strip()
    rows = [json.loads(line) for line in kmt.kago("ps", "-a", "--format", "json",
                                                   check=True).stdout.splitlines()]
    assert {r["State"] for r in rows} == {"created", "exited"}
    table = kmt.kago("ps", "-a", "--format", "table {{.Names}}\t{{.Status}}",
                     check=True).stdout.splitlines()
    assert table[0].split()[:2] == ["NAMES", "STATUS"]
    assert kmt.kago("ps", "-f", "bogus=1").returncode == 125
    out = kmt.kago("system", "prune", "-f", check=True).stdout
    assert "Deleted Containers:" in out
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


@pytest.mark.parametrize("argv", [
    ["inspect", "-f", "{{.Nope}}", "busybox"], ["image", "inspect", "-f", "{{.Nope}}",
                                               "busybox"],
    ["images", "--format", "{{.Nope}}"], ["ps", "-a", "--format", "{{.Nope}}"]])
def test_a_template_naming_no_field_is_one_line_not_a_traceback(kmt, argv):
    kmt.kago("create", "--name", "kmt-tpl", "--network", "none", "busybox", "true",
             check=True)
    proc = kmt.kago(*argv)
    assert proc.returncode == 125, proc
    assert proc.stderr.startswith("kago: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "can't evaluate field Nope" in proc.stderr and "--format" in proc.stderr
    kmt.kago("rm", "kmt-tpl", check=True)


def test_images_lists_only_the_repository_given_as_docker_images_does(kmt):
    kmt.kago("tag", "busybox", "kmt-repo:one", check=True)
    kmt.kago("tag", "busybox", "kmt-repo:two", check=True)
    rows = lambda *a: kmt.kago("images", *a, "--format", "{{.Repository}}:{{.Tag}}",  # noqa
                               check=True).stdout.split()
    assert sorted(rows("kmt-repo")) == ["kmt-repo:one", "kmt-repo:two"]
    assert rows("kmt-repo:two") == ["kmt-repo:two"]
    assert rows("kmt-*:one") == ["kmt-repo:one"]
    assert rows("nosuch") == []
    assert kmt.kago("images", "-q", "busybox", check=True).stdout.strip() == \
        kmt.inspect("busybox")["Id"].removeprefix("sha256:")[:12]
    kmt.kago("rmi", "kmt-repo:one", "kmt-repo:two", check=True)


def test_image_prune_prints_dockers_lines(kmt, tmp_path):
    (tmp_path / "Containerfile").write_text("FROM busybox\nRUN echo one > /f\n")
    first = kmt.kago("build", "-q", "-t", "kmt-dangle", str(tmp_path), check=True,
                     timeout=120).stdout.strip()
    (tmp_path / "Containerfile").write_text("FROM busybox\nRUN echo two > /f\n")
    kmt.kago("build", "-q", "-t", "kmt-dangle", str(tmp_path), check=True, timeout=120)
    lines = kmt.kago("image", "prune", "-f", check=True).stdout.splitlines()
    assert lines[0] == "Deleted Images:" and f"deleted: {first}" in lines, lines
    assert all(line.startswith(("deleted: sha256:", "untagged: ")) for line in lines[1:]), \
        lines
    assert len(lines) == len(set(lines))
    assert kmt.kago("image", "prune", "-f", check=True).stdout == ""
    kmt.kago("rmi", "kmt-dangle", check=True)


def test_info_and_version(kmt):
    info = kmt.kago("info", check=True).stdout
    assert "Cgroup Version:" in info and "Storage Driver:" in info
    assert f"Kago Root Dir: {kmt.root}" in info
    version = kmt.kago("version", check=True).stdout
    assert version.startswith("kago version") and "runtime: kago-oci" in version
    assert os.path.isdir(kmt.root)
