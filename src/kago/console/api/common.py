"""What every API module uses: JSON errors as ``{"error": one line}`` with docker's status
codes, running the blocking kago calls in the thread pool, and the SSE encoding."""

import json

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def error(status, text):
    return JSONResponse({"error": " ".join(str(text).split()) or "error"}, status_code=status)


def status_of(exc):
    """The HTTP status of a kago error: 404 no such thing, 400 a bad value, 409 otherwise."""
    from kago.manager.errors import BadValue, ImageNotFound, NoSuchContainer
    if isinstance(exc, (NoSuchContainer, ImageNotFound)):
        return 404
    if isinstance(exc, BadValue):
        return 400
    return 409


async def call(fn, *args, **kwargs):
    """(value, None) or (None, an error response): ``fn`` run in the thread pool, a
    KagoError or OSError turned into JSON."""
    from kago.errors import KagoError
    try:
        return await run_in_threadpool(fn, *args, **kwargs), None
    except KagoError as e:
        return None, error(status_of(e), e)
    except OSError as e:
        from kago.errors import describe
        return None, error(409, describe(e))


def sse(event, data):
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def json_body(request):
    """The request's JSON object ({} when it has no body); ValueError if it is not one."""
    raw = await request.body()
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value


def console(request):
    """The app's state (kago.console.app.Console)."""
    return request.app.state.console
