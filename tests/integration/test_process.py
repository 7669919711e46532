"""The container's process: argv, environment, cwd, user, umask, rlimits, oom score,
no_new_privs, the five capability sets, and inherited fds (--preserve-fds, LISTEN_FDS).

Each test runs one busybox container and parses what it prints about itself.
"""

import os
import resource
import subprocess

import pytest

from conftest import KAGO_OCI
from kago.plan.tables import CAPABILITIES


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def run(oci, make_bundle, args, mutate=None):
    b = make_bundle(args, mutate=mutate)
    return oci("run", "--bundle", b.path, oci.new_id())


def sh(oci, make_bundle, script, mutate=None):
    return run(oci, make_bundle, ["sh", "-c", script], mutate)


def process(**fields):
    def mutate(cfg):
        cfg["process"].update(fields)
    return mutate


# --- argv, env, cwd --------------------------------------------------------------------------

def test_args_are_passed_verbatim(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 ["sh", "-c", 'printf "[%s]\\n" "$0" "$@"', "zero", "a b", "", "c'\"d", "*"]))
    assert out.splitlines() == ["[zero]", "[a b]", "[]", "[c'\"d]", "[*]"]


def test_env_values_with_equals_and_spaces(oci, make_bundle):
    env = ["PATH=/bin:/usr/bin", "A=x=y", "B=with  spaces", "EMPTY=", "C= lead"]
    out = ok(sh(oci, make_bundle, 'printf "[%s]\\n" "$A" "$B" "$EMPTY" "$C"; env | sort',
                process(env=env)))
    lines = out.splitlines()
    assert lines[:4] == ["[x=y]", "[with  spaces]", "[]", "[ lead]"]
    names = {line.split("=", 1)[0] for line in lines[4:]}
    # exactly the spec's variables (sh adds PWD and SHLVL), nothing from kago-oci's own
    # (plus HOME, which runc too adds from /etc/passwd when the spec has none)
    assert names - {"PWD", "SHLVL"} == {"PATH", "A", "B", "EMPTY", "C", "HOME"}, lines[4:]


@pytest.mark.parametrize("uid,home", [(0, "/root"), (1000, "/home/user"), (4242, "/")])
def test_home_from_the_images_passwd(oci, make_bundle, uid, home):
    # runc's rule: HOME, when the spec has none, is the user's entry in /etc/passwd, or "/"
    out = ok(sh(oci, make_bundle, 'echo "[$HOME]"',
                process(env=["PATH=/bin"], user={"uid": uid, "gid": 0})))
    assert out.strip() == f"[{home}]"


def test_home_from_spec_is_kept(oci, make_bundle):
    out = ok(sh(oci, make_bundle, 'echo "[$HOME]"', process(env=["PATH=/bin", "HOME=/srv"])))
    assert out.strip() == "[/srv]"


def test_home_when_passwd_is_a_fifo(oci, make_bundle):
    b = make_bundle(["sh", "-c", 'echo "[$HOME]"'], mutate=process(env=["PATH=/bin"]))
    os.unlink(os.path.join(b.rootfs, "etc/passwd"))
    os.mkfifo(os.path.join(b.rootfs, "etc/passwd"))  # a hostile image must not hang us
    out = ok(oci("run", "--bundle", b.path, oci.new_id(), timeout=15))
    assert out.strip() == "[/]"


def test_runtime_environment_does_not_leak(oci, make_bundle):
    b = make_bundle(["sh", "-c", "env"])
    env = dict(os.environ, KAGO_TEST_HOST_SECRET="s3cret")
    out = ok(oci("run", "--bundle", b.path, oci.new_id(), env=env))
    assert "s3cret" not in out


def test_cwd(oci, make_bundle):
    assert ok(sh(oci, make_bundle, "pwd", process(cwd="/etc"))).strip() == "/etc"


def test_missing_cwd_is_created(oci, make_bundle):
    b = make_bundle(["sh", "-c", "pwd; ls -ld . | cut -c1-10"], mutate=process(cwd="/new/work"))
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert out.splitlines() == ["/new/work", "drwxr-xr-x"]
    assert os.path.isdir(os.path.join(b.rootfs, "new/work"))  # made in the rootfs, like runc


def test_cwd_that_is_a_file_fails_clearly(oci, make_bundle):
    out = sh(oci, make_bundle, "true", process(cwd="/etc/passwd"))
    assert out.returncode != 0
    assert "/etc/passwd" in out.stderr and "not a directory" in out.stderr, out.stderr


