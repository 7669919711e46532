"""One RUN: a build container through the manager's public verbs (create, start, wait,
remove), its output streamed as it comes, its changes committed as a layer.

The container is an ordinary one named ``kago-build-<hex>`` on the default network, made
from the parent image with the stage's environment, user, working directory and shell
(the image's ENTRYPOINT is not used, as in docker). Whatever happens -- success, a non-zero
exit, a failed start, Ctrl-C -- it is removed before this returns: no container, mount,
cgroup, netns or layer of it is left, and a failed step makes no image.
"""

import os
import threading
import uuid

from kago.errors import KagoError
from kago.manager.build.errors import BuildError

_POLL = 0.05


def run(mgr, image_id, step, config, where, write):
    """Run ``step`` (a steps.Run) on ``image_id``; commit its changes with ``config`` as the
    new image's config. ``write(stream, text)`` gets its output. Returns the new image's ID;
    BuildError (with the exit status) if the command fails."""
    from kago.manager.definition import from_options
    try:
        definition = from_options(image_id, list(step.argv), entrypoint=[], env=list(step.env),
                                  workdir=step.workdir or "/", user=step.user or None,
                                  name=f"kago-build-{uuid.uuid4().hex[:12]}",
                                  labels={"io.kago.build": "step"}, environ={})
        record = mgr.create(definition)
    except KagoError as e:
        raise BuildError(f"{step.text}: the build container cannot be made: {e}", where) \
            from None
    cid = record["id"]
    try:
        code = _start_and_wait(mgr, cid, write, step, where)
        if code != 0:
            raise BuildError(f"{step.text}: exited with status "
                             f"{'unknown' if code is None else code}", where)
        return mgr.store.commit(cid, None, config=config, message=step.text).id
    finally:
        mgr.remove(cid, force=True)


def _start_and_wait(mgr, cid, write, step, where):
    from kago.manager import logs
    done = threading.Event()
    result = {}

    def waiter():
        try:
            result["code"] = mgr.wait(cid)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            result["error"] = e
        finally:
            done.set()

    try:
        mgr.start(cid)
    except KagoError as e:
        raise BuildError(f"{step.text}: did not start: {e}", where) from None
    thread = threading.Thread(target=waiter, daemon=True)
    thread.start()
    path = mgr.paths.log(cid)
    for entry in logs.follow(path, done.is_set, interval=_POLL, offset=0):
        write(entry.get("stream", "stdout"), entry.get("log", ""))
    thread.join()
    if "error" in result:
        error = result["error"]
        raise BuildError(f"waiting for the build container: {error}") from error
    if not os.path.exists(path) and result.get("code") is None:
        return None
    return result.get("code")
