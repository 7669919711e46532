"""linux.seccomp on real containers: the default profile, each action, argument filters, the
flags, the noNewPrivileges ordering, exec, and SCMP_ACT_NOTIFY with a listener.

Every container is a busybox bundle; what a filter does is read from what busybox prints
(its error messages carry strerror) and from /proc/self/status (Seccomp: 2 = filter mode).
"""

import array
import errno
import fcntl
import json
import os
import socket
import struct
import threading

import pytest
from test_lifecycle import detached, error_message

from kago.oci.seccomp_profile import DEFAULT_CAPABILITIES, default_profile

# a writable place in the default spec's read-only root
WRITABLE = "/dev/shm"


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def run(oci, make_bundle, script, seccomp, mutate=None):
    def edit(cfg):
        if seccomp is not None:
            cfg["linux"]["seccomp"] = seccomp
        if mutate:
            mutate(cfg)
    b = make_bundle(["sh", "-c", script], mutate=edit)
    return oci("run", "--bundle", b.path, oci.new_id())


def allow_but(*rules, **kw):
    """A profile allowing everything but the given rules."""
    return dict({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}, **kw)


def rule(action, *names, **kw):
    return dict({"names": list(names), "action": action}, **kw)


MKDIR = ("mkdir", "mkdirat")


def caps(*names):
    def mutate(cfg):
        cfg["process"]["capabilities"] = {k: list(names) for k in
                                          ("bounding", "effective", "permitted")}
    return mutate


def status_fields(text):
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())
            if v}


# --- the default profile -------------------------------------------------------------------

def test_default_profile_lets_busybox_work(oci, make_bundle):
    out = ok(run(oci, make_bundle, "ls / >/dev/null && ps >/dev/null && echo applets-ok; "
                 f"mkdir {WRITABLE}/d && touch {WRITABLE}/d/f && rm -r {WRITABLE}/d && "
                 "echo files-ok; (sleep 0; echo forked-ok) ; cat /proc/self/status",
                 default_profile()))
    assert "applets-ok" in out and "files-ok" in out and "forked-ok" in out
    status = status_fields(out)
    assert status["Seccomp"] == "2"
    assert status["Seccomp_filters"] == "1"
    assert status["NoNewPrivs"] == "1"


def test_default_profile_denies_mount_even_with_cap_sys_admin(oci, make_bundle):
    """The profile for docker's default caps, in a container that has CAP_SYS_ADMIN: only the
    filter can be what stops the mount (the control run shows that the mount works)."""
    script = "mount -t tmpfs t /tmp && echo mounted"
    with_admin = caps(*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN")
    control = run(oci, make_bundle, script, None, with_admin)
    assert "mounted" in ok(control)
    proc = run(oci, make_bundle, script, default_profile(), with_admin)
    assert proc.returncode != 0
    assert "mounted" not in proc.stdout
    assert "permission denied" in proc.stderr  # busybox's words for EPERM from mount(2)


@pytest.mark.parametrize("script, words", [
    ("unshare -U true", "unshare(0x10000000): Operation not permitted"),
    ("unshare -m true", "Operation not permitted"),
    ("nsenter -t 1 -m true", "can't reassociate to namespace 'mnt': Operation not permitted"),
    ("reboot -f", "Operation not permitted"),
    ("swapoff -a; swapon /dev/null", "Operation not permitted"),
    ("hostname box", "Operation not permitted"),
    ("chroot / true", "Operation not permitted"),  # runc's caps lack CAP_SYS_CHROOT
])
def test_default_profile_denies(oci, make_bundle, script, words):
    all_caps = caps(*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN", "CAP_SYS_BOOT")
    proc = run(oci, make_bundle, script,
               default_profile(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]),
               all_caps)
    assert proc.returncode != 0, proc.stdout
    assert words in proc.stderr


def test_default_profile_for_admin_caps_allows_what_they_unlock(oci, make_bundle):
    admin = list(DEFAULT_CAPABILITIES) + ["CAP_SYS_ADMIN"]
    out = ok(run(oci, make_bundle, "mount -t tmpfs t /tmp && echo mounted; "
                 "unshare -m true && echo unshared", default_profile(admin), caps(*admin)))
    assert "mounted" in out and "unshared" in out


# --- actions -------------------------------------------------------------------------------

def test_errno_ret_is_honoured(oci, make_bundle):
    proc = run(oci, make_bundle, f"mkdir {WRITABLE}/x",
               allow_but(rule("SCMP_ACT_ERRNO", *MKDIR, errnoRet=errno.ENOSPC)))
    assert proc.returncode != 0
    assert "No space left on device" in proc.stderr


def test_default_errno_ret(oci, make_bundle):
    sec = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSPC,
           "syscalls": default_profile()["syscalls"]}
    sec["syscalls"][0] = dict(sec["syscalls"][0],
                              names=[n for n in sec["syscalls"][0]["names"] if n not in MKDIR])
    proc = run(oci, make_bundle, f"mkdir {WRITABLE}/x", sec)
    assert "No space left on device" in proc.stderr


