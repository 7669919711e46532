"""``kago build``: an image from a Containerfile (Dockerfile), as docker and podman build.

    parser.py      text -> instructions (directives, continuations, comments, flags, forms)
    substitute.py  $VAR, ${VAR:-x}, ${VAR:+x}, quotes: docker's word rules
    stages.py      instructions -> stages (ARG before FROM, FROM ... AS name, --target)
    steps.py       one instruction applied to a stage's state: config, or a Run / Copy
    context.py     the build context: a directory or a tar, .dockerignore, file digests
    files.py       copying into a root filesystem without leaving it (COPY, ADD)
    cache.py       the step cache: key -> image
    executor.py    stages -> images through the manager and the store
    runner.py      one RUN in a build container (the manager's create/start/wait/remove)

The first four are pure; see docs/build.md for what is supported.
"""
