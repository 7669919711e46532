"""A network's resolver process: ``run`` is what ``python -m kago.cli.resolver --table T --proc P
[--ready-fd N]`` (cli/resolver.py, the program's command line) does.

Started by ``control.start``. It forks at once and the first process exits, so the resolver is
nobody's child (a short-lived ``kago`` command does not keep it as a zombie-to-be). The
resolver binds its sockets, writes its process record (pid and /proc start time) to ``P``,
then writes "ok PID" (or "error: why") on the ready fd and closes it: the starter learns that
queries will be answered, or why not, before the container runs. Ready comes before the
server's modules are imported: a query arriving meanwhile waits in the bound socket.
"""

import os
import signal
import socket
import sys

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def listen_sockets(address, port):
    """(udp, tcp) bound to ``address``: IP_FREEBIND, so a bridge still coming up (after a
    reboot) does not fail the bind. No SO_REUSEADDR on UDP: a second resolver on the same
    address fails here instead of sharing (and stealing) the first one's queries."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    udp = socket.socket(family, socket.SOCK_DGRAM)
    tcp = socket.socket(family, socket.SOCK_STREAM)
    try:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # TIME_WAIT only
        for s in (udp, tcp):
            if family == socket.AF_INET:
                s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
            s.bind((address, port))
            s.setblocking(False)
        tcp.listen(64)
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp


def run(table_path, proc_path, ready_fd=None, foreground=False):
    """Serve the names of the table at ``table_path`` (recording this process at
    ``proc_path``), in a forked child unless ``foreground``; "ok PID" or "error: why" goes to
    ``ready_fd``."""
    if not foreground and os.fork() > 0:
        os._exit(0)
    # a SIGHUP (a table change) before the server's handler is in place must not kill it (the
    # default action): ignored, the table's stamp is checked anyway before every query
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    ready = os.fdopen(ready_fd, "w") if ready_fd is not None else None
    try:
        from kago.network.dns import proc, table
        address, port = table.load(table_path)["listen"]
        try:
            udp, tcp = listen_sockets(address, port)
        except OSError as err:
            raise OSError(f"listen on {address}:{port}: {(err.strerror or str(err)).lower()}") \
                from None
        table.write(proc_path, proc.process_record(os.getpid(), table_path, address, port))
    except (OSError, ValueError, KeyError) as err:
        what = str(err)
        if ready:
            ready.write(f"error: {what}\n")
            ready.flush()           # closed by the exit: the starter reads to EOF
        else:
            print(f"python -m kago.cli.resolver: {what}", file=sys.stderr, flush=True)
        os._exit(1)
    if ready:
        ready.write(f"ok {os.getpid()}\n")
        ready.close()
    from kago.network.dns import server
    server.Resolver(table_path, proc_path).serve(udp, tcp)
    return 0