def test_errno_without_errno_ret_is_eperm(oci, make_bundle):
    proc = run(oci, make_bundle, f"mkdir {WRITABLE}/x", allow_but(rule("SCMP_ACT_ERRNO", *MKDIR)))
    assert "Operation not permitted" in proc.stderr


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(oci, make_bundle, action):
    b = make_bundle(["mkdir", f"{WRITABLE}/x"],
                    mutate=lambda cfg: cfg["linux"].update(
                        seccomp=allow_but(rule(action, *MKDIR))))
    proc = oci("run", "--bundle", b.path, oci.new_id())
    assert proc.returncode == 128 + 31, (proc.returncode, proc.stderr)  # 159: SIGSYS


def test_trace_without_a_tracer_is_enosys(oci, make_bundle):
    proc = run(oci, make_bundle, f"mkdir {WRITABLE}/x",
               allow_but(rule("SCMP_ACT_TRACE", *MKDIR, errnoRet=7)))
    assert proc.returncode != 0 and "Function not implemented" in proc.stderr


def test_log_allows(oci, make_bundle):
    out = ok(run(oci, make_bundle, f"mkdir {WRITABLE}/x && echo made",
                 allow_but(rule("SCMP_ACT_LOG", *MKDIR))))
    assert "made" in out


def test_an_errno_default_with_an_allow_list(oci, make_bundle):
    """defaultAction ERRNO: what the list does not name fails, the rest works."""
    sec = default_profile()
    sec["syscalls"][0]["names"] = [n for n in sec["syscalls"][0]["names"] if n != "rmdir"]
    proc = run(oci, make_bundle, f"mkdir {WRITABLE}/d && echo made; rmdir {WRITABLE}/d", sec)
    assert proc.stdout.strip() == "made"
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr


# --- arguments, names ----------------------------------------------------------------------

def test_argument_filter_denies_personality_unless_arg0_is_zero(oci, make_bundle):
    proc = run(oci, make_bundle, "linux64 true && echo ok64; linux32 true || echo denied32",
               allow_but(rule("SCMP_ACT_ERRNO", "personality",
                              args=[{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}])))
    assert ok(proc).split() == ["ok64", "denied32"]
    assert "personality(0x8): Operation not permitted" in proc.stderr


def test_masked_eq_filter_on_clone_flags(oci, make_bundle):
    """docker's clone rule on its own: forking works, a new user namespace does not."""
    sec = allow_but(rule("SCMP_ACT_ERRNO", "clone",
                         args=[{"index": 0, "value": 0x10000000, "valueTwo": 0x10000000,
                                "op": "SCMP_CMP_MASKED_EQ"}]),
                    rule("SCMP_ACT_ERRNO", "clone3", errnoRet=errno.ENOSYS),
                    rule("SCMP_ACT_ERRNO", "unshare"))
    proc = run(oci, make_bundle, "(echo forked); unshare -U true || echo no-userns", sec)
    assert ok(proc).split() == ["forked", "no-userns"]


