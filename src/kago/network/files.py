"""A container's /etc/hosts, /etc/resolv.conf and /etc/hostname, written on the host for the
manager to bind-mount into the container; and the ``ip netns exec`` /etc/netns/<name>/ files.

Files are rewritten in place (same inode) when they exist: a file bind mount keeps pointing at
the inode it was made with, so a rename would leave a running container with the stale copy
when peers come and go.
"""

import os

from kago.network import netns

HOST_RESOLV_CONF = "/etc/resolv.conf"
HOST_HOSTS = "/etc/hosts"
# Where systemd-resolved keeps the real upstream servers when /etc/resolv.conf is its stub.
RESOLVED_UPSTREAM = "/run/systemd/resolve/resolv.conf"

_LOCAL = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def hosts_text(hostname, attachment=None, peers=(), also=()):
    """/etc/hosts: localhost, the container's own names on its address, then peers.

    Without an address of its own (mode none) the hostname resolves to 127.0.1.1 as on Debian.
    ``peers`` is [(name, ip)]; the container's own entries are skipped. ``also``: its
    addresses on further networks (``Networks.connect``), with the same names.
    """
    lines = [_LOCAL]
    own = []
    if attachment is not None:
        own = [n for n in attachment.names if n]
    elif hostname:
        own = [hostname]
    if hostname and hostname not in own:
        own.insert(0, hostname)
    address = getattr(attachment, "ipv4", None)
    if own:
        lines.append(f"{address or '127.0.1.1'}\t{' '.join(own)}\n")
        if getattr(attachment, "ipv6", None):
            lines.append(f"{attachment.ipv6}\t{' '.join(own)}\n")
        lines += [f"{ip}\t{' '.join(own)}\n" for ip in also if ip]
    grouped = {}
    for name, ip in peers:
        if name not in own and name not in grouped.get(ip, ()):
            grouped.setdefault(ip, []).append(name)
    lines += [f"{ip}\t{' '.join(names)}\n" for ip, names in grouped.items()]
    return "".join(lines) + extra_hosts_text(attachment)


def extra_hosts_text(attachment):
    """--add-host's lines (``host-gateway``: the container's gateway, the host's address on
    its network; 127.0.0.1 where it has none, as with the host's network)."""
    lines = []
    for name, ip in getattr(attachment, "extra_hosts", ()) or ():
        if ip == "host-gateway":
            ip = getattr(attachment, "gateway", None) or "127.0.0.1"
        lines.append(f"{ip}\t{name}\n")
    return "".join(lines)


def with_dns(text, dns):
    """resolv.conf ``text`` with --dns (nameserver), --dns-search (search) and --dns-option
    (options) lines replacing those of their kind, when given."""
    if not dns:
        return text
    replace = {"nameserver": [f"nameserver {s}\n" for s in dns.get("servers") or ()],
               "search": [f"search {' '.join(dns['search'])}\n"] if dns.get("search") else [],
               "options": [f"options {' '.join(dns['options'])}\n"]
               if dns.get("options") else []}
    replace["domain"] = replace["search"]
    kept = []
    for line in text.splitlines(True):
        word = (line.split() or [""])[0]
        if word in replace and replace[word]:
            continue
        kept.append(line if line.endswith("\n") else line + "\n")
    for kind in ("search", "options", "nameserver"):
        kept += replace[kind]
    return "".join(kept)


def _loopback(server):
    return server.startswith("127.") or server == "::1"


def resolv_text(attachment=None, given=None, host_file=HOST_RESOLV_CONF,
                upstream_file=RESOLVED_UPSTREAM, nameservers=None):
    """``given`` verbatim; else the host's resolv.conf. A container with its own netns cannot
    reach the host's loopback resolver (systemd-resolved's 127.0.0.53, dnsmasq on 127.0.0.1),
    so those lines are dropped there, and resolved's upstream list is used when it exists.
    With ``nameservers`` (its network's resolver), the host's search and options lines and
    those servers instead of the host's."""
    if given is not None:
        return given if given.endswith("\n") or not given else given + "\n"
    text = _read(host_file)
    if nameservers:
        kept = [line for line in text.splitlines(True)
                if line.split()[:1] != ["nameserver"] and line.strip()]
        kept = [line if line.endswith("\n") else line + "\n" for line in kept]
        return "".join(kept + [f"nameserver {s}\n" for s in nameservers])
    if attachment is None or attachment.mode == "host":
        return text
    if _nameservers(text) and all(_loopback(s) for s in _nameservers(text)):
        upstream = _read(upstream_file)
        if _nameservers(upstream):
            text = upstream
    return "".join(line for line in text.splitlines(True) if not _loopback_server(line))


def _loopback_server(line):
    words = line.split()
    return len(words) > 1 and words[0] == "nameserver" and _loopback(words[1])


def _nameservers(text):
    return [line.split()[1] for line in text.splitlines()
            if line.split()[:1] == ["nameserver"] and len(line.split()) > 1]


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def write_in_place(path, text):
    """Create, or truncate and rewrite the same inode (bind mounts of it stay live)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_etc_files(dirpath, hostname, attachment=None, peers=(), resolv_conf=None,
                    nameservers=None, also=()):
    """Writes hosts, resolv.conf and hostname into ``dirpath`` (created if needed).

    Host mode gets the host's /etc/hosts. Returns {"/etc/hosts": path, ...}: destination in
    the container -> file to bind-mount there.
    """
    os.makedirs(dirpath, mode=0o755, exist_ok=True)
    if attachment is not None and attachment.mode == "host":
        hosts = (_read(HOST_HOSTS) or _LOCAL) + extra_hosts_text(attachment)
    else:
        hosts = hosts_text(hostname, attachment, peers, also)
    dns = getattr(attachment, "dns", None)
    if dns and dns.get("servers"):
        nameservers = None  # --dns: those servers, not the network's resolver
    contents = {
        "/etc/hosts": hosts,
        "/etc/resolv.conf": with_dns(resolv_text(attachment, resolv_conf,
                                                 nameservers=nameservers), dns),
        "/etc/hostname": f"{hostname}\n" if hostname else "",
    }
    written = {}
    for dest, text in contents.items():
        path = os.path.join(dirpath, os.path.basename(dest))
        write_in_place(path, text)
        written[dest] = path
    return written


def netns_etc_mounts(netns_name, etc_dir=netns.ETC_DIR):
    """[(host file, "/etc/<file>")] for everything in /etc/netns/<netns_name>/, the binds
    ``ip netns exec`` makes, so a container sees the same per-netns configuration."""
    return netns.etc_files(netns_name, etc_dir)
