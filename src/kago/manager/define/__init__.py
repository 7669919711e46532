"""Container definitions that are programs (``kago up FILE``): the names a file uses.

    from kago.manager.define import Container, id_range, tcp, tmpfs, bind

    for port in range(10001, 10101):
        web = Container(f"web-{port}", image="busybox", network="host",
                        command=["httpd", "-f", "-p", str(port), "-u", "33:33"],
                        ids=id_range(port * 100, 100), cgroup={"cpu.max": "30000 100000"})
        web.ready(tcp(port), timeout=5)

``env`` holds the ``-e KEY=VAL`` values of the command line. See docs/manager.md.
"""

env = {}

__all__ = ["Container", "Ready", "bind", "console", "env", "healthy", "id_range", "python", "shell",
           "tarball", "tcp", "tmpfs", "volume"]


def __getattr__(name):
    """The definition names, from ``dsl`` on first use: the verbs of this package that never
    run a definition (``kago down``, ``ps``) do not load it (dataclasses and the typed
    Definition come with it)."""
    if name in __all__:
        from kago.manager.define import dsl
        return getattr(dsl, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
