"""``kago archive FILE``: a definition's rootfs, bootstrapped and provisioned, saved as an
image."""

import os

from kago.manager.define import hooks as H
from kago.manager.define.bootstrap import bootstrap_dir, provision_step, run_bootstrap
from kago.manager.define.load import load
from kago.manager.definition import RestartPolicy
from kago.manager.errors import DefinitionError


def archive(mgr, file, env=None, out=print, tag=None, **_):
    """Bootstrap and provision each container's rootfs in a scratch container, then save it
    as an image (a commit of the layer, or an import of a directory rootfs)."""
    definition = load(file, env)
    import secrets

    from kago.manager import images
    made = []
    for c in definition.containers:
        if not (c.bootstrap or c.provision):
            continue
        scratch = definition.definitions[c.name].but(
            name=f"{c.name}-archive-{secrets.token_hex(3)}",
            command=("/bin/sh", "-c", "while :; do sleep 1; done"), entrypoint=(),
            restart=RestartPolicy(), ports=())
        bootstrap_dir(c, scratch)
        record = mgr.create(scratch)
        try:
            if scratch.image and c.bootstrap:
                run_bootstrap(c, record["rootfs"]["path"])
            mgr.start(record["id"])
            handle = H.Handle(mgr, mgr.records.load(record["id"]))
            for step in c.provision:
                provision_step(c, step, handle)
            mgr.stop(record["id"], timeout=2)
            name = tag if tag and len(definition.containers) == 1 else (
                f"{tag}-{c.name}" if tag else c.name)
            info = images.commit(mgr, mgr.records.load(record["id"]), name,
                                 message=f"kago archive {os.path.basename(file)}")
            made.append((c.name, name, info.id))
        finally:
            mgr.remove(record["id"], force=True)
    if not made:
        raise DefinitionError(definition.path, 0, "no container has bootstrap or provision "
                                                  "steps: nothing to archive")
    for cname, name, image_id in made:
        out(f"{cname}: image {name} sha256:{image_id[:12]}")
    return 0

