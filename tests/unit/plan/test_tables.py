"""kago.plan.tables: the kernel's numbers, and option parsing the way runc's specconv does it."""

import signal as pysignal

import pytest

from kago.errors import KagoError
from kago.kernel import consts as k
from kago.oci.schema import NAMESPACE_TYPES, PROPAGATIONS
from kago.plan.tables import (
    CAPABILITIES, CAP_LAST_CAP, NAMESPACES, RLIMITS, ROOTFS_PROPAGATION,
    ROOTFS_PROPAGATION_DEFAULT, SIGNALS, known_mount_options, parse_mount_options, parse_signal,
    sysctl_namespace,
)


# ---------------------------------------------------------------- capabilities, rlimits

def test_capabilities_are_the_41_kernel_numbers():
    assert len(CAPABILITIES) == 41
    assert sorted(CAPABILITIES.values()) == list(range(41))
    assert list(CAPABILITIES.values()) == list(range(41))  # kernel order, for features
    assert CAPABILITIES["CAP_CHOWN"] == 0
    assert CAPABILITIES["CAP_NET_ADMIN"] == 12
    assert CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert CAPABILITIES["CAP_AUDIT_READ"] == 37
    assert CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40
    assert CAP_LAST_CAP == 40


def test_table_covers_this_hosts_kernel():
    # A kernel newer than the table would have capabilities we cannot name.
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert int(f.read()) <= CAP_LAST_CAP


def test_rlimits_match_kernel_numbers():
    import resource
    assert len(RLIMITS) == 16
    assert RLIMITS["RLIMIT_CPU"] == 0
    assert RLIMITS["RLIMIT_RTTIME"] == 15
    for name, number in RLIMITS.items():
        if hasattr(resource, name):
            assert getattr(resource, name) == number, name


# ---------------------------------------------------------------- signals

def test_signals_match_python_signal_module():
    assert len(SIGNALS) == 31
    for name, number in SIGNALS.items():
        assert getattr(pysignal, name) == number, name


@pytest.mark.parametrize("text, number", [
    ("KILL", 9), ("SIGKILL", 9), ("sigkill", 9), ("kill", 9), ("9", 9), ("TERM", 15),
    ("SIGHUP", 1), ("1", 1), ("64", 64), ("SIGRTMIN", 34), ("RTMIN", 34), ("SIGRTMIN+3", 37),
    ("rtmin+3", 37), ("RTMAX-1", 63), ("SIGRTMAX", 64), ("RTMIN+30", 64), ("SIGIOT", 6),
    ("CLD", 17), ("WINCH", 28), ("sigpwr", 30),
])
def test_parse_signal_accepts(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", [
    "FOO", "", "0", "65", "-9", "+9", " 9", "SIG", "RTMIN+31", "RTMAX-31", "RTMIN-1",
    "RTMAX+1", "RTMIN+", "RTMIN+x", "SIGKILLX", "٩",
])
def test_parse_signal_rejects_like_runc(text):
    with pytest.raises(KagoError) as info:
        parse_signal(text)
    assert str(info.value) == f'unknown signal "{text}"'


def test_parse_signal_quotes_like_go():
    with pytest.raises(KagoError, match=r'unknown signal "a\\"b"'):
        parse_signal('a"b')


# ---------------------------------------------------------------- namespaces, sysctl

def test_namespaces_flags_and_proc_names():
    assert NAMESPACES == {
        "pid": (k.CLONE_NEWPID, "pid"),
        "network": (k.CLONE_NEWNET, "net"),
        "mount": (k.CLONE_NEWNS, "mnt"),
        "ipc": (k.CLONE_NEWIPC, "ipc"),
        "uts": (k.CLONE_NEWUTS, "uts"),
        "user": (k.CLONE_NEWUSER, "user"),
        "cgroup": (k.CLONE_NEWCGROUP, "cgroup"),
        "time": (k.CLONE_NEWTIME, "time"),
    }


def test_schema_and_tables_agree_on_namespaces_and_propagation():
    assert set(NAMESPACE_TYPES) == set(NAMESPACES)
    assert set(PROPAGATIONS) == set(ROOTFS_PROPAGATION)


