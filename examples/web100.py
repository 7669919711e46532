"""100 web servers, one per port 10001-10100 (the 100-container scenario of README.md).

    kago import <busybox rootfs dir or tarball> busybox     # once
    kago up examples/web100.py                              # or -e COUNT=10 -e IMAGE=debian-web
    curl http://127.0.0.1:10042/
    kago down -t 1 examples/web100.py

Each container: the same image with its own writable layer; its own PID namespace; its own
100-ID range at port * 100 (the web server's worker, UID 33 inside, is port * 100 + 33 on the
host, and the image's files belong to the container's root through an idmapped layer); a 30%
CPU quota; the host's network, its port answering HTTP on 127.0.0.1.

-e IMAGE=NAME picks the image, -e FIRST=PORT and -e COUNT=N the ports, -e SERVER=busybox|apache|php
the command line (busybox httpd, Debian's apache2 from an mmdebstrap-built image, or that
image's PHP with its own web server, ``php -S``).
-e NETWORK=bridge gives each container its own network namespace on the default bridge, its
port published as the same host port, instead of the host's network; -e WARM=1 (with
-e IDS=none drops the user namespaces: kago-oci cannot checkpoint a user namespace whose
network namespace it did not make, as in both network modes here) makes them warm containers:
the first up checkpoints each once it answers, a later up restores them (docs/checkpoint.md,
"Warm starts"; bench/warm_apache).
"""

from kago.manager.define import Container, id_range, tcp

IMAGE = env.get("IMAGE", "busybox")  # noqa: F821 - `env` is given to every definition
FIRST = int(env.get("FIRST", "10001"))  # noqa: F821
COUNT = int(env.get("COUNT", "100"))  # noqa: F821
SERVER = env.get("SERVER", "busybox")  # noqa: F821
NETWORK = env.get("NETWORK", "host")  # noqa: F821
WARM = env.get("WARM", "0") == "1"  # noqa: F821
IDS = env.get("IDS", "range")  # noqa: F821 - "none": no user namespace


def command(port):
    if SERVER == "apache":
        # Debian's apache2 switches its workers to www-data (33); the port comes from the env
        # (a ServerName: else apache looks its hostname up in the DNS at start)
        script = (f"printf 'Listen {port}\\nServerName localhost\\n' "
                  "> /etc/apache2/ports.conf && exec apache2ctl -D FOREGROUND")
        return ["/bin/sh", "-c", script]
    if SERVER == "php":
        # PHP's own web server, as root (CRIU can dump it where root lacks CAP_SYS_RESOURCE:
        # Apache's www-data workers it cannot, docs/checkpoint.md)
        return ["php", "-S", f"0.0.0.0:{port}", "-t", "/var/www/html"]
    # busybox httpd binds the port as root, then runs as 33:33 (www-data on Debian)
    return ["httpd", "-f", "-p", str(port), "-u", "33:33", "-h", "/etc"]


for port in range(FIRST, FIRST + COUNT):
    web = Container(f"web-{port}", image=IMAGE, network=NETWORK, command=command(port),
                    ports=[f"{port}:{port}"] if NETWORK == "bridge" else [], warm=WARM,
                    ids=id_range(port * 100, 100) if IDS != "none" else None,
                    cgroup={"cpu.cfs_quota_us": 30000, "cpu.cfs_period_us": 100000},
                    stop_signal="SIGWINCH" if SERVER == "apache" else "SIGKILL")
    web.ready(tcp(port), timeout=10)
