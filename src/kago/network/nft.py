"""nftables rules for published ports and masquerade, all in kago's own ``inet`` table.

The rules never change once the table exists; what changes is data in its sets and maps, so
attaching a container is "add element", detaching is "delete element", nothing is ever found
by rule handle, and removing kago is one ``delete table``. Driven through ``nft -f -`` (text on
stdin, one atomic transaction per call): pyroute2's nftables support does not cover maps with
concatenated keys, and this is what the nft tool itself and most container tools do.

Sets and maps (``T`` is the table, ``inet kago`` by default)::

    bridges      ifname                            kago bridges (for oifname/iifname matches)
    subnets4/6   interval                          subnets of every kago network
    outbound4/6  interval                          subnets masqueraded when leaving the host
    dnat4_any    proto . port : ip . port          published on every local address
    dnat4_ip     hostip . proto . port : ip . port published on one host address
    dnat6_any, dnat6_ip                            the same for IPv6

Why each rule exists:
- prerouting DNAT: traffic from outside and from containers (to the gateway or any host IP).
- output DNAT: the host's own connections, 127.0.0.1 included. After that DNAT a packet from
  127.0.0.1 must leave on the bridge: the kernel drops such "martian" packets unless the
  bridge has ``route_localnet=1`` (set per bridge, see links.py), and the container could not
  answer 127.0.0.1, so postrouting masquerades 127.0.0.0/8 leaving on a bridge.
- hairpin: a container reaching a published port of a container on the same bridge gets its
  reply straight over the bridge from an address it never talked to; masquerading DNAT'd
  traffic from kago subnets makes the reply come back through the host.
- guard: ``route_localnet`` would also let a container send to the host's 127.0.0.1 services
  through the bridge (CVE-2020-8558's shape); packets for 127.0.0.0/8 arriving on a kago
  bridge are dropped before routing.
"""

import os
import re
import shutil
import subprocess

from kago.network.errors import NetworkError

TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
NFT = "nft"


def _nft():
    """nft lives in /usr/sbin, which an OCI hook's empty environment does not have in PATH."""
    path = os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin"
    return shutil.which(NFT, path=path) or NFT

SETS = (
    ("bridges", "type ifname;"),
    ("subnets4", "type ipv4_addr; flags interval;"),
    ("subnets6", "type ipv6_addr; flags interval;"),
    ("outbound4", "type ipv4_addr; flags interval;"),
    ("outbound6", "type ipv6_addr; flags interval;"),
    ("dnat4_any", "type inet_proto . inet_service : ipv4_addr . inet_service;"),
    ("dnat4_ip", "type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service;"),
    ("dnat6_any", "type inet_proto . inet_service : ipv6_addr . inet_service;"),
    ("dnat6_ip", "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service;"),
)

CHAINS = (
    ("prerouting", "type nat hook prerouting priority dstnat; policy accept;"),
    ("output", "type nat hook output priority -100; policy accept;"),
    ("postrouting", "type nat hook postrouting priority srcnat; policy accept;"),
    ("guard", "type filter hook prerouting priority raw; policy accept;"),
)

_DNAT = (
    "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat4_ip",
    "fib daddr type local dnat ip to meta l4proto . th dport map @dnat4_any",
    "fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @dnat6_ip",
    "fib daddr type local dnat ip6 to meta l4proto . th dport map @dnat6_any",
)

RULES = {
    "prerouting": _DNAT,
    "output": _DNAT,
    "postrouting": (
        "oifname @bridges ip saddr 127.0.0.0/8 masquerade",
        "oifname @bridges ct status dnat ip saddr @subnets4 masquerade",
        "oifname @bridges ct status dnat ip6 saddr @subnets6 masquerade",
        "oifname != @bridges ip saddr @outbound4 masquerade",
        "oifname != @bridges ip6 saddr @outbound6 masquerade",
    ),
    "guard": ("iifname @bridges ip daddr 127.0.0.0/8 drop",),
}


def check_table(name):
    if not isinstance(name, str) or not TABLE_NAME.match(name):
        raise NetworkError(f"nft table {name!r}: use a letter then letters, digits or '_' "
                           "(at most 32)")
    return name


