"""``kago network ls|create|rm|inspect``."""

from kago.cli.common import manager, out, parser


def cmd_network(glob, argv):
    from kago.manager import networks
    return networks.command(manager(glob), argv, parser, out)
