"""``kago``: the command people type -- docker's verbs, flags, columns and exit codes.

    kago [--root DIR] [--runroot DIR] [--runtime PATH] COMMAND [ARGS...]

This module holds the global flags, the help and the verb table; each verb is a small
function in the module of its group (run.py, lifecycle.py, views.py, exec.py, images.py,
networks.py, system.py, definitions.py, demo.py): its argparse parser, a call into
``kago.client`` (the Python API over ``kago.manager``), and docker's output. Exit statuses
are docker's: 125 when kago itself fails (a bad flag, an unknown image or container),
126/127 when the container's command cannot be run or found, otherwise the container's own
status.

Imports stay lazy: the table names each verb's module, imported only when that verb runs, so
``kago --version`` costs the interpreter and little more, and ``kago ps`` loads no runtime,
storage or network code it does not need.
"""

import os
import sys

from kago.version import __version__

PROG = "kago"

HELP = f"""\
usage: kago [--root DIR] [--runroot DIR] [--runtime PATH] COMMAND [ARGS...]

kago {__version__}: a Linux container runtime and manager in Python.

containers:
  run, create, start, stop, restart, kill, rm, ps, logs, exec, attach, wait,
  inspect, top, stats, pause, unpause, commit, export, cp, port, rename, diff, update
  (and docker's forms: container ls|run|rm|start|stop|inspect|logs|exec|cp|prune|...)
images:
  images, import, pull, push, tag, rmi, save, load, build, history
  (and docker's forms: image ls|rm|inspect|pull|push|tag|save|load|import|history|prune)
definitions (Python files, see docs/manager.md):
  up FILE [-e KEY=VAL], down FILE, ps FILE, reload FILE, archive FILE
compose files (docs/compose.md):
  compose [-f FILE] [-p NAME] up [-d]|down [-v]|ps|logs [-f]|config
other:
  network ls|create|rm|inspect|connect|disconnect, volume create|ls|inspect|rm|prune,
  system df|prune|info, version, info, events, demo
  console [--listen HOST:PORT]   a web console (docs/console.md)

global options:
  --root DIR      state (default /var/lib/kago, or $KAGO_ROOT)
  --runroot DIR   volatile state (default /run/kago/manager; ROOT/run with --root)
  --runtime PATH  a runc-compatible runtime (default: kago's own, kago-oci)

Run 'kago COMMAND --help' for a command's flags.
"""


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    glob, argv = _globals(argv)
    if glob is None:
        return 125
    if not argv:
        sys.stderr.write(HELP)
        return 2
    verb, rest = argv[0], argv[1:]
    if verb in ("-h", "--help", "help"):
        sys.stdout.write(HELP)
        return 0
    if verb in ("-V", "--version"):
        print(f"kago version {__version__}")
        return 0
    if verb == "demo":
        from kago.cli.demo import demo
        return demo(rest)
    if verb not in VERBS:
        print(f"kago: '{verb}' is not a kago command. See 'kago --help'", file=sys.stderr)
        return 125
    if os.geteuid() != 0 and verb != "version" and not _asks_help(rest):
        # a user: every verb runs as root of the user's holder namespaces (docs/rootless.md)
        from kago.cli import rootless
        if verb == "console":  # its socket in the host's network namespace, not the holder's
            from kago.cli.common import Usage
            from kago.cli.console import bind_outside
            try:
                bind_outside(rest)
            except Usage as e:
                print(f"kago: {e}", file=sys.stderr)
                return 125
        code = rootless.enter(glob)
        if code is not None:
            return code
        try:
            return _verb(glob, verb, rest)
        finally:
            rootless.leave(glob)
    return _verb(glob, verb, rest)


def _verb(glob, verb, rest):
    if verb in THIN_VERBS:
        # run -d, create, start: done by the supervisor's warm run server when it can
        from kago.cli import run_thin
        code = run_thin.call(glob, verb, rest)
        if code is not None:
            return code
    return run_verb(glob, verb, rest)


THIN_VERBS = ("run", "create", "start")


def _asks_help(rest):
    """``kago VERB [FLAGS] --help``: a help flag before the first argument that is not a flag
    (an image, a container, a flag's value) or ``--``. Later ones belong to the container's
    command (``kago run busybox echo -h``); a help flag after a flag's value is missed here
    and printed by the verb's parser all the same (inside the holder, for a user)."""
    for arg in rest:
        if arg == "--" or not arg.startswith("-"):
            return False
        if arg in ("-h", "--help"):
            return True
    return False



