"""``WS /api/containers/{name}/terminal?cols=C&rows=R``: a shell in a running container on a
pseudo-terminal, as ``kago exec -it NAME sh`` makes it (the runtime's ``exec --tty``, with
the same privilege: root in the container unless its user says otherwise).

The console holds a pty pair of its own: the runtime's exec runs as a new session on its
slave (its controlling terminal), exactly as under a real terminal, so it proxies our size
from the start and on each resize (the kernel's SIGWINCH on TIOCSWINSZ) to the container's
terminal. What the shell writes goes to the socket as binary frames; text frames from the
client are JSON ``{"type": "input", "data": ...}`` or ``{"type": "resize", "cols",
"rows"}``. The socket closes when the shell ends; when the socket closes first, the exec's
session is hung up (SIGHUP, then SIGKILL after 2 s) and reaped, and the container's shell
ends with its terminal.
"""

import asyncio
import fcntl
import json
import os
import signal
import struct
import subprocess
import termios

from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_SIZE = 1000


def size_of(query):
    """(cols, rows) from the query (default 80x24, each clamped to 1..1000)."""
    def one(key, default):
        try:
            return min(max(int(query.get(key, default)), 1), MAX_SIZE)
        except ValueError:
            return default
    return one("cols", 80), one("rows", 24)


def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def shell_of(pid):
    """/bin/bash where the container has it, else /bin/sh."""
    root = f"/proc/{pid}/root"
    return "/bin/bash" if os.path.exists(root + "/bin/bash") else "/bin/sh"


def exec_argv(mgr, record):
    from kago.manager.definition.values import merge_env
    env = merge_env(["TERM=xterm-256color"], [])
    shell = shell_of(record["state"]["pid"])
    return mgr.runtime(record).exec_argv(record["id"], [shell], tty=True, env=env), shell


def _ctty():  # in the child, after setsid: the slave (fd 0) becomes its controlling terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def spawn(argv, cols, rows):
    """(process, pty master): ``argv`` as a session leader on a new pty of that size."""
    master, slave = os.openpty()
    try:
        set_size(master, cols, rows)
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                                start_new_session=True, preexec_fn=_ctty)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return proc, master


async def until_raw(fd, proc, timeout=5.0):
    """Wait until the runtime has put its terminal in raw mode (ICANON off): it flushes
    what was typed before that, so input waits for it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline and proc.poll() is None:
        try:
            if not termios.tcgetattr(fd)[3] & termios.ICANON:
                return
        except termios.error:
            return
        await asyncio.sleep(0.02)


def hang_up(proc, grace=2.0):
    """End the exec's session (SIGHUP, SIGKILL after ``grace`` s) and reap it."""
    for sig, wait in ((signal.SIGHUP, grace), (signal.SIGKILL, grace)):
        if proc.poll() is not None:
            return proc.returncode
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


async def terminal(websocket: WebSocket):
    from kago.errors import KagoError
    from kago.manager import events
    from starlette.concurrency import run_in_threadpool
    c = websocket.app.state.console
    mgr = c.client.manager
    try:
        record = await run_in_threadpool(mgr.resolve, websocket.path_params["name"])
        live = await run_in_threadpool(mgr.live, record)
    except KagoError as e:
        await websocket.close(code=4404, reason=str(e)[:120])
        return
    if live != "running":
        await websocket.close(code=4409, reason=f"container {record['name']} is not running")
        return
    cols, rows = size_of(websocket.query_params)
    argv, shell = exec_argv(mgr, record)
    proc, master = spawn(argv, cols, rows)
    eid = events.exec_started(mgr.paths, record, [shell])
    await websocket.accept()
    loop = asyncio.get_running_loop()
    output = asyncio.Queue()

    def readable():
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave is closed, the exec ended
            data = b""
        if not data:
            loop.remove_reader(master)
        output.put_nowait(data)

    loop.add_reader(master, readable)

    async def pump_out():
        while True:
            data = await output.get()
            if not data:
                return
            await websocket.send_bytes(data)

    raw = asyncio.ensure_future(until_raw(master, proc))

    async def pump_in():
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                if data:
                    await raw
                    _write_all(master, data)
                continue
            try:
                frame = json.loads(text)
            except ValueError:
                continue
            if frame.get("type") == "input" and isinstance(frame.get("data"), str):
                await raw
                _write_all(master, frame["data"].encode())
            elif frame.get("type") == "resize":
                set_size(master, *size_of(frame))

    out_task = asyncio.ensure_future(pump_out())
    in_task = asyncio.ensure_future(pump_in())
    try:
        await asyncio.wait([out_task, in_task], return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, OSError):
        pass
    finally:
        for task in (out_task, in_task, raw):
            task.cancel()
        loop.remove_reader(master)
        code = await run_in_threadpool(hang_up, proc)
        os.close(master)
        code = 128 - code if code is not None and code < 0 else code
        events.container(mgr.paths, "exec_die", record, execID=eid, exitCode=code)
        if out_task.done() and not out_task.cancelled() and out_task.exception() is None:
            try:
                await websocket.close(code=1000)
            except (RuntimeError, WebSocketDisconnect):
                pass


def _write_all(fd, data):
    import select
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        data = data[n:]
