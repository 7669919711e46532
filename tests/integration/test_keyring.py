"""Session keyrings: each container gets its own (`_ses.<id>`), as runc gives; with
--no-new-keyring it keeps the caller's. Seen from the host in /proc/keys while the container's
init waits for start (root sees every keyring)."""

from test_lifecycle import SLEEPER, detached, ok


def _keyrings():
    with open("/proc/keys") as f:
        return f.read()


def test_each_container_gets_its_own_session_keyring(oci, make_bundle):
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", make_bundle(SLEEPER).path, cid))
    assert f"_ses.{cid}" in _keyrings()


def test_no_new_keyring_keeps_the_callers(oci, make_bundle):
    cid = oci.new_id()
    ok(detached(oci, "create", "--no-new-keyring", "--bundle", make_bundle(SLEEPER).path, cid))
    assert f"_ses.{cid}" not in _keyrings()