def _globals(argv):
    """--root/--runroot/--runtime before the verb (docker's global flags go there too)."""
    glob = {"root": None, "runroot": None, "runtime": None}
    while argv and argv[0].startswith("--") and argv[0].split("=")[0][2:] in glob:
        flag, eq, value = argv[0].partition("=")
        if not eq:
            if len(argv) < 2:
                print(f"kago: flag needs an argument: {flag}", file=sys.stderr)
                return None, argv
            value, argv = argv[1], argv[1:]
        glob[flag[2:]] = value
        argv = argv[1:]
    return glob, argv



def _dispatch(handler, glob, rest):
    from kago.cli.common import Usage
    from kago.errors import KagoError
    from kago.manager.format import TemplateError
    try:
        return handler(glob, rest) or 0
    except Usage as e:
        print(f"kago: {e}", file=sys.stderr)
        return 125
    except TemplateError as e:  # a --format/-f naming no field: docker's template error
        print(f"kago: --format: {e}", file=sys.stderr)
        return 125
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        code = getattr(e, "exit_code", 125)
        return code if code in (125, 126, 127) else 125
    except BrokenPipeError:
        try:  # the reader left (kago ps | head): not an error, and nothing more to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        except OSError:
            pass
        return 0
    except OSError as e:
        from kago.errors import describe
        print(f"kago: {describe(e)}", file=sys.stderr)
        return 125
    except KeyboardInterrupt:
        return 130


# verb -> (module under kago.cli, function); the module is imported when its verb runs
VERBS = {
    "run": ("run", "cmd_run"), "create": ("run", "cmd_create"),
    "start": ("lifecycle", "cmd_start"), "stop": ("lifecycle", "cmd_stop"),
    "restart": ("lifecycle", "cmd_restart"), "kill": ("lifecycle", "cmd_kill"),
    "rm": ("lifecycle", "cmd_rm"), "pause": ("lifecycle", "cmd_pause"),
    "unpause": ("lifecycle", "cmd_unpause"), "wait": ("lifecycle", "cmd_wait"),
    "attach": ("lifecycle", "cmd_attach"),
    "ps": ("views", "cmd_ps"), "logs": ("views", "cmd_logs"), "inspect": ("views", "cmd_inspect"),
    "top": ("views", "cmd_top"), "stats": ("views", "cmd_stats"),
    "exec": ("exec", "cmd_exec"),
    "commit": ("images", "cmd_commit"), "export": ("images", "cmd_export"),
    "images": ("images", "cmd_images"), "import": ("images", "cmd_import"),
    "pull": ("images", "cmd_pull"), "push": ("images", "cmd_push"), "tag": ("images", "cmd_tag"),
    "rmi": ("images", "cmd_rmi"), "save": ("images", "cmd_save"), "load": ("images", "cmd_load"),
    "build": ("build", "main"), "network": ("networks", "cmd_network"),
    "volume": ("volumes", "cmd_volume"), "cp": ("cp", "cmd_cp"),
    "system": ("system", "cmd_system"), "version": ("system", "cmd_version"),
    "info": ("system", "cmd_info"),
    "events": ("events", "cmd_events"),
    "up": ("definitions", "cmd_up"), "down": ("definitions", "cmd_down"),
    "reload": ("definitions", "cmd_reload"), "archive": ("definitions", "cmd_archive"),
    "port": ("changes", "cmd_port"), "rename": ("changes", "cmd_rename"),
    "diff": ("changes", "cmd_diff"), "update": ("changes", "cmd_update"),
    "history": ("images", "cmd_history"),
    "container": ("groups", "cmd_container"), "image": ("groups", "cmd_image"),
    "compose": ("compose", "cmd_compose"),
    "console": ("console", "cmd_console"),
    "checkpoint": ("checkpoint", "cmd_checkpoint"), "restore": ("checkpoint", "cmd_restore"),
}


def run_verb(glob, verb, rest):
    """A verb's handler on its arguments, errors as docker's lines and statuses."""
    return _dispatch(_handler(verb), glob, rest)


def _handler(verb):
    module, name = VERBS[verb]
    return getattr(__import__(f"kago.cli.{module}", fromlist=[name]), name)


if __name__ == "__main__":
    sys.exit(main())
