"""/api/containers...: the list and its stream, one container's document, history, samples
and log, and the lifecycle verbs (start, stop, restart, remove)."""

from starlette.responses import JSONResponse, StreamingResponse

from kago.console.api.common import SSE_HEADERS, call, console, error, json_body, sse


def _flag(request, name, default=False):
    value = request.query_params.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes", "on")


async def list_containers(request):
    c = console(request)
    rows, failed = await call(c.sampler.rows, c.client, all=_flag(request, "all"))
    return failed or JSONResponse(rows)


async def stream(request):
    """Every tick of the sampler: ``tick`` {"t", "containers": rows} (every container;
    ``?all=0``: running ones)."""
    c = console(request)
    every = _flag(request, "all", True)

    async def events():
        yield "retry: 2000\n\n"
        sent = None
        while True:
            t, rows = c.sampler.snapshot
            if not every:
                rows = [r for r in rows if r["state"] in ("running", "paused", "restarting")]
            if t and t != sent:  # next_tick gives up after 5 s: no new tick, nothing to send
                sent = t
                yield sse("tick", {"t": t, "containers": rows})
            await c.sampler.next_tick()
            if await request.is_disconnected():
                return
    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


async def _record(request):
    c = console(request)
    return await call(c.client.manager.resolve, request.path_params["name"])


async def inspect(request):
    c = console(request)
    doc, failed = await call(c.client.inspect, request.path_params["name"])
    return failed or JSONResponse(doc)


async def history(request):
    record, failed = await _record(request)
    if failed:
        return failed
    return JSONResponse(console(request).sampler.history(record["id"]))


async def samples(request):
    record, failed = await _record(request)
    if failed:
        return failed
    c, cid = console(request), record["id"]

    async def events():
        yield "retry: 2000\n\n"
        sent = None
        while True:
            last = c.sampler.latest(cid)
            if last is not None and last["t"] != sent:
                sent = last["t"]
                yield sse("sample", last)
            await c.sampler.next_tick()
            if await request.is_disconnected():
                return
    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


async def logs(request):
    """SSE ``line`` {"stream", "text"}: the last ``tail`` lines (default 200; "all"), then,
    with ``follow=1``, what the container writes until it ends or the client goes."""
    record, failed = await _record(request)
    if failed:
        return failed
    tail = request.query_params.get("tail", "200")
    if tail != "all" and not tail.isdigit():
        return error(400, f"tail: want a number or all, not {tail!r}")
    tail = None if tail == "all" else int(tail)
    from kago.console.logstream import LogStream
    stream = LogStream(console(request).client, record["id"], tail=tail,
                       follow=_flag(request, "follow"))

    async def events():
        async for entry in stream.entries():
            if entry is None:
                yield sse("end", {})
            elif "error" in entry:
                yield sse("error", {"error": entry["error"]})
            else:
                text = entry.get("log", "")
                yield sse("line", {"stream": entry.get("stream", "stdout"),
                                   "text": text[:-1] if text.endswith("\n") else text})
    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


def _row_of(c, ref):
    for row in c.sampler.rows(c.client, all=True):
        if row["id"] == ref or row["name"] == ref:
            return row
    return None


async def _verb(request, fn):
    c = console(request)
    try:
        body = await json_body(request)
    except ValueError as e:
        return error(400, f"body: {e}")
    timeout = body.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        return error(400, f"timeout: want seconds (a number >= 0), not {timeout!r}")
    record, failed = await _record(request)
    if failed:
        return failed
    _value, failed = await call(fn, c.client, record["id"], timeout)
    if failed:
        return failed
    row, failed = await call(_row_of, c, record["id"])
    return failed or JSONResponse(row)


async def start(request):
    return await _verb(request, lambda client, cid, _t: client.start(cid))


async def stop(request):
    return await _verb(request, lambda client, cid, t: client.stop(cid, timeout=t))


async def restart(request):
    return await _verb(request, lambda client, cid, t: client.restart(cid, timeout=t))


async def remove(request):
    c = console(request)
    record, failed = await _record(request)
    if failed:
        return failed
    _v, failed = await call(c.client.remove, record["id"], force=_flag(request, "force"))
    return failed or JSONResponse({"removed": record["name"]})


def routes():
    from starlette.routing import Route, WebSocketRoute
    from kago.console import terminal
    base = "/api/containers/{name}"
    return [
        Route("/api/containers", list_containers),
        Route("/api/stream", stream),
        Route(base, inspect),
        Route(base, remove, methods=["DELETE"]),
        Route(base + "/history", history),
        Route(base + "/samples", samples),
        Route(base + "/logs", logs),
        Route(base + "/start", start, methods=["POST"]),
        Route(base + "/stop", stop, methods=["POST"]),
        Route(base + "/restart", restart, methods=["POST"]),
        WebSocketRoute(base + "/terminal", terminal.terminal),
    ]