def test_unknown_syscall_names_are_skipped(oci, make_bundle):
    proc = run(oci, make_bundle, f"echo started; mkdir {WRITABLE}/x",
               allow_but(rule("SCMP_ACT_ERRNO", "no_such_syscall_kago", *MKDIR,
                              "another_bogus_one", errnoRet=errno.ENOSPC)))
    assert proc.stdout.strip() == "started"
    assert "No space left on device" in proc.stderr


# --- flags and the noNewPrivileges ordering -------------------------------------------------

@pytest.mark.parametrize("flags", [["SECCOMP_FILTER_FLAG_TSYNC"],
                                   ["SECCOMP_FILTER_FLAG_LOG"],
                                   ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                   ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]])
def test_flags_are_accepted(oci, make_bundle, flags):
    sec = default_profile()
    sec["flags"] = flags
    out = ok(run(oci, make_bundle, "cat /proc/self/status", sec))
    assert status_fields(out)["Seccomp"] == "2"


def test_no_new_privileges_false_still_loads_the_filter(oci, make_bundle):
    """Without no_new_privs the filter needs CAP_SYS_ADMIN: it is loaded before the process
    drops its capabilities and becomes uid 1000 (runc's order)."""
    def mutate(cfg):
        cfg["process"]["noNewPrivileges"] = False
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
        cfg["process"]["capabilities"] = {}
    proc = run(oci, make_bundle, f"cat /proc/self/status; mkdir {WRITABLE}/x",
               allow_but(rule("SCMP_ACT_ERRNO", *MKDIR, errnoRet=errno.ENOSPC)), mutate)
    status = status_fields(proc.stdout)
    assert status["NoNewPrivs"] == "0"
    assert status["Seccomp"] == "2"
    assert status["Uid"].split()[0] == "1000"
    assert status["CapEff"] == "0000000000000000"
    assert "No space left on device" in proc.stderr


def test_no_new_privileges_false_with_the_default_profile(oci, make_bundle):
    def mutate(cfg):
        cfg["process"]["noNewPrivileges"] = False
    out = ok(run(oci, make_bundle, "id -u; cat /proc/self/status", default_profile(), mutate))
    status = status_fields(out)
    assert status["NoNewPrivs"] == "0" and status["Seccomp"] == "2"


def test_no_seccomp_section_no_filter(oci, make_bundle):
    out = ok(run(oci, make_bundle, "cat /proc/self/status", None))
    assert status_fields(out)["Seccomp"] == "0"


# --- exec ----------------------------------------------------------------------------------

def test_exec_gets_the_containers_filter(oci, make_bundle):
    sec = allow_but(rule("SCMP_ACT_ERRNO", *MKDIR, errnoRet=errno.ENOSPC))
    b = make_bundle(["sleep", "30"], mutate=lambda cfg: cfg["linux"].update(seccomp=sec))
    cid = oci.new_id()
    ok(detached(oci, "run", "--detach", "--bundle", b.path, cid))
    out = ok(oci("exec", cid, "cat", "/proc/self/status"))
    assert status_fields(out)["Seccomp"] == "2"
    proc = oci("exec", cid, "mkdir", f"{WRITABLE}/x")
    assert proc.returncode != 0 and "No space left on device" in proc.stderr
    ok(oci("delete", "--force", cid))


# --- errors --------------------------------------------------------------------------------

def test_a_bad_action_fails_create_naming_the_field(oci, make_bundle):
    proc = run(oci, make_bundle, "true", allow_but(rule("SCMP_ACT_ALLOW", "read"),
                                                   rule("SCMP_ACT_FOO", "mkdir")))
    assert proc.returncode != 0
    assert error_message(proc.stderr) == ('run failed: linux.seccomp.syscalls[1].action: '
                                          'unknown action "SCMP_ACT_FOO"')


