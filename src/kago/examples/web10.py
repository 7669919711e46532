"""10 web servers on a bridge network, one published per port 8081-8090 on 127.0.0.1.

    kago up web10.py              # -e FIRST=PORT -e COUNT=N -e IMAGE=NAME -e NETWORK=NAME
    curl http://127.0.0.1:8083/
    kago stats --no-stream
    kago down -t 1 web10.py

``kago demo`` runs this file on a scratch manager root (see kago/cli/demo.py). Each container:
busybox httpd on port 8080 of its own network namespace, published on 127.0.0.1:PORT; its own
PID namespace; its own 100-ID range at PORT * 100 (the server's worker, UID 33 inside, is
PORT * 100 + 33 on the host); a 20% CPU quota; its own writable layer over the one image.
"""

from kago.manager.define import Container, id_range, tcp

IMAGE = env.get("IMAGE", "busybox")  # noqa: F821 - `env` is given to every definition
FIRST = int(env.get("FIRST", "8081"))  # noqa: F821
COUNT = int(env.get("COUNT", "10"))  # noqa: F821
NETWORK = env.get("NETWORK", "bridge")  # noqa: F821


def command(name, port):
    # the page says where it was served from: the container's name, its address on the bridge
    # and the host UID its worker runs as
    page = (f'echo "{name}: busybox httpd at $(hostname -i):8080, published on 127.0.0.1:{port},'
            f' worker uid 33 = host uid {port * 100 + 33}" > /www/index.html')
    return ["/bin/sh", "-c",
            f"mkdir /www && {page} && exec httpd -f -p 8080 -u 33:33 -h /www"]


for port in range(FIRST, FIRST + COUNT):
    name = f"web-{port}"
    web = Container(name, image=IMAGE, network=NETWORK, ports=[f"127.0.0.1:{port}:8080"],
                    command=command(name, port), ids=id_range(port * 100, 100),
                    cgroup={"cpu.cfs_quota_us": 20000, "cpu.cfs_period_us": 100000},
                    stop_signal="SIGKILL")  # httpd as PID 1 has no SIGTERM handler
    web.ready(tcp(8080), timeout=10)