# --- user, groups, umask ----------------------------------------------------------------------

def test_user_uid_gid_and_additional_gids(oci, make_bundle):
    user = {"uid": 1000, "gid": 100, "additionalGids": [5, 65534]}
    out = ok(sh(oci, make_bundle, "id -u; id -g; id -G", process(user=user)))
    uid, gid, groups = out.splitlines()
    assert (uid, gid) == ("1000", "100")
    assert sorted(int(g) for g in groups.split()) == [5, 100, 65534]


def test_user_without_additional_gids_has_no_supplementary_groups(oci, make_bundle):
    out = ok(sh(oci, make_bundle, "grep Groups: /proc/self/status",
                process(user={"uid": 1000, "gid": 1000})))
    assert out.split() == ["Groups:"]  # nothing of the runtime's own groups


def test_umask_from_spec(oci, make_bundle):
    out = ok(sh(oci, make_bundle, "umask", process(user={"uid": 0, "gid": 0, "umask": 0o027})))
    assert out.strip() == "0027"


def test_default_umask(oci, make_bundle):
    assert ok(sh(oci, make_bundle, "umask")).strip() == "0022"


def test_umask_applies_to_new_files(oci, make_bundle):
    def mutate(cfg):
        cfg["process"]["user"]["umask"] = 0o077
        cfg["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    out = ok(sh(oci, make_bundle, "touch /tmp/f && stat -c %a /tmp/f", mutate))
    assert out.strip() == "600"


# --- rlimits, oom score -----------------------------------------------------------------------

def test_rlimit_nofile_soft_and_hard(oci, make_bundle):
    rl = [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}]
    out = ok(sh(oci, make_bundle, "ulimit -n; ulimit -Hn", process(rlimits=rl)))
    assert out.split() == ["256", "512"]


def test_several_rlimits(oci, make_bundle):
    rl = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
          {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
          {"type": "RLIMIT_NPROC", "soft": 333, "hard": 444}]
    out = ok(sh(oci, make_bundle, "ulimit -n; ulimit -c; ulimit -u; ulimit -Hu",
                process(rlimits=rl)))
    assert out.split() == ["100", "0", "333", "444"]


def test_raising_hard_rlimit_without_cap_sys_resource(oci, make_bundle):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with open("/proc/sys/fs/nr_open") as f:
        if hard >= int(f.read()):
            pytest.skip("the host's hard RLIMIT_NOFILE is already the kernel's maximum")
    rl = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    out = sh(oci, make_bundle, "ulimit -Hn", process(rlimits=rl))
    if out.returncode == 0:
        pytest.skip("this host lets root raise a hard limit (it has CAP_SYS_RESOURCE)")
    assert "setrlimit" in out.stderr and "RLIMIT_NOFILE" in out.stderr, out.stderr
    assert "CAP_SYS_RESOURCE" in out.stderr, out.stderr


def test_oom_score_adj(oci, make_bundle):
    out = ok(sh(oci, make_bundle, "cat /proc/self/oom_score_adj", process(oomScoreAdj=500)))
    assert out.strip() == "500"


def test_negative_oom_score_adj(oci, make_bundle):
    out = sh(oci, make_bundle, "cat /proc/self/oom_score_adj", process(oomScoreAdj=-500))
    if out.returncode == 0:
        assert out.stdout.strip() == "-500"
        return
    assert "oom_score_adj" in out.stderr and "CAP_SYS_RESOURCE" in out.stderr, out.stderr


def test_oom_score_adj_does_not_change_the_runtime(oci, make_bundle):
    with open("/proc/self/oom_score_adj") as f:
        before = f.read()
    ok(sh(oci, make_bundle, "true", process(oomScoreAdj=900)))
    with open("/proc/self/oom_score_adj") as f:
        assert f.read() == before


# --- no_new_privs -----------------------------------------------------------------------------

@pytest.mark.parametrize("nnp,want", [(True, "1"), (False, "0")])
def test_no_new_privileges(oci, make_bundle, nnp, want):
    out = ok(sh(oci, make_bundle, "grep NoNewPrivs /proc/self/status",
                process(noNewPrivileges=nnp)))
    assert out.split() == ["NoNewPrivs:", want]


# --- capabilities -----------------------------------------------------------------------------