def test_ns_file_names_exist_on_this_host():
    import os
    available = set(os.listdir("/proc/self/ns"))
    for flag, name in NAMESPACES.values():
        assert name in available, name


@pytest.mark.parametrize("name, owner", [
    ("net.ipv4.ip_forward", "network"), ("net/ipv4/ip_forward", "network"),
    ("kernel.shmmax", "ipc"), ("kernel.shm_rmid_forced", "ipc"), ("kernel.msgmnb", "ipc"),
    ("kernel.sem", "ipc"), ("kernel.sem_next_id", "ipc"), ("fs.mqueue.queues_max", "ipc"),
    ("kernel.hostname", "uts"), ("kernel.domainname", "uts"),
    ("vm.swappiness", None), ("kernel.pid_max", None), ("kernel.semx", None),
    ("fs.file-max", None), ("network.x", None),
])
def test_sysctl_namespace(name, owner):
    assert sysctl_namespace(name) == owner


# ---------------------------------------------------------------- propagation

def test_rootfs_propagation():
    assert ROOTFS_PROPAGATION["private"] == k.MS_PRIVATE
    assert ROOTFS_PROPAGATION["rprivate"] == k.MS_PRIVATE | k.MS_REC
    assert ROOTFS_PROPAGATION["rshared"] == k.MS_SHARED | k.MS_REC
    assert ROOTFS_PROPAGATION["slave"] == k.MS_SLAVE
    assert ROOTFS_PROPAGATION["runbindable"] == k.MS_UNBINDABLE | k.MS_REC
    assert len(ROOTFS_PROPAGATION) == 8
    assert ROOTFS_PROPAGATION_DEFAULT == k.MS_SLAVE | k.MS_REC


# ---------------------------------------------------------------- mount options

def test_runc_default_dev_mount():
    m = parse_mount_options(["nosuid", "strictatime", "mode=755", "size=65536k"])
    assert m.flags == k.MS_NOSUID | k.MS_STRICTATIME
    assert m.clear_flags == 0
    assert m.data == "mode=755,size=65536k"
    assert m.propagation == []
    assert m.attr_set == k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_STRICTATIME
    assert m.attr_clr == k.MOUNT_ATTR__ATIME
    assert (m.rec_attr_set, m.rec_attr_clr) == (0, 0)
    assert m.extra == []


