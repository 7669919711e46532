"""The Definition's builders: ``kago run``'s flags (errors name the flag), a definition
file's Container (errors name file:line of the call or of the assignment), records of the
previous format (a ``config`` dict), and the JSON a record stores."""

import argparse
import json
import textwrap

import pytest

from kago.cli.flags import _add_container_flags
from kago.manager.define.load import load
from kago.manager.definition import (
    Capabilities,
    CgroupKey,
    Definition,
    IdMapping,
    IdRange,
    Limits,
    LogOptions,
    Mount,
    Namespace,
    Network,
    OciHook,
    Port,
    RestartPolicy,
    Rlimit,
    from_config,
    from_flags,
    from_json,
    from_options,
    stored,
    to_json,
)
from kago.manager.errors import BadValue, DefinitionError, ManagerError


def flags(*argv, environ=None):
    parser = argparse.ArgumentParser()
    _add_container_flags(parser)
    return from_flags(parser.parse_args(list(argv)), environ=environ or {})


FLAG_ROWS = [
    ("image and command", ["busybox", "echo", "hi"],
     {"image": "busybox", "command": ("echo", "hi"), "entrypoint": None}),
    ("no command: the image's", ["busybox"], {"command": None}),
    ("rootfs takes the image word as the command", ["--rootfs", "/r", "sh", "-c", "x"],
     {"image": "", "rootfs": "/r", "command": ("sh", "-c", "x")}),
    ("an empty entrypoint", ["--entrypoint", "", "busybox"], {"entrypoint": ()}),
    ("memory, swap, cpus, pids, cpuset, shares",
     ["-m", "64m", "--memory-swap", "-1", "--cpus", "0.5", "--pids-limit", "100",
      "--cpuset-cpus", "0-1", "--cpu-shares", "512", "i"],
     {"limits": Limits(memory=64 << 20, memory_swap=-1, cpus=0.5, cpu_shares=512,
                       cpuset_cpus="0-1", pids=100)}),
    ("env, env from the caller", ["-e", "A=1", "-e", "HOSTVAR", "i"],
     {"env": ("A=1", "HOSTVAR=h")}),
    ("volumes and tmpfs", ["-v", "/s:/d:ro", "-v", "data:/data", "--tmpfs", "/t", "i"],
     {"mounts": (Mount("bind", "/d", "/s", True), Mount("volume", "/data", "data"),
                 Mount("tmpfs", "/t", "tmpfs", False, ("nosuid", "nodev", "mode=1777")))}),
    ("ports on a named network", ["-p", "8080:80", "--network", "back", "--ip", "10.1.0.9",
                                  "--network-alias", "db", "i"],
     {"ports": (Port(8080, 80),), "network": Network("bridge", "back", "", "10.1.0.9",
                                                     ("db",))}),
    ("capabilities", ["--cap-add", "net_admin", "--cap-drop", "ALL", "i"],
     {"capabilities": Capabilities(("CAP_NET_ADMIN",), ("ALL",))}),
    ("restart", ["--restart", "on-failure:3", "i"],
     {"restart": RestartPolicy("on-failure", 3)}),
    ("userns auto", ["--userns", "auto", "i"], {"ids": IdMapping("auto")}),
    ("uid and gid maps", ["--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", "i"],
     {"ids": IdMapping(uid_map=(IdRange(0, 100000, 65536),),
                       gid_map=(IdRange(0, 200000, 65536),))}),
    ("labels, sysctls, ulimits", ["-l", "b=2", "-l", "a", "--sysctl", "net.x=1", "--ulimit",
                                  "nofile=100:200", "i"],
     {"labels": (("a", ""), ("b", "2")), "sysctls": (("net.x", "1"),),
      "rlimits": (Rlimit("nofile", 100, 200),)}),
    ("security options", ["--security-opt", "seccomp=unconfined", "--security-opt",
                          "no-new-privileges", "i"],
     {"seccomp": "unconfined", "no_new_privileges": True}),
    ("log options", ["--log-opt", "max-size=4k", "--log-opt", "max-file=2", "i"],
     {"log": LogOptions(4096, 2)}),
    ("stop signal and timeout", ["--stop-signal", "usr1", "--stop-timeout", "3", "i"],
     {"stop_signal": "SIGUSR1", "stop_timeout": 3}),
    ("terminal and the rest", ["-it", "--rm", "--read-only", "--name", "web", "--hostname",
                               "h", "-u", "33", "-w", "/srv", "i"],
     {"tty": True, "interactive": True, "auto_remove": True, "read_only": True,
      "name": "web", "hostname": "h", "user": "33", "workdir": "/srv"}),
]


