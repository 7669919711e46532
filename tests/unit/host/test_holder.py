"""The rootless manager's holder, decided (kago.host.holder): its maps from a user's
subordinate IDs, the ID space and its range errors, its record, the per-user paths."""

import pytest

from kago.errors import UsageError
from kago.host import holder as H
from kago.host.subids import SubIds


def test_maps_lay_the_subordinate_ranges_after_the_users_own_id():
    sub = SubIds("alice", 1000, 1001, uids=[(100000, 65536), (300000, 10)],
                 gids=[(200000, 5)])
    uid_map, gid_map = H.maps(sub)
    assert uid_map == [[0, 1000, 1], [1, 100000, 65536], [65537, 300000, 10]]
    assert gid_map == [[0, 1001, 1], [1, 200000, 5]]


@pytest.mark.parametrize("uids,gids,missing", [
    ((), (), "/etc/subuid or /etc/subgid"),
    ([(100000, 10)], (), "/etc/subgid"),
    ((), [(100000, 10)], "/etc/subuid"),
])
def test_maps_without_subordinate_ids_is_one_line_naming_usermod(uids, gids, missing):
    with pytest.raises(H.NoSubIds) as e:
        H.maps(SubIds("alice", 1000, 1000, uids=uids, gids=gids))
    text = str(e.value)
    assert "\n" not in text
    assert f"user alice has no range in {missing}:" in text
    assert "usermod --add-sub" in text and text.endswith(" alice)")


def test_id_space_is_the_highest_mapped_inside_id():
    assert H.id_space("         0       1000          1\n         1     100000      65536\n") \
        == 65536
    assert H.id_space("0 1000 1\n") == 0
    assert H.id_space("") == -1


def test_check_range_inside_the_space_passes_and_outside_names_the_fix():
    H.check_range("uid", 1, 65536, 65536, "alice", [(100000, 65536)])
    H.check_range("uid", 0, 1, 65536, "alice", [(100000, 65536)])
    with pytest.raises(UsageError) as e:
        H.check_range("uid", 808000, 100, 65536, "alice", [(100000, 65536)])
    assert str(e.value) == (
        "uid range 808000-808099 needs 808099 subordinate IDs; user alice has 65536 in "
        "/etc/subuid: add more (usermod --add-subuids 165536-908098 alice) or use a range "
        "within 1-65536")
    with pytest.raises(UsageError, match="gid range"):
        H.IdSpace(10, 5, "bob").check("gid", 3, 5)


def test_pid_record_round_trip_and_garbage():
    assert H.parse_pid_record(H.pid_record(42, 123456)) == (42, 123456)
    for bad in ("", "42", "x 1", "1 2 3"):
        assert H.parse_pid_record(bad) is None


def test_start_time_reads_field_22_and_the_state_past_a_comm_with_spaces():
    fields = ["S"] + [str(n) for n in range(4, 22)] + ["987654"] + ["0"] * 30
    text = "1234 (a) b (c)) " + " ".join(fields)
    assert H.start_time(text) == (987654, "S")


def test_user_paths():
    assert H.user_root({}, "/home/a") == "/home/a/.local/share/kago"
    assert H.user_root({"XDG_DATA_HOME": "/d"}, "/home/a") == "/d/kago"
    assert H.user_root({"XDG_DATA_HOME": "rel"}, "/home/a") == "/home/a/.local/share/kago"
    assert H.user_runroot({}, 1000) == "/run/user/1000/kago/manager"
    assert H.user_runroot({"XDG_RUNTIME_DIR": "/r"}, 1000) == "/r/kago/manager"


def test_runroot_error_names_the_fix():
    text = str(H.runroot_error("/x/kago/manager", PermissionError(13, "denied")))
    assert text.startswith("runroot /x/kago/manager: cannot create it (Permission denied)")
    assert "XDG_RUNTIME_DIR" in text and "--runroot" in text and "\n" not in text
