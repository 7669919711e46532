"""``docker diff``'s view of a container's own tree: A (added), C (changed: it exists in the
image), D (deleted), sorted by path -- over overlay's upper directory (a whiteout is a 0:0
character device, which needs root to make) and over a full copy compared with the image."""

import os

import pytest

from kago.storage import diff


def tree(root, files):
    for path, body in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(body)


def test_a_full_copy_compared_with_the_image(tmp_path):
    image, own = str(tmp_path / "image"), str(tmp_path / "own")
    tree(image, {"etc/passwd": "root", "etc/group": "root", "bin/vi": "vi"})
    tree(own, {"etc/passwd": "root\nkmt", "etc/group": "root", "etc/new": "x"})
    os.makedirs(os.path.join(own, "bin"))
    for root in (image, own):  # the same times where nothing changed
        os.utime(os.path.join(root, "etc/group"), (1, 1))
    found = dict((path, kind) for kind, path in diff.changes(own, [image], overlay=False))
    assert found["/bin/vi"] == "D" and found["/etc/new"] == "A"
    assert found["/etc/passwd"] == "C" and "/etc/group" not in found


@pytest.mark.skipif(os.geteuid() != 0, reason="a whiteout (0:0 char device) needs root")
def test_an_overlay_upper_directory(tmp_path):
    lower, upper = str(tmp_path / "lower"), str(tmp_path / "upper")
    tree(lower, {"etc/passwd": "root", "bin/vi": "vi", "srv/keep": "k"})
    tree(upper, {"etc/passwd": "root\nkmt", "etc/new": "x"})
    os.makedirs(os.path.join(upper, "bin"))
    os.mknod(os.path.join(upper, "bin/vi"), 0o600 | 0o020000, 0)
    changes = diff.changes(upper, [lower])
    assert changes == [("C", "/bin"), ("D", "/bin/vi"), ("C", "/etc"), ("A", "/etc/new"),
                       ("C", "/etc/passwd")]
    assert [path for _kind, path in changes] == sorted(path for _kind, path in changes)
