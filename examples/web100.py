"""100 web servers, one per port 10001-10100 (the 100-container scenario of README.md).

    kago import <busybox rootfs dir or tarball> busybox     # once
    kago up examples/web100.py                              # or -e COUNT=10 -e IMAGE=debian-web
    curl http://127.0.0.1:10042/
    kago down -t 1 examples/web100.py

Each container: the same image with its own writable layer; its own PID namespace; its own
100-ID range at port * 100 (the web server's worker, UID 33 inside, is port * 100 + 33 on the
host, and the image's files belong to the container's root through an idmapped layer); a 30%
CPU quota; the host's network, its port answering HTTP on 127.0.0.1.

-e IMAGE=NAME picks the image, -e FIRST=PORT and -e COUNT=N the ports, -e SERVER=busybox|apache
the command line (busybox httpd, or Debian's apache2 from an mmdebstrap-built image).
"""

from kago.manager.define import Container, id_range, tcp

IMAGE = env.get("IMAGE", "busybox")  # noqa: F821 - `env` is given to every definition
FIRST = int(env.get("FIRST", "10001"))  # noqa: F821
COUNT = int(env.get("COUNT", "100"))  # noqa: F821
SERVER = env.get("SERVER", "busybox")  # noqa: F821


def command(port):
    if SERVER == "apache":
        # Debian's apache2 switches its workers to www-data (33); the port comes from the env
        # (a ServerName: else apache looks its hostname up in the DNS at start)
        script = (f"printf 'Listen {port}\\nServerName localhost\\n' "
                  "> /etc/apache2/ports.conf && exec apache2ctl -D FOREGROUND")
        return ["/bin/sh", "-c", script]
    # busybox httpd binds the port as root, then runs as 33:33 (www-data on Debian)
    return ["httpd", "-f", "-p", str(port), "-u", "33:33", "-h", "/etc"]


for port in range(FIRST, FIRST + COUNT):
    web = Container(f"web-{port}", image=IMAGE, network="host", command=command(port),
                    ids=id_range(port * 100, 100),
                    cgroup={"cpu.cfs_quota_us": 30000, "cpu.cfs_period_us": 100000},
                    stop_signal="SIGKILL" if SERVER == "busybox" else "SIGWINCH")
    web.ready(tcp(port), timeout=10)
