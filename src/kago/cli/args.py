"""kago-oci's command line, as data: runc's global flags and one table per command.

Why not argparse: it costs ~9 ms of imports (kago-oci's whole budget is ~20 ms) and it parses
differently from runc's urfave/cli, which clients depend on: ``-bundle`` and ``--bundle`` are the
same flag, ``--flag=value`` and ``--flag value`` both work, flags may follow the container ID
(``kill ID 9 --all``), and for ``exec``/``ps`` everything after the ID belongs to the program.

A flag spec is (names, kind, dest): kind "bool", "str", "int" or "list" (repeatable).
"""

from kago.errors import UsageError

GLOBAL = (
    (("root",), "str", "root"), (("log",), "str", "log"), (("log-format",), "str", "log_format"),
    (("debug",), "bool", "debug"), (("systemd-cgroup",), "bool", "systemd_cgroup"),
    (("rootless",), "str", "rootless"), (("criu",), "str", "criu"),
    (("version", "v"), "bool", "version"), (("help", "h"), "bool", "help"),
)

_CREATE = ((("bundle", "b"), "str", "bundle"), (("pid-file",), "str", "pid_file"),
           (("console-socket",), "str", "console_socket"),
           (("preserve-fds",), "int", "preserve_fds"), (("no-pivot",), "bool", "no_pivot"),
           (("no-new-keyring",), "bool", "no_new_keyring"))

# runc's flags shared by checkpoint and restore
_CRIU = ((("image-path",), "str", "image_path"), (("work-path",), "str", "work_path"),
         (("tcp-established",), "bool", "tcp_established"),
         (("ext-unix-sk",), "bool", "ext_unix_sk"), (("shell-job",), "bool", "shell_job"),
         (("file-locks",), "bool", "file_locks"),
         (("manage-cgroups-mode",), "str", "manage_cgroups_mode"),
         (("empty-ns",), "list", "empty_ns"), (("auto-dedup",), "bool", "auto_dedup"),
         (("lazy-pages",), "bool", "lazy_pages"))

# command -> (flags, positional names, rest: whether args after the positionals are kept raw)
COMMANDS = {
    "create": (_CREATE, ("id",), False),
    "run": (_CREATE + ((("detach", "d"), "bool", "detach"), (("keep",), "bool", "keep"),
                       (("no-subreaper",), "bool", "no_subreaper")), ("id",), False),
    "start": ((), ("id",), False),
    "state": ((), ("id",), False),
    "kill": (((("all", "a"), "bool", "all"),), ("id", "?signal"), False),
    "delete": (((("force", "f"), "bool", "force"),), ("id",), False),
    "exec": (((("console-socket",), "str", "console_socket"), (("cwd",), "str", "cwd"),
              (("env", "e"), "list", "env"), (("tty", "t"), "bool", "tty"),
              (("user", "u"), "str", "user"), (("additional-gids", "g"), "list", "gids"),
              (("process", "p"), "str", "process"), (("detach", "d"), "bool", "detach"),
              (("pid-file",), "str", "pid_file"), (("process-label",), "str", "process_label"),
              (("apparmor",), "str", "apparmor"), (("no-new-privs",), "bool", "no_new_privs"),
              (("cap", "c"), "list", "cap"), (("preserve-fds",), "int", "preserve_fds"),
              (("ignore-paused",), "bool", "ignore_paused"), (("cgroup",), "list", "cgroup")),
             ("id",), True),
    "ps": (((("format", "f"), "str", "format"),), ("id",), True),
    "list": (((("format", "f"), "str", "format"), (("quiet", "q"), "bool", "quiet")), (), False),
    "pause": ((), ("id",), False),
    "resume": ((), ("id",), False),
    "features": ((), (), False),
    "spec": (((("rootless",), "bool", "rootless"), (("bundle", "b"), "str", "bundle"),
              (("seccomp",), "bool", "seccomp")), (), False),
    "update": (((("resources", "r"), "str", "resources"),) + tuple(
        ((flag,), "str", flag.replace("-", "_")) for flag in (
            "cpu-share", "cpu-quota", "cpu-period", "cpu-rt-period", "cpu-rt-runtime",
            "cpuset-cpus", "cpuset-mems", "memory", "memory-swap", "memory-reservation",
            "kernel-memory", "kernel-memory-tcp", "pids-limit", "blkio-weight")),
               ("id",), False),
    "events": (((("stats",), "bool", "stats"), (("interval",), "str", "interval")), ("id",),
               False),
    "checkpoint": (_CRIU + ((("leave-running",), "bool", "leave_running"),
                            (("pre-dump",), "bool", "pre_dump"),
                            (("parent-path",), "str", "parent_path"),
                            (("page-server",), "str", "page_server"),
                            (("status-fd",), "str", "status_fd")), ("id",), False),
    "restore": (_CRIU + ((("bundle", "b"), "str", "bundle"), (("detach", "d"), "bool", "detach"),
                         (("pid-file",), "str", "pid_file"),
                         (("console-socket",), "str", "console_socket"),
                         (("no-subreaper",), "bool", "no_subreaper"),
                         (("no-pivot",), "bool", "no_pivot"),
                         (("lsm-profile",), "str", "lsm_profile"),
                         (("lsm-mount-context",), "str", "lsm_mount_context")), ("id",), False),
}

