"""Rules across fields, checked once by every builder after each value was parsed on its own.

``names`` maps a field of the Definition to what the user wrote it as (``--restart`` on the
command line, ``restart`` in a definition file), so the error names that.
"""

from kago.manager.errors import BadValue


def check(d, names=None):
    """The definition ``d`` if its fields agree with each other; BadValue otherwise."""
    names = names or {}

    def name(field):
        return names.get(field, field)
    if not d.image and not d.rootfs:
        raise BadValue(name("image"), "give an image or a rootfs directory")
    if d.image and d.rootfs:
        raise BadValue(name("image"), "give either an image or a rootfs directory, not both")
    if d.ports and d.network.mode in ("host", "none"):
        raise BadValue(name("ports"), f"ports cannot be published with "
                                      f"{name('network')} {d.network.mode}")
    if d.tty and d.restart.name != "no":
        raise BadValue(name("restart"), "a container with a terminal (-t) runs in the "
                                        "foreground and cannot have a restart policy")
    if d.auto_remove and d.restart.name != "no":
        raise BadValue(name("auto_remove"), f"{name('auto_remove')} and {name('restart')} "
                                            f"cannot be used together")
    if (d.ids.uid_map or d.ids.gid_map) and d.ids.mode in ("auto", "keep-id"):
        raise BadValue(name("userns"), "give either an explicit ID map or a user namespace "
                                       "mode, not both")
    if d.ids.gid_map and not d.ids.uid_map:
        raise BadValue(name("gid_map"), "a gid map needs a uid map too")
    return d
