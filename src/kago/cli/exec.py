"""``kago exec``: a command in a running container."""

from kago.cli.common import Usage, client, parser
from kago.cli.terminal import not_a_tty, stdin_is_a_terminal


def cmd_exec(glob, argv):
    p = parser("exec", "Run a command in a running container.")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("-u", "--user", help="user: name, uid, name:group or uid:gid")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("-e", "--env", action="append", default=[],
                   help="set an environment variable: KEY=VALUE")
    p.add_argument("container", help="the container's name or ID")
    p.add_argument("command", nargs="...", help="the command and its arguments")
    args = p.parse_args(argv)
    if not args.command:
        raise Usage("exec needs a command to run in the container")
    if args.tty and args.interactive and not args.detach and not stdin_is_a_terminal():
        return not_a_tty()
    return client(glob).exec(args.container, args.command, tty=args.tty, user=args.user,
                             workdir=args.workdir, env=args.env, detach=args.detach)