def test_a_bad_operator_fails_create_naming_the_field(oci, make_bundle):
    proc = run(oci, make_bundle, "true", allow_but(
        rule("SCMP_ACT_ERRNO", "personality",
             args=[{"index": 0, "value": 1, "op": "SCMP_CMP_SORTOF"}])))
    assert proc.returncode != 0
    assert error_message(proc.stderr).endswith(
        'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_SORTOF"')


def test_a_filter_that_denies_execve_fails_the_run(oci, make_bundle):
    proc = run(oci, make_bundle, "true", allow_but(rule("SCMP_ACT_ERRNO", "execve")))
    assert proc.returncode != 0
    assert "operation not permitted" in proc.stderr.lower()


# --- SCMP_ACT_NOTIFY -----------------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)


class Agent(threading.Thread):
    """A seccomp agent: takes the listener fd from listenerPath and answers every
    notification with ``-answer`` (an errno), as containerd's or podman's agents would."""

    def __init__(self, path, answer):
        super().__init__(daemon=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.server.settimeout(30)
        self.answer = answer
        self.message = None
        self.notifications = []
        self.error = None

    def run(self):
        try:
            conn, _ = self.server.accept()
            fds = array.array("i")
            data, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(raw[:len(raw) - len(raw) % 4])
            conn.close()
            self.message = json.loads(data)
            listener = fds[0]
            while True:
                buf = bytearray(80)
                try:
                    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
                except OSError:
                    break  # the filter's last process is gone
                nid, pid, _fl, nr = struct.unpack_from("<QIIi", buf)
                self.notifications.append((pid, nr))
                resp = bytearray(struct.pack("<QqiI", nid, 0, -self.answer, 0))
                try:
                    fcntl.ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
                except OSError:
                    pass
            os.close(listener)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
        finally:
            self.server.close()


def test_notify_sends_the_listener_and_the_state_to_the_agent(oci, make_bundle, workdir):
    path = os.path.join(workdir, f"agent-{os.getpid()}.sock")
    agent = Agent(path, errno.EXDEV)
    agent.start()
    try:
        sec = allow_but(rule("SCMP_ACT_NOTIFY", *MKDIR), listenerPath=path,
                        listenerMetadata="kago-test")
        b = make_bundle(["sh", "-c", f"mkdir {WRITABLE}/x; echo done"],
                        mutate=lambda cfg: cfg["linux"].update(seccomp=sec))
        cid = oci.new_id()
        proc = oci("run", "--bundle", b.path, cid)
        agent.join(30)
    finally:
        if os.path.exists(path):
            os.unlink(path)
    assert agent.error is None, agent.error
    assert ok(proc).strip() == "done"
    assert "Invalid cross-device link" in proc.stderr  # the agent's answer reached mkdir
    msg = agent.message
    assert msg["fds"] == ["seccompFd"]
    assert msg["metadata"] == "kago-test"
    assert msg["ociVersion"]
    assert msg["pid"] > 0
    assert msg["state"]["id"] == cid and msg["state"]["status"] == "creating"
    assert msg["state"]["pid"] == msg["pid"] and msg["state"]["bundle"] == b.path
    assert len(agent.notifications) == 1
    assert agent.notifications[0][0] != msg["pid"]  # mkdir ran in sh's child, not in init


def test_notify_with_an_agent_that_is_not_there_fails_create(oci, make_bundle, workdir):
    sec = allow_but(rule("SCMP_ACT_NOTIFY", *MKDIR),
                    listenerPath=os.path.join(workdir, "nobody-listens.sock"))
    proc = run(oci, make_bundle, "true", sec)
    assert proc.returncode != 0
    message = error_message(proc.stderr)
    assert "nobody-listens.sock" in message and "linux.seccomp.listenerPath" in message


# --- user namespaces -----------------------------------------------------------------------

@pytest.mark.parametrize("nnp", [True, False])
def test_user_namespaced_container_gets_the_filter(oci, make_bundle, nnp):
    """Root in a user namespace: the filter loads with no_new_privs, and without it (with the
    CAP_SYS_ADMIN it has in its own namespace, before the capabilities are dropped)."""
    from test_userns import userns
    mapped = userns()

    def mutate(cfg):
        mapped(cfg)
        cfg["process"]["noNewPrivileges"] = nnp
    proc = run(oci, make_bundle, "cat /proc/self/status; unshare -U true",
               default_profile(), mutate)
    status = status_fields(proc.stdout)
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == str(int(nnp))
    assert "Operation not permitted" in proc.stderr


# --- the command line ----------------------------------------------------------------------

def test_spec_offers_the_default_profile_only_with_seccomp_flag(oci, tmp_path):
    from kago.oci.defaults import default_spec
    plain, with_profile = tmp_path / "plain", tmp_path / "seccomp"
    plain.mkdir()
    with_profile.mkdir()
    ok(oci("spec", "--bundle", plain, root=False))
    ok(oci("spec", "--seccomp", "--bundle", with_profile, root=False))
    assert "seccomp" not in json.loads((plain / "config.json").read_text())["linux"]
    written = json.loads((with_profile / "config.json").read_text())["linux"]["seccomp"]
    assert written == default_spec(seccomp=True)["linux"]["seccomp"]


def test_features_report_seccomp(oci):
    sc = json.loads(ok(oci("features", root=False)))["linux"]["seccomp"]
    assert sc["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in sc["actions"] and "SCMP_CMP_MASKED_EQ" in sc["operators"]
    assert "SCMP_ARCH_X86_64" in sc["archs"]
    assert sc["supportedFlags"] == sc["knownFlags"]


# --- restrictive profiles: what init does after loading the filter --------------------------
# runtime-tools' profile (its validation suite's default) lists neither close_range nor clone3;
# with noNewPrivileges false the filter is loaded before the capabilities are dropped, so init's
# remaining steps (capset, setgroups, setresgid/uid, the ready message, the exec fifo,
# startContainer hooks, execve) all run under it.

# what a busybox `sh -c` program makes (strace of `sh -c 'id; ls; cat'` on busybox-static)
BUSYBOX_SH = ("read", "write", "close", "mmap", "mprotect", "munmap", "brk", "rt_sigaction",
              "rt_sigreturn", "rt_sigprocmask", "ioctl", "dup2", "getpid", "getppid", "clone",
              "execve", "wait4", "uname", "fcntl", "readlink", "getuid", "geteuid", "getgid",
              "getegid", "getgroups", "prctl", "arch_prctl", "getdents64", "set_tid_address",
              "openat", "newfstatat", "set_robust_list", "prlimit64", "getrandom", "rseq",
              "exit_group", "getcwd")
# what kago's init does after a filter loaded before ``credentials`` (noNewPrivileges false),
# beyond the program's own: the same kind of list runc needs there (docs/security.md)
INIT_AFTER_FILTER = ("capset", "prctl", "setgroups", "setresgid", "setresuid", "umask",
                     "sendto", "close", "openat", "write")


def only(*names):
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule("SCMP_ACT_ALLOW", *names)]}


