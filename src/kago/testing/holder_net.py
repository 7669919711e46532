"""kago.network inside a rootless holder's namespaces, for tests and benches.

``python -m kago.testing.holder_net JSON`` runs one ``Networks`` call in the namespaces it was
started in (``nsenter -U -n -m -t HOLDER`` as the holder's user) and prints one JSON line:
``{"ok": RESULT}`` or ``{"error": "ONE LINE", "type": "ClassName"}``. JSON: ``{"op":
"create"|"attach"|"detach"|"cycle"|"restore"|"remove", "settings": {Networks(...) keywords,
state_dir included}, "cid", "ports", "network", "subnet", "bridge", "outbound",
"count"}``; ``cycle`` answers [[attach ms, detach ms], ...] of ``count`` attach + detach of
``cid``.

``Holder`` is a throwaway holder: ``unshare --user --map-root-user --net --mount sleep`` as a
user (a ThrowawayUser), and the argv that runs a command inside it. ``free_ports``: host
ports nothing holds now; ``host_ipv4``: a non-loopback address of the host a holder reaches
through slirp4netns (``no_host_ipv4``: why there is none); ``CONNECT`` and ``serve_hello``: a
TCP client for inside and a server on the host.
"""

import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time


def run(request):
    from kago.network import Networks
    settings = dict(request["settings"])
    nets = Networks(settings.pop("state_dir"), **settings)
    op = request["op"]
    if op == "attach":
        return nets.attach(request["cid"], ports=request.get("ports", ()),
                           network=request.get("network")).to_dict()
    if op == "create":
        return nets.create(request["network"], request["subnet"], request.get("bridge"),
                           outbound=request.get("outbound"))
    if op == "detach":
        nets.detach(request["cid"])
        return None
    if op == "cycle":     # timed attach + detach of one container, ``count`` times
        times = []
        for _ in range(request["count"]):
            t0 = time.perf_counter()
            nets.attach(request["cid"], ports=request.get("ports", ()),
                        network=request.get("network"))
            t1 = time.perf_counter()
            nets.detach(request["cid"])
            times.append(((t1 - t0) * 1000, (time.perf_counter() - t1) * 1000))
        return times
    if op == "restore":
        return nets.restore_forwards()
    if op == "remove":
        for record in nets.list():
            nets.remove(record["name"])
        return None
    raise ValueError(f"unknown op {op!r}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        print(json.dumps({"ok": run(json.loads(argv[0]))}))
    except Exception as e:  # noqa: BLE001 (the caller gets every error as one JSON line)
        print(json.dumps({"error": str(e), "type": type(e).__name__}))
        return 1
    return 0


def free_ports(candidates, count, addr="0.0.0.0"):
    """``count`` tcp ports of ``candidates`` that nothing holds on ``addr`` now, or None."""
    found = []
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind((addr, port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    return None


# a TCP client for inside a namespace: ``python3 -c CONNECT ADDR PORT`` prints "got <what
# the server sent>" or "failed <why>"
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
           "    print('got', s.recv(16).decode())\n"
           "except OSError as e:\n"
           "    print('failed', type(e).__name__, e)\n")


def serve_hello(addr, port, count=4):
    """A TCP server on the host saying "hello" to ``count`` connections, in a thread:
    (its socket, to close; the peer addresses it saw)."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(count)
    srv.settimeout(15)
    seen = []

    def run():
        try:
            for _ in range(count):
                conn, peer = srv.accept()
                seen.append(peer[0])
                conn.sendall(b"hello")
                conn.close()
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()
    return srv, seen


# slirp4netns's own network inside the holder (tap0 10.0.2.100, gateway 10.0.2.2, dns 10.0.2.3)
SLIRP_NETWORK = ipaddress.ip_network("10.0.2.0/24")


def host_ipv4s():
    """The host's non-loopback IPv4 addresses (traffic to them stays on the host)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout.split()
    return [w.split("/")[0] for i, w in enumerate(out) if i and out[i - 1] == "inet"]


def host_ipv4():
    """One non-loopback IPv4 address of the host outside slirp4netns's 10.0.2.0/24, or None.
    One inside it (a QEMU or VirtualBox NAT guest's 10.0.2.15) is on tap0's link for the
    holder: what the holder sends there, replies to such a client included, goes to
    slirp4netns's virtual network, where no host has it, and is lost."""
    usable = [a for a in host_ipv4s() if ipaddress.ip_address(a) not in SLIRP_NETWORK]
    return usable[0] if usable else None


def no_host_ipv4():
    """Why ``host_ipv4`` is None, in one line."""
    addrs = host_ipv4s()
    if not addrs:
        return "the host has no non-loopback IPv4 address"
    return (f"the host's IPv4 addresses ({', '.join(addrs)}) are all inside slirp4netns's "
            f"{SLIRP_NETWORK}, on the holder's tap0 link: the holder cannot reach them, nor "
            "answer a client on them")


class Holder:
    """A user's process holding a new user (its uid as 0), network and mount namespace."""

    def __init__(self, user):
        self.user = user
        self.proc = subprocess.Popen(
            self.as_user(["unshare", "--user", "--map-root-user", "--net", "--mount",
                          "sleep", "600"]), stdin=subprocess.DEVNULL, cwd=user.home)
        ours = os.readlink("/proc/self/ns/net")
        for _ in range(200):  # bounded: 10 s
            try:
                if os.readlink(f"/proc/{self.proc.pid}/ns/net") != ours:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the holder's network namespace did not appear within 10s")

    @property
    def pid(self):
        return self.proc.pid

    def as_user(self, argv):
        env = [f"{k}={v}" for k, v in self.user.env().items()]
        return ["setpriv", f"--reuid={self.user.uid}", f"--regid={self.user.gid}",
                "--init-groups", "--reset-env", "--", "env", "-i", *env, *argv]

    def inside(self, argv, netns=None):
        """argv that runs ``argv`` as root of the holder's namespaces (and in the netns
        bound at ``netns`` there, if given)."""
        enter = ["nsenter", "--preserve-credentials", "-U", "-n", "-m", "-t", str(self.pid)]
        if netns:
            enter += ["nsenter", f"--net={netns}"]
        return self.as_user([*enter, *argv])

    def network(self, request, timeout=60):
        """One ``run`` inside the holder: {"ok": ...} or {"error": ..., "type": ...}."""
        proc = subprocess.run(self.inside([sys.executable, "-m", "kago.testing.holder_net",
                                           json.dumps(request)]),
                              capture_output=True, text=True, timeout=timeout,
                              cwd=self.user.home)
        lines = proc.stdout.strip().splitlines()
        if not lines:
            raise RuntimeError(f"holder_net printed nothing: {proc.stderr.strip()[-500:]}")
        return json.loads(lines[-1])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