CAP_SCRIPT = "grep ^Cap /proc/self/status"
SETS = {"CapInh": "inheritable", "CapPrm": "permitted", "CapEff": "effective",
        "CapBnd": "bounding", "CapAmb": "ambient"}


def decode_caps(out):
    """{"effective": {"CAP_KILL", ...}, ...} from /proc/self/status Cap* lines."""
    names = {number: name for name, number in CAPABILITIES.items()}
    sets = {}
    for line in out.splitlines():
        key, value = line.split(":")
        mask = int(value.strip(), 16)
        sets[SETS[key]] = {names[n] for n in names if mask >> n & 1}
    return sets


def caps(**sets):
    def mutate(cfg):
        cfg["process"]["capabilities"] = {k: sorted(v) for k, v in sets.items()}
    return mutate


def test_capabilities_of_root(oci, make_bundle):
    bounding = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID"}
    spec = dict(bounding=bounding, effective={"CAP_CHOWN", "CAP_KILL"},
                permitted={"CAP_CHOWN", "CAP_KILL"}, inheritable={"CAP_KILL"},
                ambient={"CAP_KILL"})
    got = decode_caps(ok(sh(oci, make_bundle, CAP_SCRIPT, caps(**spec))))
    assert got["bounding"] == bounding
    assert got["inheritable"] == {"CAP_KILL"}
    assert got["ambient"] == {"CAP_KILL"}
    # uid 0 gains its bounding set at execve, but no_new_privs (the default spec's) caps the
    # result at what it held before: the spec's permitted set (runc shows the same)
    assert got["permitted"] == got["effective"] == {"CAP_CHOWN", "CAP_KILL"}


def test_capabilities_of_root_without_no_new_privs(oci, make_bundle):
    bounding = {"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
    spec = dict(bounding=bounding, effective={"CAP_KILL"}, permitted={"CAP_KILL"},
                inheritable=set(), ambient=set())

    def mutate(cfg):
        caps(**spec)(cfg)
        cfg["process"]["noNewPrivileges"] = False
    got = decode_caps(ok(sh(oci, make_bundle, CAP_SCRIPT, mutate)))
    # without no_new_privs, execve as uid 0 grants the whole bounding set
    assert got["permitted"] == got["effective"] == bounding


def test_ambient_capabilities_survive_exec_as_non_root(oci, make_bundle):
    want = {"CAP_NET_BIND_SERVICE", "CAP_KILL"}
    spec = dict(bounding=want | {"CAP_CHOWN"}, effective=want, permitted=want,
                inheritable=want, ambient=want)

    def mutate(cfg):
        caps(**spec)(cfg)
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    got = decode_caps(ok(sh(oci, make_bundle, CAP_SCRIPT, mutate)))
    assert got == {"bounding": want | {"CAP_CHOWN"}, "effective": want, "permitted": want,
                   "inheritable": want, "ambient": want}


def test_non_root_without_ambient_loses_capabilities_at_exec(oci, make_bundle):
    want = {"CAP_NET_BIND_SERVICE"}
    spec = dict(bounding=want, effective=want, permitted=want, inheritable=want,
                ambient=set())

    def mutate(cfg):
        caps(**spec)(cfg)
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    got = decode_caps(ok(sh(oci, make_bundle, CAP_SCRIPT, mutate)))
    assert got["effective"] == got["permitted"] == got["ambient"] == set()
    assert got["inheritable"] == want and got["bounding"] == want


def test_bounding_set_drops_what_is_not_listed(oci, make_bundle):
    got = decode_caps(ok(sh(oci, make_bundle, CAP_SCRIPT,
                            caps(bounding={"CAP_KILL"}, effective={"CAP_KILL"},
                                 permitted={"CAP_KILL"}))))
    assert got["bounding"] == {"CAP_KILL"}


def test_dropped_capability_is_really_gone(oci, make_bundle):
    # chown needs CAP_CHOWN; the default spec does not grant it
    out = sh(oci, make_bundle, "mkdir -p /tmp/x && chown 1000 /tmp/x; echo rc=$?",
             lambda c: c["mounts"].append({"destination": "/tmp", "type": "tmpfs",
                                           "source": "tmpfs", "options": []}))
    assert out.stdout.strip() == "rc=1" and "Operation not permitted" in out.stderr


def test_default_spec_capabilities(oci, make_bundle):
    got = decode_caps(ok(sh(oci, make_bundle, CAP_SCRIPT)))
    default = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
    assert got["bounding"] == got["effective"] == got["permitted"] == default
    assert got["inheritable"] == got["ambient"] == set()  # runc warns and skips ambient too


def test_unknown_capabilities_are_skipped_with_a_warning(oci, make_bundle):
    """As runc and crun: a name the kernel does not have is left out of every set, with one
    warning naming it (was: the whole container refused)."""
    want = {"CAP_KILL", "CAP_NET_BIND_SERVICE"}
    spec = {k: want | {"CAP_UNKNOWN", "CAP_LAST_CAP_PLUS_ONE"} for k in
            ("bounding", "effective", "permitted", "inheritable", "ambient")}
    proc = sh(oci, make_bundle, CAP_SCRIPT, caps(**spec))
    got = decode_caps(ok(proc))
    assert got == {k: want for k in spec}
    assert ("process.capabilities: ignoring unknown or unavailable capabilities: "
            "[CAP_LAST_CAP_PLUS_ONE CAP_UNKNOWN]") in proc.stderr
    assert proc.stderr.count("ignoring unknown") == 1


def _exec_caps(oci, make_bundle, *exec_args, user=None, inheritable=()):
    from test_lifecycle import detached
    default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

    def mutate(cfg):
        cfg["process"]["capabilities"] = {k: list(default) for k in
                                          ("bounding", "effective", "permitted", "ambient")}
        cfg["process"]["capabilities"]["inheritable"] = list(inheritable)
        cfg["process"]["capabilities"]["bounding"] += list(inheritable)  # capset(2)'s rule
        if user is not None:
            cfg["process"]["user"] = {"uid": user, "gid": user}
    b = make_bundle(["sleep", "30"], mutate=mutate)
    cid = oci.new_id()
    assert detached(oci, "run", "--detach", "--bundle", b.path, cid).returncode == 0
    proc = oci("exec", *exec_args, cid, "sh", "-c", CAP_SCRIPT)
    oci("delete", "--force", cid)
    return proc


DEFAULT_CAPS = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}


