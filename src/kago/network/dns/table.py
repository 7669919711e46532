"""The resolver's name table: which names a network's containers answer to, and where other
queries go. kago writes it (``build`` + ``write``, under the network's lease lock) on every
attach and detach; the resolver reads it (``load``) at start, on SIGHUP and whenever the
file changed. Plain JSON, so the resolver imports nothing of kago's but this module::

    {"network": "kago", "subnet": "10.89.0.0/24", "listen": ["10.89.0.1", 53],
     "upstream": [["127.0.0.1", 5353]] | null,      # null: the host's /etc/resolv.conf
     "never": [["10.89.0.1", 53], ...],              # kago's own resolvers: no loops
     "names": {"db": {"4": ["10.89.0.2"], "6": []}, ...},
     "ptr": {"10.89.0.2": "db"},
     "views": {"10.89.0.5": {"web": {"4": ["10.90.0.3"], "6": []}}}}   # optional

``views``: per client address, the names of the other networks its container is connected
to (``Networks.connect``), answered to that client only, after the network's own names.

Names are the container's hostname, aliases (the manager adds its name), its full ID and
the first 12 characters of it, lower-cased (DNS names are case-insensitive); a name more than
one container has answers with all their addresses, as docker does for a shared alias.
"""

import json
import os

RESOLV_CONF = "/etc/resolv.conf"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def valid_name(name):
    return (bool(name) and len(name) <= 253 and set(name) <= _NAME_CHARS
            and all(0 < len(label) <= 63 for label in name.split(".")))


def member_names(att):
    """What a container (an Attachment or its dict) answers to, lower-cased, valid ones only."""
    get = att.get if isinstance(att, dict) else lambda k: getattr(att, k)
    cid = get("owner") or get("cid") or ""   # a further network's key is <owner>+<net>
    found = []
    for name in (get("hostname"), *(get("aliases") or ()), cid[:12], cid):
        name = (name or "").lower().rstrip(".")
        if valid_name(name) and name not in found:
            found.append(name)
    return found


def build(record, members, upstream=None, never=(), views=None):
    """The table of network ``record`` (its dict) with attachments ``members``. ``views``:
    {client address: [attachments]}: names a client also gets (those of the other networks
    its container is on, ``Networks.connect``), after the network's own."""
    names, ptr = _names(members)
    table = {"network": record["name"], "subnet": record["subnet"],
             "listen": [record["gateway"], 53],
             "upstream": None if upstream is None else [list(u) for u in upstream],
             "never": [list(n) for n in never], "names": names, "ptr": ptr}
    if views:
        table["views"] = {client: _names(atts)[0] for client, atts in views.items()}
    return table


def _names(members):
    names, ptr = {}, {}
    for att in members:
        get = att.get if isinstance(att, dict) else lambda k, a=att: getattr(a, k)
        v4, v6 = get("ipv4"), get("ipv6")
        own = member_names(att)
        for name in own:
            entry = names.setdefault(name, {"4": [], "6": []})
            if v4 and v4 not in entry["4"]:
                entry["4"].append(v4)
            if v6 and v6 not in entry["6"]:
                entry["6"].append(v6)
        if own and v4:
            ptr.setdefault(v4, own[0])
    return names, ptr


def lookup(table, name, family, client=None):
    """Addresses of ``name`` (family "4" or "6"): a list (maybe empty: the name exists without
    that family), or None when the network has no such name (nor ``client``'s view)."""
    key = name.lower().rstrip(".")
    entry = table["names"].get(key)
    if entry is None and client is not None:
        entry = (table.get("views") or {}).get(client, {}).get(key)
    if entry is None:
        return None
    return entry.get(family, [])


def parse_server(text):
    """"1.2.3.4" | "1.2.3.4:5353" | "::1" | "[::1]:5353" -> (address, port)."""
    text = str(text).strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "53"
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"dns upstream {text!r}: use ADDRESS or ADDRESS:PORT")
    return host, int(port)


def resolv_conf_servers(path=RESOLV_CONF):
    """[(address, 53)] of the nameserver lines of a resolv.conf ([] when it has none)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        words = line.split()
        if len(words) > 1 and words[0] == "nameserver":
            host = words[1].split("%", 1)[0]
            if (host, 53) not in found:
                found.append((host, 53))
    return found


def upstreams(table, resolv_conf=RESOLV_CONF):
    """Where unknown names go: the table's list, else the host's; never to a kago resolver
    (ourselves, or another network's, which would forward back)."""
    given = table.get("upstream")
    servers = ([tuple(u) for u in given] if given is not None
               else resolv_conf_servers(resolv_conf))
    never = {tuple(n) for n in table.get("never", ())} | {tuple(table["listen"])}
    return [s for s in servers if (s[0], int(s[1])) not in never]


def write(path, table):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write("\n")
    os.rename(tmp, path)


def load(path):
    with open(path) as f:
        return json.load(f)