def as_user_with_hook(nnp, script):
    def mutate(cfg):
        cfg["process"]["noNewPrivileges"] = nnp
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6],
                                  "umask": 0o27}
        cfg["hooks"] = {"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", f"echo hook-ran > {WRITABLE}/hook"]}]}
        cfg["process"]["args"] = ["sh", "-c", script]
    return mutate


PROGRAM = (f"cat {WRITABLE}/hook; id; umask; ls /proc/$$/fd; "
           "grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status")


def check_program_output(out, nnp):
    lines = out.splitlines()
    assert lines[0] == "hook-ran"
    assert lines[1] == "uid=1000(user) gid=1000(user) groups=5(tty),6"
    assert lines[2] == "0027"
    status = status_fields("\n".join(lines[-4:]))
    assert sorted(int(x) for x in lines[3:-4]) == [0, 1, 2]  # CVE-2024-21626: nothing else
    assert status["Seccomp"] == "2" and status["NoNewPrivs"] == ("1" if nnp else "0")
    assert status["CapEff"] == "0000000000000000"  # uid 1000 keeps no effective caps
    assert status["CapBnd"] == "0000000020000420"  # AUDIT_WRITE, KILL, NET_BIND_SERVICE


@pytest.mark.parametrize("nnp", [False, True])
def test_runtime_tools_profile_runs_everything_init_does(oci, make_bundle, nnp):
    """Was: create died with "close_range: operation not permitted" (nnp false), and a
    startContainer hook with "operation not permitted" (posix_spawn's clone3)."""
    import runtime_tools_seccomp
    b = make_bundle(mutate=as_user_with_hook(nnp, PROGRAM))
    b.edit(lambda cfg: cfg["linux"].update(seccomp=runtime_tools_seccomp.profile(
        cfg["process"]["capabilities"]["bounding"])))
    proc = oci("run", "--bundle", b.path, oci.new_id())
    check_program_output(ok(proc), nnp)