def test_exec_cap_as_root_adds_to_bounding_effective_permitted_not_inheritable(
        oci, make_bundle):
    """runc 1.1's exec.go: bounding, effective, permitted and ambient, never inheritable
    (was: all five), so an ambient one cannot be raised either (read back from runc 1.1.5:
    CapInh 0, CapAmb 0)."""
    got = decode_caps(ok(_exec_caps(oci, make_bundle, "--cap", "CAP_SYS_ADMIN")))
    with_admin = DEFAULT_CAPS | {"CAP_SYS_ADMIN"}
    assert got == {"bounding": with_admin, "effective": with_admin, "permitted": with_admin,
                   "inheritable": set(), "ambient": set()}


def test_exec_cap_as_non_root(oci, make_bundle):
    """uid 1000 keeps no effective/permitted capability across execve without ambient ones:
    --cap widens only the bounding set then (runc 1.1.5 shows the same)."""
    got = decode_caps(ok(_exec_caps(oci, make_bundle, "--cap", "CAP_SYS_ADMIN", user=1000)))
    assert got == {"bounding": DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, "effective": set(),
                   "permitted": set(), "inheritable": set(), "ambient": set()}


def test_exec_cap_is_ambient_where_the_spec_makes_it_inheritable(oci, make_bundle):
    """Ambient needs inheritable (and permitted, which --cap adds): then uid 1000 keeps it."""
    got = decode_caps(ok(_exec_caps(oci, make_bundle, "--cap", "CAP_SYS_ADMIN", user=1000,
                                    inheritable=["CAP_SYS_ADMIN"])))
    assert got["ambient"] == got["effective"] == got["permitted"] == {"CAP_SYS_ADMIN"}
    assert got["inheritable"] == {"CAP_SYS_ADMIN"}


def test_exec_unknown_cap_is_skipped_with_a_warning(oci, make_bundle):
    proc = _exec_caps(oci, make_bundle, "--cap", "CAP_UNKNOWN", "--cap", "CAP_SYS_ADMIN")
    got = decode_caps(ok(proc))
    assert "CAP_SYS_ADMIN" in got["effective"]
    assert ("ignoring unknown or unavailable capabilities: [CAP_UNKNOWN]") in proc.stderr


