"""Container definitions that are programs (``kago up FILE``): the names a file uses.

    from kago.manager.define import Container, id_range, tcp, tmpfs, bind

    for port in range(10001, 10101):
        web = Container(f"web-{port}", image="busybox", network="host",
                        command=["httpd", "-f", "-p", str(port), "-u", "33:33"],
                        ids=id_range(port * 100, 100), cgroup={"cpu.max": "30000 100000"})
        web.ready(tcp(port), timeout=5)

``env`` holds the ``-e KEY=VAL`` values of the command line. See docs/manager.md.
"""

from kago.manager.define.dsl import (
                                     Container,
                                     Ready,
                                     bind,
                                     console,
                                     healthy,
                                     id_range,
                                     python,
                                     shell,
                                     tarball,
                                     tcp,
                                     tmpfs,
                                     volume,
)

env = {}

__all__ = ["Container", "Ready", "bind", "console", "env", "healthy", "id_range", "python", "shell",
           "tarball", "tcp", "tmpfs", "volume"]