@pytest.mark.parametrize("argv,expected", [r[1:] for r in FLAG_ROWS],
                         ids=[r[0] for r in FLAG_ROWS])
def test_flags(argv, expected):
    d = flags(*argv, environ={"HOSTVAR": "h"})
    assert {k: getattr(d, k) for k in expected} == expected


FLAG_ERRORS = [
    (["--memory", "x", "i"], '--memory: invalid size "x"'),
    (["--memory-swap", "lots", "i"], '--memory-swap: invalid size "lots"'),
    (["--cpus", "0", "i"], "--cpus: 0: give a positive number of CPUs"),
    (["--pids-limit", "-5", "i"], "--pids-limit: invalid number"),
    (["-e", "=x", "i"], '-e: invalid environment variable "=x"'),
    (["-v", "rel:/d", "-v", "/a", "i"], '-v: invalid volume "/a"'),
    (["--tmpfs", "t", "i"], '--tmpfs: invalid tmpfs "t"'),
    (["-p", "eighty", "i"], "-p: port mapping 'eighty'"),
    (["-p", "80:80", "--network", "host", "i"], "-p: ports cannot be published with "
                                                "--network host"),
    (["--cap-add", "fly", "i"], '--cap-add: unknown capability "fly"'),
    (["--cap-drop", "fly", "i"], '--cap-drop: unknown capability "fly"'),
    (["--restart", "sometimes", "i"], '--restart: invalid restart policy "sometimes"'),
    (["--restart", "always", "--rm", "i"], "--rm: --rm and --restart cannot be used together"),
    (["--userns", "maybe", "i"], '--userns: invalid user namespace mode "maybe"'),
    (["--userns", "auto", "--uidmap", "0:1:1", "i"], "--userns: give either an explicit ID"),
    (["--uidmap", "0:1", "i"], "--uidmap: invalid ID mapping"),
    (["--gidmap", "0:1:1", "i"], "--gidmap: a gid map needs a uid map too"),
    (["--sysctl", "x", "i"], '--sysctl: invalid value "x": use KEY=VALUE'),
    (["--ulimit", "nofile=x", "i"], '--ulimit: invalid limit "nofile=x"'),
    (["--ulimit", "fly=1", "i"], "--ulimit.fly: unknown resource limit"),
    (["--ulimit", "nofile=2:1", "i"], "--ulimit.nofile: soft limit 2 is above the hard one 1"),
    (["--security-opt", "apparmor=x", "i"], '--security-opt: unknown option "apparmor=x"'),
    (["--log-opt", "max-age=1", "i"], '--log-opt: unknown option "max-age=1"'),
    (["--log-opt", "max-file=0", "i"], "--log-opt: invalid \"max-file=0\""),
    (["--log-opt", "max-size=big", "i"], '--log-opt max-size: invalid size "big"'),
    (["--stop-signal", "fly", "i"], '--stop-signal: unknown signal "fly"'),
    (["--name", "bad name", "i"], '--name: invalid container name "bad name"'),
    (["--network", "container:", "i"], '--network: "container:"'),
    (["--env-file", "/nonexistent/env", "i"], "--env-file: /nonexistent/env: no such file"),
    ([], "requires an image (or --rootfs DIR)"),
]


def test_a_terminal_may_have_a_restart_policy():
    # docker's: the supervisor holds a -t container's terminal, through every restart
    d = flags("-t", "--restart", "always", "i")
    assert d.tty and d.restart.name == "always"


@pytest.mark.parametrize("argv,message", FLAG_ERRORS, ids=[m for _a, m in FLAG_ERRORS])
def test_flag_errors_name_the_flag(argv, message):
    with pytest.raises(BadValue) as err:
        flags(*argv)
    assert str(err.value).startswith(message), str(err.value)


OPTION_ERRORS = [
    ({"memory": "lots"}, 'memory: invalid size "lots"'),
    ({"volumes": ["/a"]}, 'volumes: invalid volume "/a"'),
    ({"ports": ["80:80"], "network": "none"}, "ports: ports cannot be published with network"),
    ({"remove": True, "restart": "always"}, "remove: remove and restart cannot be used"),
    ({"mounts": [{"type": "nfs", "destination": "/x"}]}, "mounts[0]: use a Mount"),
    ({"cgroup": {"pids.max": "many"}}, "cgroup['pids.max']: invalid value"),
    ({"colour": "red"}, "colour: not a container option"),
]


@pytest.mark.parametrize("options,message", OPTION_ERRORS, ids=[m for _o, m in OPTION_ERRORS])
def test_option_errors_name_the_option(options, message):
    with pytest.raises(BadValue) as err:
        from_options("busybox", **options)
    assert str(err.value).startswith(message), str(err.value)


