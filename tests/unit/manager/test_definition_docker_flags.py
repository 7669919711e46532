"""docker's run/create flags kago took on later (--add-host, --dns..., --device,
--privileged, -P/--expose, --shm-size, --group-add, --pull, --mount) and the rules docker
applies to -w and -v destinations: what each builds, and each error naming its flag."""

import argparse

import pytest

from kago.cli.flags import _add_container_flags
from kago.manager.definition import Device, Dns, ExtraHost, Mount, from_flags, from_json, to_json
from kago.manager.errors import BadValue


def flags(*argv):
    parser = argparse.ArgumentParser()
    _add_container_flags(parser)
    return from_flags(parser.parse_args(list(argv)), environ={})


ROWS = [
    ("add-host", ["--add-host", "db:10.0.0.5", "--add-host", "gw=host-gateway", "i"],
     {"extra_hosts": (ExtraHost("db", "10.0.0.5"), ExtraHost("gw", "host-gateway"))}),
    ("add-host ipv6", ["--add-host", "v6:::1", "i"], {"extra_hosts": (ExtraHost("v6", "::1"),)}),
    ("dns", ["--dns", "1.1.1.1", "--dns-search", "example.com", "--dns-option", "ndots:2",
             "i"], {"dns": Dns(("1.1.1.1",), ("example.com",), ("ndots:2",))}),
    ("device", ["--device", "/dev/null", "--device", "/dev/zero:/dev/z", "--device",
                "/dev/full:/dev/f:r", "--device", "/dev/random:rw", "i"],
     {"devices": (Device("/dev/null", "/dev/null"), Device("/dev/zero", "/dev/z"),
                  Device("/dev/full", "/dev/f", "r"), Device("/dev/random", "/dev/random",
                                                             "rw"))}),
    ("privileged", ["--privileged", "i"], {"privileged": True}),
    ("publish all and expose", ["-P", "--expose", "80", "--expose", "53/udp", "--expose",
                                "8000-8002", "i"],
     {"publish_all": True, "expose": ((80, "tcp"), (53, "udp"), (8000, "tcp"), (8001, "tcp"),
                                      (8002, "tcp"))}),
    ("shm size", ["--shm-size", "128m", "i"], {"shm_size": 128 << 20}),
    ("group add", ["--group-add", "audio", "--group-add", "44", "i"],
     {"group_add": ("audio", "44")}),
    ("pull", ["--pull", "never", "i"], {"pull": "never"}),
    ("pull default", ["i"], {"pull": "missing"}),
    ("mount bind", ["--mount", "type=bind,src=/s,dst=/d,readonly", "i"],
     {"mounts": (Mount("bind", "/d", "/s", True),)}),
    ("mount volume after -v", ["-v", "a:/a", "--mount", "type=volume,source=b,target=/b",
                               "i"],
     {"mounts": (Mount("volume", "/a", "a"), Mount("volume", "/b", "b"))}),
    ("mount bind propagation", ["--mount", "type=bind,src=/s,dst=/d,bind-propagation=rslave",
                                "i"], {"mounts": (Mount("bind", "/d", "/s", False,
                                                        ("rslave",)),)}),
    ("mount tmpfs", ["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700", "i"],
     {"mounts": (Mount("tmpfs", "/t", "tmpfs", False,
                       ("nosuid", "nodev", "size=1048576", "mode=700")),)}),
    ("a -v destination is cleaned", ["-v", "vol:/x/../../etc", "i"],
     {"mounts": (Mount("volume", "/etc", "vol"),)}),
    ("a bind destination is cleaned", ["-v", "/s:/a//b/./c/", "i"],
     {"mounts": (Mount("bind", "/a/b/c", "/s"),)}),
    ("an absolute workdir", ["-w", "/srv/../app", "i"], {"workdir": "/app"}),
]