@pytest.mark.parametrize("nnp", [False, True])
def test_runtime_tools_profile_create_start_exec(oci, make_bundle, nnp):
    """create (the exec fifo is opened under the filter), start, then exec under it too."""
    import runtime_tools_seccomp
    b = make_bundle(mutate=as_user_with_hook(nnp, f"({PROGRAM}) > {WRITABLE}/out; sleep 30"))
    b.edit(lambda cfg: cfg["linux"].update(seccomp=runtime_tools_seccomp.profile(
        cfg["process"]["capabilities"]["bounding"])))
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))
    ok(oci("start", cid))
    out = ""
    for _ in range(200):  # bounded: 2 s
        out = oci("exec", cid, "cat", f"{WRITABLE}/out").stdout
        if "CapBnd" in out:
            break
        import time
        time.sleep(0.01)
    check_program_output(out, nnp)
    out = ok(oci("exec", "--cap", "CAP_SYS_ADMIN", cid, "sh", "-c",
                 "ls /proc/$$/fd; grep Seccomp: /proc/self/status")).splitlines()
    assert sorted(int(x) for x in out[:-1]) == [0, 1, 2]
    assert out[-1].split() == ["Seccomp:", "2"]
    ok(oci("delete", "--force", cid))


def test_a_minimal_profile_with_no_new_privileges(oci, make_bundle):
    """With no_new_privs the filter is the last thing before execve: a profile needs only
    what the program needs."""
    b = make_bundle(mutate=as_user_with_hook(True, "id; ls /proc/$$/fd; true"))
    b.edit(lambda cfg: (cfg.pop("hooks"), cfg["linux"].update(seccomp=only(*BUSYBOX_SH))))
    out = ok(oci("run", "--bundle", b.path, oci.new_id())).splitlines()
    assert out[0].startswith("uid=1000(user)")
    assert sorted(int(x) for x in out[1:]) == [0, 1, 2]


def test_a_minimal_profile_without_no_new_privileges(oci, make_bundle):
    """Without it, the program's needs plus what init does after the filter, as with runc:
    no close_range, no clone3, nothing of kago's start path (imports, /proc walks)."""
    b = make_bundle(mutate=as_user_with_hook(False, "id; ls /proc/$$/fd; true"))
    sec = only(*BUSYBOX_SH, *INIT_AFTER_FILTER)
    b.edit(lambda cfg: (cfg.pop("hooks"), cfg["linux"].update(seccomp=sec)))
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", b.path, cid))  # the exec fifo path, too
    ok(oci("start", cid))
    ok(oci("delete", "--force", cid))
    out = ok(oci("run", "--bundle", b.path, oci.new_id())).splitlines()
    assert out[0].startswith("uid=1000(user)")
    assert sorted(int(x) for x in out[1:]) == [0, 1, 2]
