"""``exec``: run another process in a running container's namespaces and cgroup.

The process description is the container's own ``process`` (kept in the record at create) with
the command line's overrides, or a whole ``process.json`` (``--process``), as runc does.
"""

import os

from kago import log
from kago.errors import IncorrectStatus, SpecError
from kago.runtime import container as ctr
from kago.runtime import Undo


EXEC_CAP_SETS = ("bounding", "effective", "permitted", "ambient")


def process_from_args(record, args, cwd=None, env=(), user=None, caps=(), tty=False,
                      no_new_privs=None):
    """runc's newProcess: the spec's process with args and the flags applied."""
    base = dict(record["kago"].get("process") or {})
    proc = {k: v for k, v in base.items() if k in ("env", "cwd", "user", "capabilities",
                                                      "noNewPrivileges", "apparmorProfile",
                                                      "selinuxLabel", "rlimits")}
    proc["args"] = list(args)
    proc["terminal"] = tty
    proc["env"] = list(proc.get("env") or ()) + list(env)
    if cwd:
        proc["cwd"] = cwd
    if user:
        proc["user"] = parse_user(user)
    if caps:
        # runc 1.1's exec.go: every set but the inheritable one (so an ambient one takes
        # effect only where the spec's inheritable set has it: the kernel's rule)
        sets = {k: list(v) for k, v in (proc.get("capabilities") or {}).items()}
        for name in caps:
            for kind in EXEC_CAP_SETS:
                sets.setdefault(kind, [])
                if name not in sets[kind]:
                    sets[kind].append(name)
        proc["capabilities"] = sets
    if no_new_privs:
        proc["noNewPrivileges"] = True
    return proc


def parse_user(text):
    uid, _, gid = text.partition(":")
    try:
        return {"uid": int(uid), "gid": int(gid or 0)}
    except ValueError:
        raise SpecError("--user", f'"{text}" is not uid[:gid]') from None


def load_process(path):
    from kago import jsonio
    from kago.oci import schema
    try:
        with open(path, "rb") if path != "-" else open(0, "rb", closefd=False) as f:
            proc = jsonio.loads(f.read(), what=path)
    except OSError as e:
        raise SpecError("--process", f"open {path}: {os.strerror(e.errno).lower()}") from None
    schema.validate_process(proc, field="process")
    return proc


def execute(store, container_id, proc, opts):
    """Start ``proc`` in the container; return its exit status (0 at once when detached)."""
    record = store.load(container_id)
    now = ctr.status(store, record)
    if now != ctr.RUNNING and now != ctr.CREATED:
        raise IncorrectStatus("cannot exec in a stopped container" if now == ctr.STOPPED
                              else f"cannot exec in a {now} container")
    plan = _exec_plan(record, proc, opts)
    ctr._check_terminal(plan, opts, "run")
    from kago.linux import namespaces
    from kago.process import parent
    undo = Undo()
    fds = ctr._Fds(undo)
    try:
        root_fd = fds.open(f"/proc/{record['pid']}/root", os.O_PATH | os.O_DIRECTORY)
        plan.namespaces = namespaces.differing(record["pid"])
        console = ctr._console(plan, opts, fds)
        ctx_args = {"preserve": opts.total_preserved(), "root_fd_for_exec": root_fd,
                    "console_fd": console[0] if console else None}
        cgroup = ctr.cgroup_of(record)
        if cgroup is not None:
            cgroup = cgroup.for_exec(record["pid"])
        with log.phase("spawn exec"):
            sp = parent.spawn(plan, ctx_args, cgroup, exec_mode=True,
                              state=lambda _pid: ctr.oci_state(record, now),
                              seccomp_cache=store.seccomp_cache())
    finally:
        undo.run()
    if opts.pid_file:
        ctr.write_pid_file(opts.pid_file, sp.pid)
    if opts.detach:
        return 0
    if console and console[1] is not None:
        ctr._proxy_terminal(console[1], {"pid": sp.pid,
                                         "kago": {"pid_start": sp.pid_start}})
    return parent.wait(sp.pid)


def _exec_plan(record, proc, opts):
    from kago.plan import build, validate
    from kago.plan.model import Plan
    from kago.host.facts import enabled_lsms, last_cap
    from kago.oci import schema
    schema.validate_process(proc, field="process")
    lsms = enabled_lsms()
    for warning in validate.check_process(proc, "process", last_cap()) + \
            validate.check_lsm_labels({"process": proc}, lsms):
        log.warning(warning)
    process = build.process(proc, opts.listen_env(), record["kago"].get("seccomp"))
    if "apparmor" not in lsms:
        process.apparmor_profile = None
    if "selinux" not in lsms:
        process.selinux_label = None
    return Plan(id=record["id"], bundle=record["bundle"], rootfs="/", namespaces=[],
                uid_maps=[], gid_maps=[], mounts=[], devices=[], masked_paths=[],
                readonly_paths=[], sysctl={}, hooks={}, process=process,
                annotations={}, warnings=[])
