"""The web console's pages in headless Chromium (Debian's, driven by Playwright) against a real
``kago console`` on a root of its own, with real busybox containers: log in with the token,
see a container appear in the list, its page's memory graph follow an allocation, its PSI
under a CPU hog, a shell in its terminal, and stop it from the page.

The page exposes what it plots (``window.kago.series``, the memory graph's ``data-last``)
and the terminal's text (``window.kago.terminalText()``): the tests read those, not pixels.
Skipped with one reason where /usr/bin/chromium is absent (./dev setup installs it).
"""

import os
import uuid

import pytest

from conftest import needs_root
from kago.testing import console_browser as cb

pytestmark = [pytest.mark.root, needs_root, pytest.mark.skipif(cb.missing() is not None,
                                             reason=cb.missing() or "")]
MiB = 1 << 20


class Site:
    """A KagoEnv, ``kago console`` on it, one browser page; the test container's name."""

    def __init__(self, env, console, page):
        self.env, self.console, self.page = env, console, page
        self.base = console.base
        self.name = f"kmt-web-{uuid.uuid4().hex[:6]}"
        self.started = False
        self.errors = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def start_container(self):
        """A container with a memory limit and half a CPU, pinned to one CPU (two hogs then
        wait for it); its shell ends on SIGTERM within a second."""
        if not self.started:
            self.env.kago("run", "-d", "--name", self.name, "-m", "256m", "--cpus", "0.5",
                          "--cpuset-cpus", "0", "busybox", "sh", "-c",
                          'trap "exit 0" TERM; echo ready; i=0; '
                          'while :; do i=$((i+1)); echo "tick $i"; sleep 1; done',
                          check=True)
            self.started = True

    def logged_in(self):
        """Log in unless the browser holds the console's cookie (a test run alone)."""
        if not self.page.context.cookies(self.base):
            cb.login(self.page, self.base, self.console.token)

    def open_container_page(self):
        self.logged_in()
        self.start_container()
        if self.page.url != f"{self.base}/c/{self.name}":
            self.page.goto(f"{self.base}/c/{self.name}")
        self.page.wait_for_function("window.kago && window.kago.series && "
                                    "window.kago.series.t.length >= 1", timeout=15000)


@pytest.fixture(scope="module")
def site(workdir, rootfs_cache):
    from kago.manager.testing import KagoEnv
    env = KagoEnv(workdir, rootfs_cache=rootfs_cache)
    console = None
    try:
        console = cb.ConsoleProcess(env)
        with cb.browser() as ctx:
            page = ctx.new_page()
            page.set_default_timeout(15000)
            yield Site(env, console, page)
    finally:
        if console is not None:
            console.stop()
        left = env.destroy()
        assert not left, f"left on the host: {left}"


def test_login_with_the_token(site):
    page = site.page
    page.goto(site.base + "/login")
    page.fill("#token", "not-the-token")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "not the console's" in page.text_content("#error")
    assert page.url.startswith(site.base + "/login")
    cb.login(page, site.base, site.console.token)
    page.wait_for_selector("#nav .who:text('logged in')")
    cookies = page.context.cookies(site.base)
    assert cookies and all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)


def test_list_shows_a_new_container_live(site):
    page = site.page
    if page.url != site.base + "/":
        page.goto(site.base + "/")
    page.wait_for_function("window.kago && window.kago.ticks >= 1")
    assert page.locator(f'tr[data-name="{site.name}"]').count() == 0
    site.start_container()
    # no reload: the row comes from /api/stream's ticks
    row = page.wait_for_selector(f'tr[data-name="{site.name}"][data-state="running"]')
    assert "busybox" in row.inner_text()
    page.wait_for_function(f"""() => {{
        const tr = document.querySelector('tr[data-name="{site.name}"]');
        return tr && tr.querySelector('.c-mem').textContent.includes('/ 256 MiB');
    }}""")
    page.fill("#filter", "no-such-container")
    assert page.locator(f'tr[data-name="{site.name}"]').is_hidden()
    page.fill("#filter", site.name[:10])
    assert page.locator(f'tr[data-name="{site.name}"]').is_visible()
    page.click(f'tr[data-name="{site.name}"] .c-name a')
    page.wait_for_url(f"{site.base}/c/{site.name}")


def test_memory_graph_follows_an_allocation(site):
    site.open_container_page()
    page = site.page
    before = page.evaluate("Math.max(...window.kago.series.mem_bytes.filter(v => v != null))")
    assert page.evaluate("window.kago.series.mem_limit") == 256 * MiB
    # 40 MiB of tmpfs pages in the container's /dev/shm: charged to its memory cgroup
    site.env.kago("exec", site.name, "sh", "-c", "head -c 40m /dev/zero > /dev/shm/fill",
                  check=True)
    page.wait_for_function(f"Number(document.getElementById('g-mem').dataset.last) >= "
                           f"{before + 35 * MiB}", timeout=15000)
    plotted = page.evaluate("window.kago.charts.mem.data[1].filter(v => v != null)")
    assert max(plotted) >= before + 35 * MiB and min(plotted) < before + 35 * MiB, plotted


