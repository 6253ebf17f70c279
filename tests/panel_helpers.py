"""Shared helpers of the web panel tests: a signed-in HTTP client, CSRF tokens read off pages, and
Debian's Chromium driven by Playwright (headless, no network but loopback), with screenshots saved
under tests/artifacts/ (ignored by git) to look at."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
from daemon_helpers import Daemon
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# As the machine notes say: without the background-networking flags Chromium keeps dialling out.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-features=Translate,MediaRouter",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).parent / "artifacts"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
ADMIN, PASSWORD = "admin", "tr0ub4dor&3-horse"
UI_TIMEOUT_MS = 15_000

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def client(daemon: Daemon) -> httpx.Client:
    return httpx.Client(base_url=daemon.base_url, timeout=30, follow_redirects=False)


def set_up_admin(daemon: Daemon, name: str = ADMIN, password: str = PASSWORD) -> httpx.Client:
    """First boot through /setup: a client signed in as the new admin."""
    http = client(daemon)
    token = csrf_of(http.get("/setup").text)
    reply = http.post("/setup", data={"csrf": token, "name": name, "password": password, "confirm": password})
    assert reply.status_code == 303 and reply.headers["location"] == "/", reply.text
    return http


def sign_in(daemon: Daemon, name: str, password: str) -> httpx.Client:
    http = client(daemon)
    token = csrf_of(http.get("/login").text)
    reply = http.post("/login", data={"csrf": token, "name": name, "password": password})
    assert reply.status_code == 303, reply.text
    return http


def page_csrf(http: httpx.Client, path: str = "/") -> str:
    """The signed-in session's CSRF token, as a page carries it."""
    reply = http.get(path)
    assert reply.status_code == 200, (path, reply.status_code)
    return csrf_of(reply.text)


def do(http: httpx.Client, method: str, **fields: str) -> httpx.Response:
    """A panel form's POST /panel/do/<Method> with the session's CSRF token, answered as JSON."""
    return http.post(f"/panel/do/{method}", data={"csrf": page_csrf(http), **fields},
                     headers={"Accept": "application/json"})


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, viewport: dict[str, int] = DESKTOP) -> Page:
    context = browser.new_context(viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]
    context.set_default_timeout(UI_TIMEOUT_MS)
    return context.new_page()


def browser_sign_in(page: Page, daemon: Daemon, name: str = ADMIN, password: str = PASSWORD) -> None:
    page.goto(daemon.base_url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(daemon.base_url + "/")


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