def base_ruleset(table):
    """Idempotent: declares the table, sets and chains, and replaces the chains' rules in the
    same transaction (flush + add), so running it twice never duplicates a rule and packets
    never see a chain half filled. Existing set and map elements are kept."""
    t = f"inet {table}"
    lines = [f"add table {t}"]
    lines += [f"add {'map' if ':' in spec else 'set'} {t} {name} {{ {spec} }}"
              for name, spec in SETS]
    lines += [f"add chain {t} {name} {{ {spec} }}" for name, spec in CHAINS]
    for chain, rules in RULES.items():
        lines.append(f"flush chain {t} {chain}")
        lines += [f"add rule {t} {chain} {rule}" for rule in rules]
    return "\n".join(lines) + "\n"


def network_elements(record):
    """(set, element) pairs that make a network's bridge and subnets known to the rules."""
    elements = [("bridges", f'"{record["bridge"]}"'), ("subnets4", record["subnet"])]
    if record.get("ipv6_subnet"):
        elements.append(("subnets6", record["ipv6_subnet"]))
    if record.get("outbound", True):
        elements.append(("outbound4", record["subnet"]))
        if record.get("ipv6_subnet"):
            elements.append(("outbound6", record["ipv6_subnet"]))
    return elements


def port_elements(ports, ipv4, ipv6=None):
    """(map, element) pairs publishing ``ports`` to a container at ``ipv4`` (and ``ipv6``).

    A port on every address goes to both families when the container has both; a port on one
    host address only to that family, which the container must have.
    """
    elements = []
    for p in ports:
        key = f"{p.proto} . {p.host_port}"
        targets = {4: ipv4, 6: ipv6}
        families = (p.family,) if p.family else (4, 6)
        for family in families:
            target = targets[family]
            if target is None:
                if p.family:
                    raise NetworkError(f"port {p}: the container has no IPv{family} address "
                                       "(give the network an ipv6 subnet)")
                continue
            kind = "ip" if p.host_ip else "any"
            prefix = f"{p.host_ip} . " if p.host_ip else ""
            elements.append((f"dnat{family}_{kind}",
                             f"{prefix}{key} : {target} . {p.container_port}"))
    return elements


def add_elements(table, elements):
    return "".join(f"add element inet {table} {s} {{ {e} }}\n" for s, e in elements)


def create_elements(table, elements):
    """Like add, but an element already present (a port somebody else holds) is an error."""
    return "".join(f"create element inet {table} {s} {{ {e} }}\n" for s, e in elements)


def delete_elements(table, elements):
    """Add-then-delete: deleting an absent element fails the whole transaction in nft 1.0.6
    (no 'destroy' before 1.0.8), adding it first makes the delete idempotent."""
    return "".join(f"add element inet {table} {s} {{ {e} }}\n"
                   f"delete element inet {table} {s} {{ {e} }}\n" for s, e in elements)


def delete_table(table):
    """Removes the table and everything in it; fine when it is already gone."""
    return f"add table inet {table}\ndelete table inet {table}\n"


def apply(script):
    """Runs ``script`` as one nft transaction: all of it happens, or none of it."""
    if not script:
        return
    try:
        proc = subprocess.run([_nft(), "-f", "-"], input=script, capture_output=True, text=True,
                              timeout=30, check=False)
    except FileNotFoundError:
        raise NetworkError("nft not found: apt-get install nftables") from None
    if proc.returncode != 0:
        raise NetworkError(f"nft: {_first_error(proc.stderr)}")


def _first_error(stderr):
    """nft prints 'file:line:col: Error: why' then the offending line; keep both, one line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "Error:" in line:
            what = line.split("Error:", 1)[1].strip()
            failed = lines[i + 1] if i + 1 < len(lines) else ""
            return f"{what.lower()}: {failed}" if failed else what.lower()
    return lines[0] if lines else "failed"


def table_exists(table):
    proc = subprocess.run([_nft(), "list", "table", "inet", table], capture_output=True,
                          timeout=30, check=False)
    return proc.returncode == 0
