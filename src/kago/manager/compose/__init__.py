"""``kago compose``: compose.yaml / docker-compose.yml files on the same engine as definition
files -- each service becomes the Definition (kago.manager.definition) that ``kago.Client``
and ``kago up FILE`` build, and containers, networks and volumes are the manager's own.

    yamlfile.py     YAML with the line of every value; .env and env_file files
    interpolate.py  ${VAR}, ${VAR:-default}, ${VAR?error}, $$
    merge.py        -f a -f b: compose's merge rules
    load.py         files -> one resolved document and the project's name
    translate.py    services -> Definitions in depends_on order (pure), with fields.py
                    (a service's values), mounts.py (volumes), links.py (ports,
                    depends_on, networks) and top.py (top-level volumes and networks)
    up.py           up on the manager (images built with kago build)
    runner.py       down, ps, logs, stop: the project's containers found by their labels

Every error in a file is one ComposeError naming the file, the line and the field, raised
before anything is made. See docs/compose.md.
"""