def test_options_build_what_the_flags_build():
    from_client = from_options("busybox", ["httpd"], name="web", memory="64m", cpus="0.5",
                               ports=["8080:80"], volumes=["/s:/d:ro"], tmpfs=["/t"],
                               env={"A": "1"}, remove=True, entrypoint="", labels={"k": "v"},
                               environ={})
    from_cli = flags("--name", "web", "-m", "64m", "--cpus", "0.5", "-p", "8080:80", "-v",
                     "/s:/d:ro", "--tmpfs", "/t", "-e", "A=1", "--rm", "--entrypoint", "",
                     "-l", "k=v", "busybox", "httpd")
    assert from_client == from_cli
    assert from_options("busybox", "echo hi").command == ("/bin/sh", "-c", "echo hi")


def write(tmp_path, body):
    path = tmp_path / "def.py"
    path.write_text("from kago.manager.define import Container, bind, tmpfs, id_range\n"
                    + textwrap.dedent(body))
    return str(path)


DSL_ERRORS = [
    ('Container("c", image="i", memory="lots")', 2, 'memory: invalid size "lots"'),
    ('c = Container("c", image="i")\nc.memory = "lots"', 3, 'memory: invalid size "lots"'),
    ('c = Container("c", image="i",\n              cpus=0)', 2, "cpus: 0: give a positive"),
    ('c = Container("c", image="i")\nc.restart = "always"\nc.pids_limit = "x"', 4,
     "pids_limit: invalid number"),
    ('c = Container("c", image="i")\n\nc.restart = "sometimes"', 4, "restart: invalid restart"),
    ('c = Container("c", image="i", network="host")\nc.ports = ["80:80"]', 3,
     "ports: ports cannot be published with network host"),
    ('Container("c", image="i", mounts=["/x"])', 2, "mounts[0]: use tmpfs(...) or bind(...)"),
    ('Container("c", image="i", mounts=[tmpfs("rel")])', 2, 'tmpfs: invalid mount destination'),
    ('Container("c", image="i", rlimits={"nofile": (2, 1)})', 2, "rlimits.nofile: soft limit"),
    ('Container("c", image="i", cgroup={"cpu.shares": "many"})', 2,
     "cgroup['cpu.shares']: invalid value"),
    ('c = Container("c", image="i")\nc.cap_drop = ["FLY"]', 3,
     'cap_drop: unknown capability "FLY"'),
    ('Container("c", image="i", capabilities=["FLY"])', 2, 'capabilities: unknown capability'),
    ('Container("c", image="i", ids="auto", uid_map=[(0, 1, 1)])', 2,
     "ids: give either an explicit ID map"),
    ('Container("c", image="i", namespaces={"mount": "host"})', 2,
     "namespaces.mount: a container always has its own mount namespace"),
    ('Container("c", image="i", independent=("proc", "floppy"))', 2,
     'independent: "floppy" is not one of'),
    ('Container("c", image="i", seccomp="strict")', 2, 'seccomp: "strict": use "default"'),
    ('Container("c", image="i", log={"max_files": 0})', 2, "log.max_files: invalid number"),
    ('Container("c", image="i", stop_signal="FLY")', 2, 'stop_signal: unknown signal "FLY"'),
    ('Container("c", image="i", command=[1, 2])', 2, "command: a list of strings"),
    ('Container("c", image="i", ids=id_range(-1))', 2, "id_range: invalid ID mapping"),
]


@pytest.mark.parametrize("body,line,message", DSL_ERRORS, ids=[m for _b, _l, m in DSL_ERRORS])
def test_dsl_errors_name_the_file_and_line(tmp_path, body, line, message):
    path = write(tmp_path, body + "\n")
    with pytest.raises(DefinitionError) as err:
        load(path)
    assert (err.value.file, err.value.line) == (path, line)
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_the_dsl_and_the_flags_build_the_same_definition(tmp_path):
    path = write(tmp_path, """\
        c = Container("web", image="busybox", command=["httpd"], memory="64m", cpus=0.5,
                      pids_limit=100, cpuset_cpus="0", ports=["8080:80"], restart="always",
                      env={"A": "1"}, cap_add=["net_admin"], rlimits={"nofile": (10, 20)},
                      mounts=[bind("/s", "/d", readonly=True), tmpfs("/t")],
                      labels={"k": "v"}, sysctls={"net.x": "1"}, stop_signal="USR1")
        c.namespaces = {"pid": "host"}
        """)
    from_file = load(path).definitions["web"]
    from_cli = flags("--name", "web", "--hostname", "web", "-m", "64m", "--cpus", "0.5",
                     "--pids-limit", "100", "--cpuset-cpus", "0", "-p", "8080:80",
                     "--restart", "always", "-e", "A=1", "--cap-add", "NET_ADMIN",
                     "--ulimit", "nofile=10:20", "-v", "/s:/d:ro", "--tmpfs", "/t", "-l",
                     "k=v", "--sysctl", "net.x=1", "--stop-signal", "SIGUSR1", "busybox",
                     "httpd")
    assert from_file.but(namespaces=()) == from_cli
    assert from_file.namespaces == (Namespace("pid", "host"),)


