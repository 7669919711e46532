"""/api/groups (the definition files ``kago up`` ran, with reload and down), /api/images and
/api/networks."""

import glob
import json
import os

from starlette.responses import JSONResponse

from kago.console.api.common import call, console, error

RUNNING = ("running", "paused", "restarting")


def groups(client):
    """[{"name", "definition", "containers", "running", "total"}]: each group ``kago up``
    remembers (ROOT/groups), named for its file's stem (its key's head after it when two
    files share a stem)."""
    from kago.manager.define.group import Group
    mgr = client.manager
    found = []
    for path in sorted(glob.glob(os.path.join(mgr.paths.groups(), "*.json"))):
        try:
            with open(path) as f:
                file = json.load(f)["file"]
        except (OSError, ValueError, KeyError):
            continue
        found.append(Group(mgr, file))
    stems = [os.path.splitext(os.path.basename(g.path))[0] for g in found]
    states = mgr.states()
    out = []
    for group, stem in zip(found, stems):
        name = stem if stems.count(stem) == 1 else f"{stem}-{group.key[:8]}"
        names, running = [], 0
        for cname, record in group.records():
            if record is None:
                continue
            names.append(cname)
            running += mgr.live(record, states) in RUNNING
        out.append({"name": name, "definition": group.path, "containers": names,
                    "running": running, "total": len(names)})
    return out


def _group_file(client, name):
    from kago.manager.errors import NoSuchContainer
    for g in groups(client):
        if g["name"] == name:
            return g["definition"]
    raise NoSuchContainer(f"no such group: {name}")


async def list_groups(request):
    rows, failed = await call(groups, console(request).client)
    return failed or JSONResponse(rows)


async def _group_verb(request, verb):
    c = console(request)
    name = request.path_params["name"]
    file, failed = await call(_group_file, c.client, name)
    if failed:
        return failed
    if verb == "reload" and not os.path.exists(file):
        return error(409, f"reload {name}: its definition {file} is gone")
    lines = []
    fn = c.client.reload_definition if verb == "reload" else c.client.down
    _v, failed = await call(fn, file, out=lines.append)
    if failed:
        return failed
    return JSONResponse({"name": name, "definition": file, verb: True, "output": lines})


async def reload_group(request):
    return await _group_verb(request, "reload")


async def down_group(request):
    return await _group_verb(request, "down")


def images(client):
    return [{"id": i.id, "tags": list(i.names), "size": i.size, "created": i.created}
            for i in client.images.list()]


async def list_images(request):
    rows, failed = await call(images, console(request).client)
    return failed or JSONResponse(rows)


def networks(client):
    """[{"name", "driver", "subnet", "gateway", "containers": [names]}]: the root's bridge
    networks with the containers attached to each."""
    mgr = client.manager
    names = {}
    for record, _live in mgr.list(all=True):
        names[record["id"]] = record["name"]
    out = []
    for net in client.networks.list():
        doc = client.networks.get(net["name"])
        attached = []
        for a in doc.get("containers") or ():
            cid = a.get("cid") or a.get("id") or ""
            attached.append(names.get(cid, cid[:12]))
        out.append({"name": net["name"], "driver": "bridge", "subnet": doc.get("subnet"),
                    "gateway": doc.get("gateway"), "containers": sorted(attached)})
    return out


async def list_networks(request):
    rows, failed = await call(networks, console(request).client)
    return failed or JSONResponse(rows)


def routes():
    from starlette.routing import Route
    return [
        Route("/api/groups", list_groups),
        Route("/api/groups/{name}/reload", reload_group, methods=["POST"]),
        Route("/api/groups/{name}/down", down_group, methods=["POST"]),
        Route("/api/images", list_images),
        Route("/api/networks", list_networks),
    ]