# no "root": without --root the state root depends on who runs (host.rootless.default_root)
DEFAULTS = {"bundle": ".", "preserve_fds": 0, "format": "table", "log_format": "text"}


class Namespace:
    """Parsed arguments: attributes for every flag of the command, plus ``rest``."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __getattr__(self, name):  # flags not given read as their default
        return DEFAULTS.get(name)


def _table(specs):
    table = {}
    for names, kind, dest in specs:
        for name in names:
            table[name] = (kind, dest)
    return table


def _take_flag(args, i, table, out, where):
    """Parse the flag at args[i]; return the index after it."""
    word = args[i].lstrip("-")
    name, eq, value = word.partition("=")
    if name not in table:
        raise UsageError(f"flag provided but not defined: -{name}" + where)
    kind, dest = table[name]
    if kind == "bool":
        out[dest] = value.lower() not in ("false", "0") if eq else True
        return i + 1
    if not eq:
        if i + 1 >= len(args):
            raise UsageError(f"flag needs an argument: -{name}" + where)
        value, i = args[i + 1], i + 1
    if kind == "int":  # runc's numeric flags are unsigned
        if not value.isdigit():
            raise UsageError(f'invalid value "{value}" for flag -{name}: not a number')
        value = int(value)
    if kind == "list":
        out.setdefault(dest, []).append(value)
    else:
        out[dest] = value
    return i + 1


def parse_global(argv):
    """Split ``argv`` into (global flags, command, command args)."""
    table = _table(GLOBAL)
    out = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        i = _take_flag(argv, i, table, out, "")
    command = argv[i] if i < len(argv) else None
    return Namespace(**out), command, argv[i + 1:]


def parse_command(command, args):
    if command not in COMMANDS:
        raise UsageError(f"No help topic for '{command}'")
    specs, positional, keep_rest = COMMANDS[command]
    table = _table(specs + ((("help", "h"), "bool", "help"),))
    out, found, rest = {}, [], []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i + 1:])
            break
        if keep_rest and len(found) >= len(positional):
            rest.extend(args[i:])  # exec/ps: the program's own arguments
            break
        if arg.startswith("-") and arg != "-" and not _is_number(arg):
            i = _take_flag(args, i, table, out, f" (in {command})")
            continue
        (found if len(found) < len(positional) else rest).append(arg)
        i += 1
    return _finish(command, positional, found, rest, out, keep_rest)


def _is_number(arg):
    return arg[1:].isdigit()


def _finish(command, positional, found, rest, out, keep_rest):
    if out.get("help"):
        return Namespace(help=True, rest=[], **{p.lstrip("?"): None for p in positional})
    required = [p for p in positional if not p.startswith("?")]
    if len(found) < len(required):
        raise UsageError(f'"{command}" requires a container ID' if "id" in required
                         else f'"{command}" is missing an argument')
    if rest and not keep_rest:
        raise UsageError(f'"{command}" takes {len(positional)} argument(s), '
                         f"got extra: {' '.join(rest)}")
    names = [p.lstrip("?") for p in positional]
    values = dict(zip(names, found + [None] * (len(names) - len(found))))
    return Namespace(rest=rest, **values, **out)
