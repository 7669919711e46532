"""``python -m kago.network.dns --table T --proc P [--ready-fd N]``: a network's resolver.

Started by ``control.start``. It forks at once and the first process exits, so the resolver is
nobody's child (a short-lived ``kago`` command does not keep it as a zombie-to-be). The
resolver binds its sockets, writes its process record (pid and /proc start time) to ``P``,
then writes "ok PID" (or "error: why") on the ready fd and closes it: the starter learns that
queries are being answered, or why not, before the container runs.
"""

import argparse
import os
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kago.network.dns")
    parser.add_argument("--table", required=True)
    parser.add_argument("--proc", required=True)
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--foreground", action="store_true")
    opts = parser.parse_args(argv)
    if not opts.foreground and os.fork() > 0:
        os._exit(0)
    ready = os.fdopen(opts.ready_fd, "w") if opts.ready_fd is not None else None
    try:
        from kago.network.dns import control, server, table
        resolver = server.Resolver(opts.table, opts.proc)
        address, port = resolver.table["listen"]
        try:
            udp, tcp = server.listen_sockets(address, port)
        except OSError as err:
            raise OSError(f"listen on {address}:{port}: {(err.strerror or str(err)).lower()}") \
                from None
        table.write(opts.proc, control.process_record(os.getpid(), opts.table, address, port))
    except (OSError, ValueError, KeyError) as err:
        what = str(err)
        if ready:
            ready.write(f"error: {what}\n")
            ready.flush()           # closed by the exit: the starter reads to EOF
        os._exit(1)
    if ready:
        ready.write(f"ok {os.getpid()}\n")
        ready.close()
    import asyncio
    asyncio.run(resolver.serve(udp, tcp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
