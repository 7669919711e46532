"""The console's ASGI app: the pages (static/*.html), /static/, the login endpoints, the API
modules' routes, the auth middleware, and the sampler started and stopped with the app.

``make_app(root=..., listen="127.0.0.1:9090")`` builds it for uvicorn (server.py) or for a
test client; ``Console`` is its state (``app.state.console``)."""

import contextlib
import os

from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kago.console import auth
from kago.console.api import common
from kago.console.api.common import error, json_body

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
PAGES = {"/": "index.html", "/c/{name}": "container.html", "/groups": "groups.html",
         "/images": "images.html", "/networks": "networks.html", "/login": "login.html"}


class Console:
    """What the app's handlers share: a client for requests, the sampler (with a client of
    its own: it runs in its own thread), the token, the sessions and the listen rule."""

    def __init__(self, root=None, runroot=None, runtime=None, listen="127.0.0.1:9090",
                 token=None, interval=1.0, keep=600):
        import kago
        from kago.console.metrics import Sampler
        self.client = kago.Client(root=root, runroot=runroot, runtime=runtime)
        self.sampler = Sampler(kago.Client(root=root, runroot=runroot, runtime=runtime),
                               interval=interval, keep=keep)
        self.host, self.port = auth.split_listen(listen)
        self.loopback = auth.is_loopback(self.host)
        if token is None:
            token, _made = auth.load_or_make_token(self.client.manager.paths.root)
        self.token = token
        self.sessions = auth.Sessions()


def page(file):
    async def serve(_request):
        path = os.path.join(STATIC, file)
        if not os.path.exists(path):
            return error(404, f"page {file} is not installed")
        return FileResponse(path, media_type="text/html",
                            headers={"Cache-Control": "no-store"})
    return serve


async def login(request):
    c = common.console(request)
    try:
        body = await json_body(request)
    except ValueError as e:
        return error(400, f"body: {e}")
    token = body.get("token")
    import secrets
    if not isinstance(token, str) or not secrets.compare_digest(token.encode(),
                                                                c.token.encode()):
        return error(401, "wrong token")
    response = Response(status_code=204)
    response.set_cookie(auth.COOKIE, c.sessions.new(), max_age=auth.SESSION_SECONDS,
                        path="/", httponly=True, samesite="strict")
    return response


async def logout(request):
    c = common.console(request)
    c.sessions.end(auth.cookie_value(request.headers.get("cookie")))
    response = Response(status_code=204)
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
    return response


async def whoami(request):
    c = common.console(request)
    return JSONResponse({"authenticated": bool(request.scope.get(auth.SCOPE_KEY)),
                         "reads_need_token": not c.loopback})


async def not_found(request, _exc):
    return error(404, f"no such path: {request.url.path}")


def make_app(root=None, runroot=None, runtime=None, listen="127.0.0.1:9090", token=None,
             interval=1.0, keep=600, console=None):
    import asyncio

    from kago.console.api import containers, objects
    c = console or Console(root, runroot, runtime, listen, token, interval, keep)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        c.sampler.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            c.sampler.stop()

    routes = [Route("/api/login", login, methods=["POST"]),
              Route("/api/logout", logout, methods=["POST"]),
              Route("/api/whoami", whoami)]
    routes += containers.routes() + objects.routes()
    routes += [Route(path, page(file)) for path, file in PAGES.items()]
    routes.append(Mount("/static", StaticFiles(directory=STATIC, check_dir=False),
                        name="static"))
    from starlette.middleware import Middleware
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found},
                    middleware=[Middleware(auth.AuthMiddleware, token=c.token,
                                           sessions=c.sessions, loopback=c.loopback)])
    app.state.console = c
    return app
