"""``kago images/import/pull/push/tag/rmi/save/load/commit/export``."""

from kago.cli.common import manager, out, parser


def _images_cmd(name):
    def handler(glob, argv):
        from kago.manager import images
        return getattr(images, "cmd_" + name)(manager(glob), argv, parser, out)
    return handler


cmd_images, cmd_import, cmd_pull, cmd_push, cmd_tag, cmd_rmi, cmd_save, cmd_load, cmd_commit, \
    cmd_export = (_images_cmd(n) for n in ("images", "import", "pull", "push", "tag", "rmi",
                                           "save", "load", "commit", "export"))
