"""A DNS resolver per kago network, as docker's embedded DNS and podman's aardvark-dns give.

Containers on a bridge network get ``nameserver <gateway>`` in their resolv.conf; a resolver
process listening on the gateway address (port 53, host network namespace) answers the names
of the containers on that network and forwards everything else to the host's resolvers.

    codec.py     the DNS wire format (parse queries, write answers, truncate)
    table.py     the name table kago writes and the resolver reads (JSON)
    server.py    the resolver: a selectors loop, UDP and TCP, forwarding
    control.py   kago's side: start, SIGHUP, stop, find strays
    daemon.py    the resolver process (``python -m kago.cli.resolver``)

Importing this package imports nothing.
"""