def test_logs_follow_and_inspect_reads_as_a_table(site):
    site.open_container_page()
    page = site.page
    page.wait_for_selector("#logs .line:text('ready')")
    seen = page.evaluate("document.querySelectorAll('#logs .line').length")
    page.wait_for_function(f"document.querySelectorAll('#logs .line').length > {seen}")  # followed
    assert page.locator("#logs .line:text-matches('^tick [0-9]+$')").count() >= 1
    page.click("button[data-tab=inspect]")
    name_row = page.wait_for_selector("#inspect table.kv tr:has(> th:text-is('Name')) > td")
    assert name_row.inner_text().strip() == "/" + site.name
    # a nested section (State) is a <details>: open at first, closed by a click on its summary
    state = page.locator("#inspect tr:has(> th:text-is('State')) details").first
    assert state.evaluate("d => d.open")
    state.locator("summary").first.click()
    assert not state.evaluate("d => d.open")
    assert page.locator("#inspect tr:has(> th:text-is('Running')) .bool").first.is_hidden()
    page.click("button[data-tab=logs]")


def test_psi_shows_cpu_pressure_under_a_hog(site):
    site.open_container_page()
    page = site.page
    page.wait_for_function("window.kago.series.cpu_pct.some(v => v != null)", timeout=15000)
    if page.evaluate("window.kago.series.psi_cpu_some10.every(v => v == null)"):
        pytest.skip("this host gives no per-container PSI: no cpu.pressure in the container's "
                    "cgroup2 directory (a kernel without PSI, psi=0, or no cgroup2 tree)")
    for _ in range(2):  # two busy loops for one pinned CPU, under a quota of half a CPU
        site.env.kago("exec", "-d", site.name, "sh", "-c", "while :; do :; done", check=True)
    # the hogs' own: the container's CPU at its quota, and tasks waiting for it (avg10 > 1 %)
    page.wait_for_function("window.kago.series.cpu_pct.some(v => v > 30) && "
                           "window.kago.series.psi_cpu_some10.some(v => v > 1)", timeout=25000)
    page.wait_for_selector("#g-psi .now:not(:text('cpu 0.00'))")


def test_terminal_runs_a_shell(site):
    site.open_container_page()
    page = site.page
    page.click("button[data-tab=terminal]")
    note = " ".join(page.text_content("#pane-terminal .note").split())
    assert "same privilege as kago exec" in note
    page.wait_for_selector("#term-state:text('connected')")
    page.wait_for_function("/[#$] *$/m.test(window.kago.terminalText())")  # the prompt
    page.click("#terminal")
    page.keyboard.type("echo hi\n")
    page.wait_for_function("window.kago.terminalText().split('\\n').some(l => l.trim() === 'hi')")
    # the fit addon's size is the shell's, and follows the window
    for width in (1400, 900):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_function(f"document.getElementById('terminal').clientWidth < {width}")
        page.wait_for_timeout(300)  # the ResizeObserver's fit, then the resize message
        rows, cols = page.evaluate("[window.kago.term.rows, window.kago.term.cols]")
        page.keyboard.type("stty size\n")
        page.wait_for_function(f"window.kago.terminalText().split('\\n')"
                               f".some(l => l.trim() === '{rows} {cols}')")
    assert cols < 120, cols  # 900 px wide: fewer columns than at 1400


def test_images_and_networks_pages(site):
    page = site.page
    site.start_container()
    page.goto(site.base + "/images")
    page.wait_for_selector("table.grid tbody tr:has-text('busybox')")
    page.goto(site.base + "/networks")
    network = site.env.settings["network"]["default_network"]
    row = page.wait_for_selector(f"table.grid tbody tr:has-text('{network}')")
    assert site.name in row.inner_text()


def test_groups_page_takes_a_group_down(site, tmp_path):
    definition = tmp_path / "pair.py"
    definition.write_text(
        "from kago.manager.define import Container\n"
        "for i in (1, 2):\n"
        "    Container(f'kmt-pair-{i}', image='busybox', network='none',\n"
        "              command=['sleep', '1d'], stop_signal='SIGKILL')\n")
    site.env.kago("up", definition, check=True, timeout=60)
    site.logged_in()
    page = site.page
    page.goto(site.base + "/groups")
    card = page.wait_for_selector("article[data-group=pair]")
    assert "2 / 2 running" in card.inner_text()
    assert page.locator("article[data-group=pair] a.chip[data-state=running]").count() == 2
    page.click("article[data-group=pair] button[data-verb=down]")
    page.click("dialog[open] button[data-confirm=yes]")
    page.wait_for_selector("article[data-group=pair]", state="detached", timeout=30000)
    names = [r["name"] for r in site.env.manager().records.all()]
    assert "kmt-pair-1" not in names and "kmt-pair-2" not in names


def test_stop_from_the_page(site):
    site.open_container_page()
    page = site.page
    page.click("#actions button[data-verb=stop]")
    dialog = page.wait_for_selector("dialog[open]")
    assert site.name in dialog.inner_text()
    page.click("dialog[open] button[data-confirm=yes]")
    page.wait_for_selector("#state[data-state=exited]", timeout=20000)
    assert page.locator("#actions button[data-verb=start]").is_enabled()
    page.goto(site.base + "/")
    page.wait_for_selector(f'tr[data-name="{site.name}"][data-state="exited"]')
    assert site.env.inspect(site.name)["State"]["Running"] is False


def test_a_401_sends_the_browser_to_login(site):
    page = site.page
    page.goto(site.base + "/")
    page.wait_for_selector(f'tr[data-name="{site.name}"][data-state="exited"]')
    page.context.clear_cookies()  # the session's cookie gone: reads go on (loopback), acts not
    page.click(f'tr[data-name="{site.name}"] button[data-verb=start]')
    page.click("dialog[open] button[data-confirm=yes]")
    page.wait_for_url(f"{site.base}/login?next=%2F")
    assert site.env.inspect(site.name)["State"]["Running"] is False
    assert not site.errors, site.errors
