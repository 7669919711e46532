"""Ask the DNS server named in /etc/resolv.conf for a name's IPv4 addresses, as a program that
uses DNS does (getent and glibc read /etc/hosts first): python3 dnsask.py NAME"""

import os
import socket
import struct
import sys

name = sys.argv[1]
with open("/etc/resolv.conf") as f:
    server = next(line.split()[1] for line in f if line.startswith("nameserver"))
ident = os.getpid() & 0xFFFF
question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(3)
    s.sendto(query, (server, 53))
    reply = s.recv(512)
_, flags, _, count, _, _ = struct.unpack("!HHHHHH", reply[:12])
at, addresses = 12 + len(question) + 4, []
for _ in range(count):  # each answer: a name pointer, type, class, ttl, length, data
    kind, _, _, length = struct.unpack("!HHIH", reply[at + 2:at + 12])
    if kind == 1:
        addresses.append(socket.inet_ntoa(reply[at + 12:at + 12 + length]))
    at += 12 + length
print(f"{name}: {' '.join(addresses) or 'no address'} (asked {server}, rcode {flags & 15})")
