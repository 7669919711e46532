"""A mount destination raced by a symlink swap (the CVE-2019-19921 / CVE-2021-30465 class).

A host thread keeps swapping ``VOL/x`` between a real directory and a symlink to ``/`` while
containers bind-mount VOL at /evil and then mount a tmpfs at ``/evil/x/<name>``. A runtime that
resolved that destination on the host, even once, would create ``/<name>`` in the host's root.
kago resolves it with openat2(RESOLVE_IN_ROOT) and mounts through the resulting fd: the tmpfs
lands inside the volume or, through the symlink, at the container's own ``/<name>``, never on
the host. The thread is bounded and stopped in a finally.
"""

import os
import shutil
import threading
import uuid


def _swapper(vol, stop, swaps):
    real, link, x = os.path.join(vol, "x.d"), os.path.join(vol, "x.l"), os.path.join(vol, "x")
    os.mkdir(real)
    os.symlink("/", link)
    while not stop.is_set() and swaps[0] < 2_000_000:
        # x is alternately the real directory and a symlink to "/", each moved in atomically;
        # a container may recreate x as a directory in the gap (inside the volume: fine)
        for src in (real, link):
            try:
                os.rename(src, x)
            except OSError:
                _clear(x)
                continue
            try:
                os.rename(x, src)
            except OSError:
                pass
        swaps[0] += 1


def _clear(x):
    if os.path.islink(x):
        os.unlink(x)
    elif os.path.isdir(x):
        shutil.rmtree(x, ignore_errors=True)


def test_raced_mount_destination_never_lands_on_the_host(oci, make_bundle, tmp_path):
    name = f"kago-race-{uuid.uuid4().hex[:8]}"
    vol = str(tmp_path / "vol")
    os.mkdir(vol)
    mounts = [{"destination": "/evil", "type": "bind", "source": vol, "options": ["rbind"]},
              {"destination": f"/evil/x/{name}", "type": "tmpfs", "source": "tmpfs",
               "options": ["size=1m"]}]
    # where the tmpfs shows up depends on the swap: /evil/x/NAME, /evil/x.d/NAME (the real
    # directory renamed after the mount) or /NAME (through the symlink, inside the root)
    b = make_bundle(["sh", "-c", f"grep -c '{name} ' /proc/self/mountinfo"],
                    mutate=lambda c: c["mounts"].extend(mounts))
    stop, swaps = threading.Event(), [0]
    racer = threading.Thread(target=_swapper, args=(vol, stop, swaps))
    racer.start()
    seen = []
    try:
        for _ in range(25):
            proc = oci("run", "--bundle", b.path, oci.new_id(), timeout=30)
            seen.append((proc.returncode, proc.stdout.strip(), proc.stderr.strip()))
            assert not os.path.exists(f"/{name}"), "a raced destination was created on the host"
    finally:
        stop.set()
        racer.join(timeout=10)
        if os.path.lexists(f"/{name}"):
            shutil.rmtree(f"/{name}", ignore_errors=True)
    assert swaps[0] > 100, "the race did not really run"
    for code, out, err in seen:
        if "run failed:" in err:  # the destination raced away: a clean one-line refusal
            assert len(err.splitlines()) == 1, err
        else:
            # the container ran: its tmpfs is mounted at most once, inside its own tree. It
            # may be gone by the time grep looks (count 0): removing a mount point from the
            # host detaches the mount in other namespaces (Linux >= 3.18), and the swapper
            # removes the directories kago made for the destination
            assert out in ("0", "1"), (code, out, err)