def test_json_round_trip_keeps_every_part():
    d = Definition(
        image="busybox", name="web", command=("sh",), entrypoint=(), env=("A=1",),
        mounts=(Mount("bind", "/d", "/s", True, ("rslave",)),), ports=(Port(1, 2, "udp"),),
        network=Network("container", container="db"), ids=IdMapping(
            uid_map=(IdRange(0, 1, 2),)), namespaces=(Namespace("pid", "host"),),
        independent=("proc",), limits=Limits(memory=1, cpus=1.5, cgroup=(
            CgroupKey("cpu.max", "1 2"), CgroupKey("pids.max", -1, "pids", "limit"))),
        rlimits=(Rlimit("nofile", 1, 2),), capabilities=Capabilities(("ALL",), ()),
        sysctls=(("a", "b"),), oci_hooks=(OciHook("startContainer", "/bin/sh", ("sh",)),),
        restart=RestartPolicy("on-failure", 2), stop_timeout=4, labels=(("k", "v"),),
        log=LogOptions(1, 2))
    doc = json.loads(json.dumps(to_json(d)))
    assert doc["format"] == 1
    assert from_json(doc) == d
    assert to_json(Definition(image="x")) == {"format": 1, "image": "x"}
    with pytest.raises(ManagerError, match="format 2"):
        from_json({**doc, "format": 2})


OLD_CONFIG = {
    "name": "web", "image": "busybox", "command": ["httpd"], "entrypoint": None,
    "env": ["A=1"], "workdir": None, "user": None, "hostname": "web", "read_only": False,
    "auto_remove": False, "interactive": False, "tty": False, "network": "back",
    "ip": None, "aliases": ["db"],
    "mounts": [{"type": "bind", "source": "/s", "destination": "/d", "readonly": True,
                "options": []},
               {"type": "tmpfs", "source": "tmpfs", "destination": "/t", "readonly": False,
                "options": []}],
    "ports": ["8080:80/tcp"], "memory": 67108864, "cpus": 0.5, "pids_limit": 10,
    "cgroup": {"cpu.max": "1 2"}, "rlimits": {"nofile": [10, 20]}, "cap_add": ["NET_ADMIN"],
    "cap_drop": [], "restart": "on-failure:3", "userns": "auto", "namespaces": {},
    "independent": ["proc", "sys", "dev", "devpts", "shm", "mqueue"], "network_etc": "own",
    "log": {"max_size": 4096, "max_files": 2}, "labels": {"k": "v"}, "sysctls": {},
    "seccomp": "default", "oci_hooks": {"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "x"], "timeout": 60}]},
}


def test_a_config_of_the_previous_format_converts_through_the_builder():
    d = from_config(OLD_CONFIG)
    assert d.network == Network("bridge", "back", aliases=("db",))
    assert d.mounts[1].options == ("nosuid", "nodev", "mode=1777")
    assert d.limits == Limits(memory=64 << 20, cpus=0.5, pids=10,
                              cgroup=(CgroupKey("cpu.max", "1 2"),))
    assert d.restart == RestartPolicy("on-failure", 3) and d.ids == IdMapping("auto")
    assert d.capabilities == Capabilities(("CAP_NET_ADMIN",))
    assert d.oci_hooks == (OciHook("createContainer", "/bin/sh", ("sh", "-c", "x"),
                                   timeout=60),)
    assert d.log == LogOptions(4096, 2) and d.label_dict == {"k": "v"}


def test_records_of_the_previous_format_are_read_as_definitions(tmp_path):
    from kago.manager.paths import Paths
    from kago.manager.records import Records
    records = Records(Paths(str(tmp_path / "root"), str(tmp_path / "run")))
    cid = "ab" * 32
    records.create({"id": cid, "name": "web", "config": OLD_CONFIG, "state": {}})
    record = records.load(cid)
    assert "config" not in record and record["definition"]["format"] == 1
    assert stored(record) == from_config(OLD_CONFIG)
    records.update(cid, lambda r: None)  # the next write stores the new format
    with open(records.paths.record(cid)) as f:
        assert "config" not in json.load(f)
    assert stored({"id": cid}) is None  # a create cut short: no definition yet
