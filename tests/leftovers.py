"""What a self-contained kago run (the demo, the tutorial script) may leave on the host, by
the names it gives its own objects: its directory, mounts under it, netns, links, nft table
and processes naming it."""

import os
import subprocess


def left_on_host(top, netns_prefix, link_prefix, nft_table):
    found = []
    if os.path.exists(top):
        found.append(top)
    with open("/proc/self/mountinfo") as f:
        found += [line.split()[4] for line in f if line.split()[4].startswith(top + "/")]
    if os.path.isdir("/run/netns"):
        found += [n for n in os.listdir("/run/netns") if n.startswith(netns_prefix)]
    found += [n for n in os.listdir("/sys/class/net") if n.startswith(link_prefix)]
    if subprocess.run(["nft", "list", "table", "inet", nft_table],
                      capture_output=True, check=False).returncode == 0:
        found.append(f"nft table {nft_table}")
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if top.encode() in f.read():
                    found.append(f"process {pid}")
        except OSError:
            continue
    return found