@pytest.mark.parametrize("argv,expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_flags(argv, expected):
    d = flags(*argv)
    assert {k: getattr(d, k) for k in expected} == expected
    assert from_json(to_json(d)) == d  # and a record keeps it


ERRORS = [
    (["-w", "relative", "i"], "--workdir: the working directory 'relative' is invalid, it "
                              "needs to be an absolute path"),
    (["-v", "vol:/", "i"], '-v: invalid mount config for type "volume": invalid '
                           "specification: destination can't be '/'"),
    (["-v", "/s:/x/..", "i"], '-v: invalid mount config for type "bind": invalid '
                              "specification: destination can't be '/'"),
    (["--add-host", "db", "i"], '--add-host: bad format for add-host: "db"'),
    (["--add-host", "db:nowhere", "i"], '--add-host: "nowhere" is not an ip address'),
    (["--dns", "one.one", "i"], '--dns: "one.one" is not an ip address'),
    (["--dns-search", "a b", "i"], '--dns-search: "a b" is not a valid domain'),
    (["--device", "dev/null", "i"], '--device: invalid device specification "dev/null"'),
    (["--device", "/dev/a:/dev/b:/dev/c", "i"], "--device: invalid device specification"),
    (["--expose", "http", "i"], '--expose: invalid range format for --expose: "http"'),
    (["--expose", "90-80", "i"], '--expose: invalid range format for --expose: "90-80"'),
    (["--shm-size", "lots", "i"], '--shm-size: invalid size "lots"'),
    (["--shm-size", "0", "i"], "--shm-size: the size must be greater than 0"),
    (["--group-add", "a:b", "i"], '--group-add: invalid group "a:b"'),
    (["--pull", "sometimes", "i"], '--pull: invalid pull option: "sometimes"'),
    (["--privileged", "--userns", "auto", "i"], "--privileged: privileged mode is "
                                                "incompatible with user namespaces"),
    (["--mount", "type=nfs,dst=/d", "i"], "--mount: invalid argument \"type=nfs,dst=/d\" for "
                                          "\"--mount\" flag: type 'nfs' is not supported"),
    (["--mount", "type=bind,colour=red,dst=/d", "i"], "--mount: invalid argument "
     "\"type=bind,colour=red,dst=/d\" for \"--mount\" flag: unexpected key 'colour' in "
     "'colour=red'"),
    (["--mount", "type=bind,src", "i"], "--mount: invalid argument \"type=bind,src\" for "
                                        "\"--mount\" flag: invalid field 'src' must be a "
                                        "key=value pair"),
    (["--mount", "type=bind,src=/s", "i"], '--mount: invalid mount config for type "bind": '
                                           "field Target must not be empty"),
    (["--mount", "type=bind,dst=/d", "i"], '--mount: invalid mount config for type "bind": '
                                           "field Source must not be empty"),
    (["--mount", "type=tmpfs,src=x,dst=/d", "i"], '--mount: invalid mount config for type '
                                                  '"tmpfs": field Source must not be '
                                                  'specified'),
    (["--mount", "type=volume,src=v,dst=/", "i"], '--mount: invalid mount config for type '
                                                  "\"volume\": invalid specification: "
                                                  "destination can't be '/'"),
    (["--mount", "type=volume,src=v,dst=/d,tmpfs-size=1m", "i"],
     '--mount: invalid mount config for type "volume": field TmpfsOptions must not be '
     'specified'),
]


@pytest.mark.parametrize("argv,message", ERRORS, ids=[m for _a, m in ERRORS])
def test_flag_errors_name_the_flag(argv, message):
    with pytest.raises(BadValue) as err:
        flags(*argv)
    assert str(err.value).startswith(message), str(err.value)


def test_a_definition_files_mounts_follow_the_same_rule():
    from kago.manager.definition import from_options
    with pytest.raises(BadValue, match="destination can't be '/'"):
        from_options("busybox", mounts=[{"type": "tmpfs", "destination": "/x/.."}])
    d = from_options("busybox", mounts=[{"type": "tmpfs", "destination": "//a/./b/"}])
    assert d.mounts[0].destination == "/a/b"


def test_the_clients_options_build_what_the_flags_build():
    from kago.manager.definition import from_options
    d = from_options("i", extra_hosts={"db": "10.0.0.5"}, dns=["1.1.1.1"],
                     dns_search=["example.com"], dns_options=["ndots:2"],
                     devices=["/dev/null:/dev/n:r"], privileged=True, publish_all=True,
                     expose=[80, "53/udp"], shm_size="128m", group_add=[44], pull="never")
    assert d == flags("--add-host", "db:10.0.0.5", "--dns", "1.1.1.1", "--dns-search",
                      "example.com", "--dns-option", "ndots:2", "--device",
                      "/dev/null:/dev/n:r", "--privileged", "-P", "--expose", "80",
                      "--expose", "53/udp", "--shm-size", "128m", "--group-add", "44",
                      "--pull", "never", "i")
    with pytest.raises(BadValue, match="^workdir: the working directory 'rel' is invalid"):
        from_options("i", workdir="rel")
    with pytest.raises(BadValue, match='^dns: "x" is not an ip address'):
        from_options("i", dns=["x"])
