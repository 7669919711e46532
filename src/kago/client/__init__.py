"""``kago.Client``: kago's manager as a Python API -- what the ``kago`` command line calls.

    import kago
    client = kago.Client()                       # root=None: /var/lib/kago (or $KAGO_ROOT)
    c = client.run("busybox", ["sh", "-c", "echo hi; sleep 30"], name="web", network="none")
    print(c.id, c.state, c.pid)                  # ..., "running", 12345
    for line in c.logs():                        # "hi\n"
        print(line, end="")
    c.stop(timeout=2)
    c.remove()

Containers come back as ``Container`` values (a snapshot: ``reload()`` reads it again);
images and networks are ``client.images`` and ``client.networks``; definition files are
``up``/``down``/``group``/``reload_definition``/``archive``. Every error is a
``kago.errors.KagoError`` whose ``str()`` is one line naming what is at fault. docs/api.md
has the whole surface with runnable examples.

A container's Definition is built in one place, ``container_definition`` (the keyword
options' builder of kago.manager.definition); ``create`` and ``run`` go through it. The CLI
builds one from docker's flags (cli/flags.py, the flags' builder) and hands it to
``create_from``.

The package's modules: ``core`` (Client), ``containers`` (Container, GroupRun, ClientError,
``container_definition``), ``images``, ``networks`` and ``volumes`` (``client.images``,
``client.networks``, ``client.volumes``).

This package imports only ``kago.manager`` (lazily, on first use); the ``kago`` package
offers ``Client`` and ``Container`` through a module ``__getattr__``, so ``import kago`` (on
kago-oci's start path) loads none of it.
"""

from kago.client.containers import ClientError  # noqa: F401 (kago.client.ClientError)
from kago.client.containers import Container, GroupRun, container_definition
from kago.client.core import Client
from kago.client.images import Images  # noqa: F401 (kago.client.Images)
from kago.client.networks import Networks  # noqa: F401
from kago.client.volumes import Volumes  # noqa: F401

__all__ = ["Client", "Container", "GroupRun", "container_definition"]
