"""The kago manager: docker-like verbs, a shared supervisor, and container
definitions that are Python programs (``kago up FILE``).

    engine.Manager      the verbs as a library: create, start, stop, kill, remove, list, wait,
                        a facade over the services (context, create, lifecycle, release,
                        removal, attachments, rootfs, ids/idranges)
    definition/         one typed, frozen Definition per container, built from flags, a
                        definition file or the Client's options; stored in records as JSON
    spec                a Definition -> an OCI config.json (pure)
    runtimes            the seam: kago's runtime in process, or any runc-compatible binary
    supervisor/         one process per root: starts, reaps, restarts, logs every container
    logs                docker's json-file logs, rotated by size
    define/             definition files: the DSL, loading with file:line errors, up/down/...
    views, format       inspect/top/stats documents; docker's tables and --format templates

Importing this package imports nothing else: the supervisor and ``kago ps`` stay lean.
"""