def test_devpts_data_keeps_order():
    m = parse_mount_options(["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                             "gid=5"])
    assert m.flags == k.MS_NOSUID | k.MS_NOEXEC
    assert m.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"


def test_empty_and_none():
    for options in ([], None):
        m = parse_mount_options(options)
        assert (m.flags, m.clear_flags, m.data, m.propagation, m.extra) == (0, 0, "", [], [])
        assert (m.attr_set, m.attr_clr, m.rec_attr_set, m.rec_attr_clr) == (0, 0, 0, 0)


@pytest.mark.parametrize("word, flag", [
    ("ro", k.MS_RDONLY), ("nosuid", k.MS_NOSUID), ("nodev", k.MS_NODEV),
    ("noexec", k.MS_NOEXEC), ("sync", k.MS_SYNCHRONOUS), ("dirsync", k.MS_DIRSYNC),
    ("remount", k.MS_REMOUNT), ("mand", k.MS_MANDLOCK), ("noatime", k.MS_NOATIME),
    ("nodiratime", k.MS_NODIRATIME), ("relatime", k.MS_RELATIME),
    ("strictatime", k.MS_STRICTATIME), ("bind", k.MS_BIND), ("rbind", k.MS_BIND | k.MS_REC),
    ("nosymfollow", k.MS_NOSYMFOLLOW), ("lazytime", k.MS_LAZYTIME), ("acl", k.MS_POSIXACL),
    ("silent", k.MS_SILENT), ("iversion", k.MS_I_VERSION),
])
def test_setting_words(word, flag):
    m = parse_mount_options([word])
    assert (m.flags, m.clear_flags, m.data) == (flag, 0, "")


@pytest.mark.parametrize("word, flag", [
    ("rw", k.MS_RDONLY), ("suid", k.MS_NOSUID), ("dev", k.MS_NODEV), ("exec", k.MS_NOEXEC),
    ("async", k.MS_SYNCHRONOUS), ("nomand", k.MS_MANDLOCK), ("atime", k.MS_NOATIME),
    ("diratime", k.MS_NODIRATIME), ("norelatime", k.MS_RELATIME),
    ("nostrictatime", k.MS_STRICTATIME), ("symfollow", k.MS_NOSYMFOLLOW),
    ("nolazytime", k.MS_LAZYTIME), ("noacl", k.MS_POSIXACL), ("loud", k.MS_SILENT),
    ("noiversion", k.MS_I_VERSION),
])
def test_clearing_words(word, flag):
    m = parse_mount_options([word])
    assert (m.flags, m.clear_flags, m.data) == (0, flag, "")


def test_later_word_wins():
    assert parse_mount_options(["ro", "rw"]).flags == 0
    assert parse_mount_options(["ro", "rw"]).clear_flags == k.MS_RDONLY
    m = parse_mount_options(["rw", "ro"])
    assert (m.flags, m.clear_flags) == (k.MS_RDONLY, 0)


def test_attrs_mirror_flags_for_mount_setattr():
    m = parse_mount_options(["ro", "nodev", "exec", "suid", "nosymfollow"])
    assert m.attr_set == k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOSYMFOLLOW
    assert m.attr_clr == k.MOUNT_ATTR_NOEXEC | k.MOUNT_ATTR_NOSUID


def test_atime_attr_follows_mount2_precedence():
    # mount(2): strictatime beats noatime beats relatime; a mode needs _ATIME in attr_clr.
    m = parse_mount_options(["noatime", "strictatime"])
    assert m.attr_set == k.MOUNT_ATTR_STRICTATIME
    assert m.attr_clr == k.MOUNT_ATTR__ATIME
    m = parse_mount_options(["relatime", "noatime"])
    assert m.attr_set == k.MOUNT_ATTR_NOATIME
    m = parse_mount_options(["relatime"])
    assert (m.attr_set, m.attr_clr) == (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME)


@pytest.mark.parametrize("word, flags", [
    ("private", k.MS_PRIVATE), ("rprivate", k.MS_PRIVATE | k.MS_REC),
    ("shared", k.MS_SHARED), ("rshared", k.MS_SHARED | k.MS_REC),
    ("slave", k.MS_SLAVE), ("rslave", k.MS_SLAVE | k.MS_REC),
    ("unbindable", k.MS_UNBINDABLE), ("runbindable", k.MS_UNBINDABLE | k.MS_REC),
])
def test_propagation_words(word, flags):
    m = parse_mount_options(["bind", word])
    assert m.propagation == [flags]
    assert m.flags == k.MS_BIND  # propagation never leaks into the mount flags


def test_propagation_keeps_every_word_in_order():
    m = parse_mount_options(["rprivate", "shared"])
    assert m.propagation == [k.MS_PRIVATE | k.MS_REC, k.MS_SHARED]


@pytest.mark.parametrize("word, attr", [
    ("rro", k.MOUNT_ATTR_RDONLY), ("rnosuid", k.MOUNT_ATTR_NOSUID),
    ("rnodev", k.MOUNT_ATTR_NODEV), ("rnoexec", k.MOUNT_ATTR_NOEXEC),
    ("rnodiratime", k.MOUNT_ATTR_NODIRATIME), ("rnosymfollow", k.MOUNT_ATTR_NOSYMFOLLOW),
])
def test_recursive_set_words(word, attr):
    m = parse_mount_options([word])
    assert (m.rec_attr_set, m.rec_attr_clr, m.flags, m.data) == (attr, 0, 0, "")


@pytest.mark.parametrize("word, attr", [
    ("rrw", k.MOUNT_ATTR_RDONLY), ("rsuid", k.MOUNT_ATTR_NOSUID), ("rdev", k.MOUNT_ATTR_NODEV),
    ("rexec", k.MOUNT_ATTR_NOEXEC), ("rdiratime", k.MOUNT_ATTR_NODIRATIME),
    ("rsymfollow", k.MOUNT_ATTR_NOSYMFOLLOW), ("ratime", k.MOUNT_ATTR_NOATIME),
    ("rnostrictatime", k.MOUNT_ATTR_STRICTATIME),
])
def test_recursive_clear_words(word, attr):
    m = parse_mount_options([word])
    assert (m.rec_attr_set, m.rec_attr_clr) == (0, attr)


@pytest.mark.parametrize("word, attr", [
    ("rnoatime", k.MOUNT_ATTR_NOATIME), ("rstrictatime", k.MOUNT_ATTR_STRICTATIME),
    ("rrelatime", k.MOUNT_ATTR_RELATIME),
])
def test_recursive_atime_words_also_clear_the_atime_field(word, attr):
    m = parse_mount_options([word])
    assert (m.rec_attr_set, m.rec_attr_clr) == (attr, k.MOUNT_ATTR__ATIME)


def test_recursive_later_word_wins():
    m = parse_mount_options(["rro", "rrw"])
    assert (m.rec_attr_set, m.rec_attr_clr) == (0, k.MOUNT_ATTR_RDONLY)
    m = parse_mount_options(["rrw", "rro"])
    assert (m.rec_attr_set, m.rec_attr_clr) == (k.MOUNT_ATTR_RDONLY, 0)


def test_idmap_words_are_flagged_not_data():
    m = parse_mount_options(["rbind", "idmap"])
    assert (m.extra, m.idmap, m.recursive_idmap, m.data) == (["idmap"], True, False, "")
    m = parse_mount_options(["ridmap"])
    assert (m.idmap, m.recursive_idmap) == (True, True)
    assert parse_mount_options(["ro"]).idmap is False


def test_tmpcopyup_and_defaults():
    m = parse_mount_options(["defaults", "tmpcopyup", "tmpcopyup"])
    assert (m.extra, m.data, m.flags) == (["tmpcopyup"], "", 0)


def test_known_mount_options_cover_every_table():
    known = known_mount_options()
    assert known == sorted(known)
    for word in ("ro", "rbind", "rprivate", "rro", "ratime", "idmap", "ridmap", "tmpcopyup",
                 "defaults", "nosymfollow", "lazytime"):
        assert word in known
    for word in known:
        assert parse_mount_options([word]).data == "", word
    assert "mode=755" not in known


def test_tmpcopyup_mount_op():
    from kago.plan.build import mount_op
    op = mount_op({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "tmpcopyup"]}, "/b", "mounts[0]")
    assert op.copy_up and op.flags == k.MS_NOSUID and op.remount_flags is None
    # read-only: mounted writable, filled, then made read-only
    op = mount_op({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["ro", "tmpcopyup"]}, "/b", "mounts[0]")
    assert op.copy_up and op.flags == 0 and op.remount_flags == k.MS_RDONLY
    # runc ignores it on anything but a tmpfs
    op = mount_op({"destination": "/d", "type": "bind", "source": "/srv",
                   "options": ["rbind", "tmpcopyup"]}, "/b", "mounts[0]")
    assert not op.copy_up


def test_idmap_mount_op():
    from kago.plan.build import mount_op
    own = [(0, 100000, 65536)]
    bind = {"destination": "/d", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]}
    # no maps of its own: the container's, or the joined user namespace
    assert mount_op(bind, "/b", "mounts[0]", (own, own, None)).idmap == (own, own, None, False)
    assert mount_op(bind, "/b", "mounts[0]", ([], [], "/proc/7/ns/user")).idmap == (
        [], [], "/proc/7/ns/user", False)
    maps = [{"containerID": 0, "hostID": 5000, "size": 10}]
    op = mount_op(dict(bind, options=["bind", "ridmap"], uidMappings=maps, gidMappings=maps),
                  "/b", "mounts[0]", (own, own, None))
    assert op.idmap == ([(0, 5000, 10)], [(0, 5000, 10)], None, True)
    assert op.flags == k.MS_BIND and op.userns_fd is None
    op = mount_op(dict(bind, options=["rbind"], uidMappings=maps, gidMappings=maps), "/b",
                  "mounts[0]")
    assert op.idmap == ([(0, 5000, 10)], [(0, 5000, 10)], None, False)  # maps alone: idmap
    assert mount_op(dict(bind, options=["rbind"]), "/b", "mounts[0]").idmap is None
