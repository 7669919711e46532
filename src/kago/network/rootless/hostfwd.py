"""Published ports of a rootless holder: slirp4netns forwards from the host, kago's DNAT inside.

Inside a rootless holder's network namespace kago.network runs as it does for root (bridge,
veths, nft DNAT), but the host's ports are not this namespace's: slirp4netns binds
``host_addr:host_port`` on the host and forwards it to the holder's tap address
``GUEST_IP:host_port``, where kago's DNAT takes it to the container. So a published
``[HOSTIP:]HOSTPORT:CPORT`` is two things:

- its **guest mapping**, ``GUEST_IP:HOSTPORT:CPORT``: what the nft maps and the namespace's
  own port checks see (``guest_ports``). One host port number per protocol, then: slirp
  forwards every host address's port to the same guest port;
- a **forward** in slirp4netns (``publish``; ``unpublish`` removes it), whose ids are kept in
  the container's attach journal (``{"api_socket", "ids"}``, steps.py) so a later detach,
  or the rollback of a broken attach, removes exactly those.

The host side cannot be seen from inside (the host's sysctls and sockets are another
namespace's), so ``check_early`` uses what ``outside.connect`` recorded (the uid slirp4netns
binds as, the host's ``ip_unprivileged_port_start``). A host port something else holds is
met by slirp4netns's own bind, whose refusal does not say why: ``check_host`` then reads the
host's sockets as slirp4netns's process sees them (/proc/SLIRP_PID/net) to say it in one
line. (Reading them before every publish would cost the ~9 ms a busy host's socket table
takes to read, for what slirp4netns's bind answers anyway.)
"""

import errno
import ipaddress
import os

from kago.network import hostwide
from kago.network.errors import NetworkError
from kago.network.ports import PortMapping
from kago.network.rootless import api, command, hostports, outside
from kago.network.rootless.errors import ApiRefused, PortInUse, RootlessNetError

GUEST_IP = "10.0.2.100"  # slirp4netns --configure's address for tap0
DNS_IP = "10.0.2.3"      # slirp4netns's forwarder to the host's resolvers
TAP_MTU = command.MTU    # tap0's, which outside.connect gives slirp4netns


def guest_mapping(p):
    """Where slirp4netns delivers ``p`` inside the holder: GUEST_IP, the same port."""
    return PortMapping(p.host_port, p.container_port, p.proto, GUEST_IP)


def guest_ports(ports):
    return tuple(guest_mapping(p) for p in ports)


def host_addr(p):
    """slirp4netns's host_addr for ``p``: its host ip, or every address."""
    return p.host_ip or "0.0.0.0"


def _not_connected(runroot):
    return RootlessNetError(f"published ports: the rootless network of {runroot} is not "
                            "connected (no slirp4netns runs for it): connect the holder "
                            "first (kago.network.rootless.outside.connect)")


def connection(runroot):
    """The holder's slirp4netns as ``outside.connect`` recorded it (outside.Connection), or
    one line saying there is none. Whether it still runs, the first request tells
    (``publish``): a holder with a pid namespace of its own would not see its pid."""
    conn = outside.recorded(runroot)
    if conn is None or not os.path.exists(conn.api_socket):
        raise _not_connected(runroot)
    return conn


def check_early(ports, conn):
    """Pure, before anything is made: IPv4 host addresses only, no port the host refuses
    slirp4netns's user (below the host's ip_unprivileged_port_start), and no UDP port on the
    host's loopback that could never answer: slirp4netns sends a UDP reply to the client's
    own address, and a client on 127.0.0.1 is the host's loopback, which
    ``--disable-host-loopback`` keeps the namespace from (TCP is unaffected: its reply goes
    down the connection slirp4netns accepted)."""
    for p in ports:
        if p.family == 6:
            raise RootlessNetError(f"port {p}: without root, ports are published by "
                                   "slirp4netns, which binds IPv4 host addresses only")
        if (p.proto == "udp" and p.host_ip and ipaddress.ip_address(p.host_ip).is_loopback
                and not conn.host_loopback):
            raise RootlessNetError(
                f"port {p}: a UDP port on the host's loopback gets no replies without root "
                "(slirp4netns, with the host's loopback out of the namespace's reach, cannot "
                "answer a client on it): publish it on another host address")
        hostports.check_privileged(p.host_port, conn.uid, conn.unprivileged_port_start)


def check_host(ports, conn):
    """PortInUse when a socket on the host already has one of ``ports`` (read from
    slirp4netns's own network namespace, the host's)."""
    if not outside.is_ours(conn.pid, conn.api_socket):
        return                              # its pid is not ours to see: slirp's word stands
    proc_net = f"/proc/{conn.pid}/net"
    for proto in sorted({p.proto for p in ports}):
        try:
            found = hostwide.listeners(proto, proc_net)
        except OSError as e:
            raise RootlessNetError(f"cannot read the host's sockets in {proc_net}: "
                                   f"{e.strerror}") from None
        for p in ports:
            if p.proto == proto and hostwide.listener_conflict(p, found):
                raise PortInUse(p.proto, host_addr(p), p.host_port)


def publish(record, ports, conn):
    """Adds a slirp4netns forward for each of ``ports``, appending its id to
    ``record["ids"]`` (the journal's: saved with the attach's next step, and a forward added
    just before a crash is still found by its host address and port, see ``unpublish``). On
    a failure the forwards added here are removed again and the error raised (PortInUse
    when a host socket has the port)."""
    added = []
    try:
        for p in ports:
            message = api.add_hostfwd(p.proto, host_addr(p), p.host_port, p.host_port,
                                      GUEST_IP)
            try:
                reply = api.call_raw(record["api_socket"], message)
            except OSError as err:
                if _gone(err):
                    raise RootlessNetError(f"{_not_connected(os.path.dirname(conn.api_socket))}"
                                           f" ({err.strerror})") from None
                raise ApiRefused(api.describe(message), f"API socket {record['api_socket']}: "
                                 f"{err.strerror or err}") from None
            except ApiRefused:
                check_host([p], conn)      # slirp's refusal does not say why: a socket?
                raise
            if not isinstance(reply, dict) or not isinstance(reply.get("id"), int):
                raise ApiRefused(api.describe(message), f"reply without an id: {reply!r}")
            added.append(reply["id"])
            record["ids"].append(reply["id"])
    except BaseException:
        for forward_id in reversed(added):
            try:
                api.call(record["api_socket"], api.remove_hostfwd(forward_id))
            except ApiRefused:
                continue  # the journal still has it: detach tries again
            record["ids"].remove(forward_id)
        raise


def _gone(err):
    """An API socket nobody answers: slirp4netns ended, and its forwards with it."""
    return err.errno in (errno.ENOENT, errno.ECONNREFUSED)


def unpublish(record, ports):
    """Removes this container's forwards: the ids in ``record`` and any forward of one of
    its ``ports`` (host address and port) an interrupted publish did not get to journal.
    Nothing to do when slirp4netns is gone (its forwards ended with it)."""
    path = record["api_socket"]
    try:
        entries = api.call_raw(path, api.list_hostfwd())
    except OSError as err:
        if _gone(err):
            record["ids"] = []
            return
        raise NetworkError(f"slirp4netns API socket {path}: {err.strerror or err}") from None
    ours = {(p.proto, host_addr(p), p.host_port) for p in ports}
    for entry in entries.get("entries", []):
        key = (entry.get("proto"), entry.get("host_addr"), entry.get("host_port"))
        if entry.get("id") in record["ids"] or key in ours:
            api.call(path, api.remove_hostfwd(entry["id"]))
    record["ids"] = []