def test_exec_process_json_with_an_unknown_cap(oci, make_bundle, tmp_path):
    import json
    from test_lifecycle import detached
    b = make_bundle(["sleep", "30"])
    cid = oci.new_id()
    assert detached(oci, "run", "--detach", "--bundle", b.path, cid).returncode == 0
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": ["sh", "-c", CAP_SCRIPT], "cwd": "/",
                                "capabilities": {k: ["CAP_KILL", "CAP_NOPE"] for k in
                                                 ("bounding", "effective", "permitted")}}))
    proc = oci("exec", "--process", path, cid)
    oci("delete", "--force", cid)
    got = decode_caps(ok(proc))
    assert got["bounding"] == got["effective"] == {"CAP_KILL"}
    assert "process.capabilities: ignoring unknown or unavailable capabilities: [CAP_NOPE]" \
        in proc.stderr


# --- inherited fds ----------------------------------------------------------------------------

def _oci_with_fds(oci, redirections, *args, env=None):
    """Run kago-oci through sh so that fds 3, 4... are exactly what the test opened."""
    argv = ["sh", "-c", f'exec "$@" {redirections}', "sh", KAGO_OCI, "--root", oci.root,
            *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env=env or dict(os.environ))


def fd_listing(out):
    return sorted(int(x) for x in out.split())


def test_preserve_fds(oci, make_bundle):
    b = make_bundle(["sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/fd/3; readlink /proc/$$/fd/4"])
    proc = _oci_with_fds(oci, "3</etc/hostname 4</etc/passwd", "run", "--preserve-fds", "2",
                         "--bundle", b.path, oci.new_id())
    out = ok(proc).splitlines()
    assert fd_listing(" ".join(out[:-2])) == [0, 1, 2, 3, 4]
    assert out[-2:] == ["/etc/hostname", "/etc/passwd"]  # the host's files, by their host path


def test_preserved_fd_is_readable(oci, make_bundle, tmp_path):
    data = tmp_path / "data"
    data.write_text("passed in\n")
    b = make_bundle(["sh", "-c", "cat <&3"])
    proc = _oci_with_fds(oci, f"3<{data}", "run", "--preserve-fds", "1", "--bundle", b.path,
                         oci.new_id())
    assert ok(proc) == "passed in\n"


def test_listen_fds(oci, make_bundle):
    b = make_bundle(["sh", "-c", "ls /proc/$$/fd; env | grep ^LISTEN_ | sort"])
    env = dict(os.environ, LISTEN_FDS="1")
    # LISTEN_PID must be kago-oci's own pid (systemd's rule): set it in the shell that execs it
    argv = ["sh", "-c", 'LISTEN_PID=$$ exec "$@" 3</etc/hostname', "sh", KAGO_OCI, "--root",
            oci.root, "run", "--bundle", b.path, oci.new_id()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    lines = ok(proc).splitlines()
    assert lines[-2:] == ["LISTEN_FDS=1", "LISTEN_PID=1"]
    assert fd_listing(" ".join(lines[:-2])) == [0, 1, 2, 3]


def test_listen_fds_and_preserve_fds_add_up(oci, make_bundle):
    b = make_bundle(["sh", "-c", "ls /proc/$$/fd; echo $LISTEN_FDS"])
    env = dict(os.environ, LISTEN_FDS="1")
    argv = ["sh", "-c", 'LISTEN_PID=$$ exec "$@" 3</etc/hostname 4</etc/hostname',
            "sh", KAGO_OCI, "--root", oci.root, "run", "--preserve-fds", "1", "--bundle",
            b.path, oci.new_id()]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    lines = ok(proc).splitlines()
    assert fd_listing(" ".join(lines[:-1])) == [0, 1, 2, 3, 4]
    assert lines[-1] == "1"


# --- the runtime's record of the process ------------------------------------------------------

def test_exited_process_without_start_time_is_not_alive():
    # the deterministic core of the race above, at the store's level
    from kago.runtime import store
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert not store.alive(pid, None)


# --- signal dispositions ---------------------------------------------------------------------

def test_the_program_starts_with_no_signal_ignored(oci, make_bundle):
    """runc (Go) hands the program default dispositions for SIGPIPE and SIGXFSZ; kago-oci is
    Python, which ignores both at start-up: the init puts them back before execve, so `yes |
    head -1` ends `yes` by SIGPIPE as under runc."""
    out = ok(run(oci, make_bundle, ["grep", "SigIgn", "/proc/self/status"]))
    ignored = int(out.split()[1], 16)
    import signal
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not ignored & (1 << (sig - 1)), out
    assert ok(sh(oci, make_bundle, "yes | head -1; echo ${PIPESTATUS:-done}")).startswith("y\n")

