"""host.rootless: who counts as rootless, and where kago-oci's state goes then (runc's rules)."""

import pytest

from kago.errors import UsageError
from kago.host import rootless


@pytest.fixture
def maps(tmp_path):
    made = []

    def write(text):
        made.append(text)
        path = tmp_path / f"uid_map{len(made)}"
        path.write_text(text)
        return str(path)
    return write


def test_identity_map_is_the_initial_namespace(maps):
    assert not rootless.in_user_namespace(maps("         0          0 4294967295\n"))
    assert rootless.in_user_namespace(maps("0 1001 1\n1 100000 65536\n"))


def test_auto_is_rootless_for_a_user_or_root_of_a_user_namespace(maps):
    host = maps("0 0 4294967295\n")
    podman = maps("0 1001 1\n1 100000 65536\n")
    assert rootless.rootless(None, euid=0, path=host) is False
    assert rootless.rootless("auto", euid=1001, path=host) is True
    assert rootless.rootless("auto", euid=0, path=podman) is True
    assert rootless.rootless("false", euid=1001, path=podman) is False
    assert rootless.rootless("true", euid=0, path=host) is True
    with pytest.raises(UsageError, match="invalid --rootless value 'yes'"):
        rootless.rootless("yes")


def test_default_root(maps):
    host = maps("0 0 4294967295\n")
    podman = maps("0 1001 1\n1 100000 65536\n")
    xdg = {"XDG_RUNTIME_DIR": "/run/user/1001", "USER": "alice"}
    assert rootless.default_root(xdg, euid=0, path=host) == "/run/kago"
    assert rootless.default_root(xdg, euid=1001, path=host) == "/run/user/1001/kago"
    assert rootless.default_root({}, euid=1001, path=host) == "/run/user/1001/kago"
    assert rootless.default_root(xdg, euid=0, path=podman) == "/run/user/1001/kago"
    # root of a user namespace without XDG_RUNTIME_DIR: the host user's directory
    assert rootless.default_root({"USER": "alice"}, euid=0, path=podman) == \
        "/run/user/1001/kago"
    # ...and one that says it is root keeps the host default, as runc does
    assert rootless.default_root({"USER": "root", "XDG_RUNTIME_DIR": "/x"}, euid=0,
                                 path=podman) == "/run/kago"


def test_host_uid(maps):
    path = maps("0 1001 1\n1 100000 65536\n")
    assert rootless.host_uid(0, path) == 1001
    assert rootless.host_uid(1000, path) == 100999
    assert rootless.host_uid(70000, path) == 70000  # unmapped: itself
