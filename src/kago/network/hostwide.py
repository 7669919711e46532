"""What every kago state dir on the host shares: published host ports and net.ipv4.ip_forward.

Each manager root has its own network state (``ROOT/network``), but the host has one set of
ports and one ip_forward. Two registries under ``HOST_DIR`` (/run/kago/host: volatile, as the
things they describe do not outlive a reboot), each a JSON file edited under its own flock::

    ports.json (+ .lock)       [{host_port, container_port, proto, host_ip, cid, state}]:
                               every port published by a container of any state dir
    ip_forward.json (+ .lock)  {"was": "0"|"1", "users": ["<state dir>\\t<network>", ...]}:
                               ip_forward's value before the first kago network that needed
                               it, and the networks that need it now

An entry whose state dir no longer knows it (a root deleted by hand, a crash between two
writes) is stale: it is dropped when it is met, so it never holds a port or ip_forward.

``listeners(proto)`` reads the kernel's sockets (/proc/net/{tcp,tcp6,udp,udp6}): a published
port must not take the traffic of a process already listening on it, nor one
``check_port_free`` cannot bind.
"""

import errno
import ipaddress
import os
import socket

from kago.network import state
from kago.network.errors import AddressInUse, NetworkError

HOST_DIR = "/run/kago/host"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
TCP_LISTEN = "0A"


class HostState:
    __slots__ = ("root",)

    def __init__(self, root=HOST_DIR):
        self.root = root

    def _path(self, name):
        return os.path.join(self.root, name)

    def _lock(self, name):
        os.makedirs(self.root, 0o700, exist_ok=True)
        return state.locked(self._path(name + ".lock"))

    # --- ports
    def ports_lock(self):
        return self._lock("ports")

    def ports(self):
        """The registry, stale entries dropped (call under ``ports_lock``)."""
        return [e for e in state.read_json(self._path("ports.json"), []) if _port_live(e)]

    def write_ports(self, table):
        state.write_json(self._path("ports.json"), table)

    # --- ip_forward
    def need_forwarding(self, state_dir, network, read, write, was=None):
        """``network`` of ``state_dir`` needs ip_forward on: remember the host's value before
        the first such network (``was`` if an older kago saved it), then turn it on.
        ``read()``/``write(value)`` the sysctl."""
        with self._lock("ip_forward"):
            doc = self._forward_doc()
            if doc is None:
                doc = {"was": was if was in ("0", "1") else read(), "users": []}
            user = f"{state_dir}\t{network}"
            if user not in doc["users"]:
                doc["users"].append(user)
            state.write_json(self._path("ip_forward.json"), doc)
            if read() != "1":
                write(1)

    def done_forwarding(self, state_dir, network, read, write):
        """``network`` of ``state_dir`` is gone: when no kago network of any state dir needs
        forwarding any more, ip_forward goes back to the value it had before the first one."""
        with self._lock("ip_forward"):
            doc = self._forward_doc()
            if doc is None:
                return
            doc["users"] = [u for u in doc["users"] if u != f"{state_dir}\t{network}"]
            if doc["users"]:
                state.write_json(self._path("ip_forward.json"), doc)
                return
            if read() != doc["was"]:
                write(int(doc["was"]))
            state.remove_file(self._path("ip_forward.json"))

    def forwarding_users(self):
        """["<state dir>\t<network>"] of the live networks that need ip_forward now."""
        with self._lock("ip_forward"):
            doc = self._forward_doc()
        return doc["users"] if doc else []

    def _forward_doc(self):
        doc = state.read_json(self._path("ip_forward.json"))
        if not isinstance(doc, dict) or doc.get("was") not in ("0", "1"):
            return None
        doc["users"] = [u for u in doc.get("users") or () if _network_live(u)]
        return doc


def _port_live(entry):
    """Its state dir still has the container's attachment (else a deleted root's leftover)."""
    try:
        return os.path.exists(os.path.join(entry["state"], "attachments",
                                           f"{entry['cid']}.json"))
    except (KeyError, TypeError):
        return False


def _network_live(user):
    state_dir, _, network = user.partition("\t")
    return os.path.exists(os.path.join(state_dir, "networks", f"{network}.json"))


def listeners(proto, proc_net="/proc/net"):
    """{(address, port)} of the host's sockets of ``proto`` ("tcp": listening, "udp": bound),
    both families; the address as text ("0.0.0.0"/"::" for every address). ``proc_net``:
    another network namespace's view (/proc/PID/net: that of process PID)."""
    found = set()
    for suffix, family in (("", 4), ("6", 6)):
        try:
            with open(f"{proc_net}/{proto}{suffix}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue  # no IPv6 on this host
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or (proto == "tcp" and fields[3] != TCP_LISTEN):
                continue
            address, _, port = fields[1].partition(":")
            found.add((_address(address, family), int(port, 16)))
    return found


def _address(text, family):
    """/proc/net's hex address: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(text)
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ipaddress.ip_address(raw)
    if family == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def listener_conflict(mapping, found):
    """The (address, port) of ``found`` that a published ``mapping`` would take traffic from."""
    for address, port in sorted(found):
        if port != mapping.host_port:
            continue
        if (not mapping.host_ip or address in ("0.0.0.0", "::")
                or address == mapping.host_ip):
            return address, port
    return None


def check_port_free(p):
    """Binds ``p``'s host address and port once: AddressInUse when a process has it."""
    family = socket.AF_INET6 if p.family == 6 else socket.AF_INET
    kind = socket.SOCK_STREAM if p.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((p.host_ip or "0.0.0.0", p.host_port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise AddressInUse(f"host port {p.host_port}/{p.proto}: a process on the host "
                                   "already uses it") from None
            if err.errno != errno.EADDRNOTAVAIL:
                raise
            raise NetworkError(f"port {p}: {p.host_ip} is not an address of this host") \
                from None
