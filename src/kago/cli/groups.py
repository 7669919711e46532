"""docker's management commands: ``kago container VERB`` and ``kago image VERB`` map onto
kago's own verbs (``container ls`` is ``ps``, ``image rm`` is ``rmi``...)."""

import sys

from kago.cli.common import Usage

CONTAINER = {
    "ls": "ps", "list": "ps", "ps": "ps", "run": "run", "create": "create", "start": "start",
    "stop": "stop", "restart": "restart", "kill": "kill", "rm": "rm", "remove": "rm",
    "pause": "pause", "unpause": "unpause", "wait": "wait", "attach": "attach",
    "logs": "logs", "inspect": "inspect", "top": "top", "stats": "stats", "exec": "exec",
    "commit": "commit", "export": "export", "port": "port", "rename": "rename",
    "diff": "diff", "update": "update", "cp": "cp",
    "prune": ("changes", "cmd_container_prune"),
}
IMAGE = {
    "ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "inspect": "inspect",
    "pull": "pull", "push": "push", "tag": "tag", "save": "save", "load": "load",
    "import": "import", "history": "history", "build": "build",
    "prune": ("images", "cmd_image_prune"),
}


def cmd_container(glob, argv):
    return _group("container", CONTAINER, glob, argv)


def cmd_image(glob, argv):
    if argv and argv[0] == "inspect":  # docker image inspect: images only
        argv = ["inspect", "--type", "image"] + argv[1:]
    return _group("image", IMAGE, glob, argv)


def _group(name, table, glob, argv):
    from kago.cli.main import VERBS
    table = {v: t for v, t in table.items() if not isinstance(t, str) or t in VERBS}
    if not argv or argv[0] in ("-h", "--help", "help"):
        stream = sys.stdout if argv else sys.stderr
        stream.write(f"usage: kago {name} COMMAND [ARGS...]\n\nCommands (each is a kago verb; "
                     f"'kago {name} COMMAND --help' for its flags):\n")
        for verb, target in table.items():
            shown = target if isinstance(target, str) else f"{name} {verb}"
            stream.write(f"  {verb:<10} {'(' + shown + ')' if shown != verb else ''}\n")
        return 0 if argv else 2
    verb, rest = argv[0], argv[1:]
    if verb not in table:
        raise Usage(f"'{name} {verb}' is not a kago command: use one of "
                    f"{', '.join(table)}")
    target = table[verb]
    if isinstance(target, tuple):
        module, function = target
    else:
        module, function = VERBS[target]
    handler = getattr(__import__(f"kago.cli.{module}", fromlist=[function]), function)
    return handler(glob, rest)
