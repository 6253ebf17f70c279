"""The web panel in a real browser: Debian's Chromium driven by Playwright against a real daemon.

First boot, sign-in and lockout; a scenario uploaded, broken, fixed and run with its log followed live;
a sipp call seen live on the dashboard and in the history, its recording played in the page (and its
sound measured), the history exported as CSV; a backup downloaded and restored into a fresh box.
Screenshots of every page, on a desktop and a phone-sized screen, go to tests/artifacts/.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import miniaudio
import numpy as np
import pytest
from api_helpers import Api, api_daemon, unique
from daemon_helpers import Daemon, running_daemon
from panel_helpers import (
    ADMIN,
    PASSWORD,
    PHONE,
    browser_sign_in,
    chromium,
    new_page,
    screenshot,
    set_up_admin,
)
from playwright.sync_api import Browser, FilePayload, Page, expect
from sip_helpers import sipp_caller, sipp_got_bye, with_local_trunk

CALLER, CALLER_NAME = "4930123456", "Front desk"
PAGES = ("/", "/applications", "/scenarios", "/history", "/lines", "/routes", "/storage", "/logs", "/settings")
LIVE_MS = 10_000  # a live page shows a change within this (the server pushes every second)

# Answers, records the call while speaking, hangs up after HOLD_MS: sipp waits for that BYE.
RECORDED_CALL = """
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  const call = e.call;
  call.addEventListener(CallEvents.Connected, () => {
    call.record();
    call.say("This call is recorded. One two three four five six seven eight nine ten.");
    setTimeout(() => call.hangup(), HOLD_MS);
  });
  call.addEventListener(CallEvents.Disconnected, () => setTimeout(() => VoxEngine.terminate(), 500));
  call.answer();
});
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("panel")
    with_local_trunk(root / "data")
    with api_daemon(root) as d:
        set_up_admin(d).close()
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser, daemon: Daemon) -> Iterator[Page]:
    p = new_page(browser)
    browser_sign_in(p, daemon)
    yield p
    p.context.close()


def flash(page: Page) -> str:
    return page.locator(".flash").first.inner_text()


def test_first_boot_sign_in_and_lockout(browser: Browser, tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data") as box:
        page = new_page(browser)
        page.goto(box.base_url + "/history")
        assert page.url == box.base_url + "/setup"  # nothing before the admin exists
        screenshot(page, "first-boot")
        page.fill("input[name=name]", ADMIN)
        page.fill("input[name=password]", "short")
        page.fill("input[name=confirm]", "short")
        page.evaluate("document.querySelectorAll('input').forEach(i => i.removeAttribute('minlength'))")
        page.click("button[type=submit]")
        expect(page.locator(".flash.error")).to_contain_text("at least 10 characters")
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(box.base_url + "/")
        expect(page.locator("h1")).to_have_text("Dashboard")
        page.click("text=Sign out")
        page.wait_for_url(re.compile(r".*/login$"))
        screenshot(page, "login")
        page.goto(box.base_url + "/setup")
        assert page.url.startswith(box.base_url + "/login")  # set-up happens once

        for _ in range(5):
            page.fill("input[name=name]", ADMIN)
            page.fill("input[name=password]", "not the password")
            page.click("button[type=submit]")
        expect(page.locator(".flash.error")).to_contain_text("try again in 10 minutes")
        page.fill("input[name=name]", ADMIN)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")  # the right password changes nothing while locked out
        expect(page.locator(".flash.error")).to_contain_text("try again in 10 minutes")
        assert page.url.startswith(box.base_url + "/login")
        screenshot(page, "lockout")
        page.context.close()


def test_scenario_uploaded_edited_and_run_with_its_log(page: Page, daemon: Daemon) -> None:
    app, scenario, rule = unique("panel-app"), unique("greeter"), unique("run")
    page.click("nav >> text=Applications")
    page.fill("input[name=application_name]", app)
    page.click("text=Add application")
    expect(page.locator("h1")).to_have_text(app)
    app_url = page.url

    page.click("nav >> text=Scenarios")
    page.fill("input[name=scenario_name]", scenario)
    upload: FilePayload = {"name": f"{scenario}.js", "mimeType": "text/javascript",
                           "buffer": b'Logger.write("first version");\n'}
    page.set_input_files("input[type=file][name=scenario_script]", files=[upload])
    page.click("text=Create scenario")
    expect(page.locator("h1")).to_have_text(scenario)
    assert page.locator("textarea[name=scenario_script]").input_value() == 'Logger.write("first version");\n'
    first_hash = page.locator("#version").inner_text()

    broken = ('VoxEngine.addEventListener(AppEvents.Started, () => {\n'
              '  Logger.write("hello from the panel " + VoxEngine.customData();\n})\n')
    page.fill("textarea[name=scenario_script]", broken)
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.error")).to_contain_text(f"{scenario}.js:2")
    assert page.locator("textarea[name=scenario_script]").input_value() == broken  # nothing typed is lost
    assert page.locator("#version").inner_text() == first_hash
    screenshot(page, "scenario-syntax-error")

    fixed = ('VoxEngine.addEventListener(AppEvents.Started, () => {\n'
             '  Logger.write("hello from the panel " + VoxEngine.customData());\n'
             '  setTimeout(() => VoxEngine.terminate(), 1500);\n});\n')
    page.fill("textarea[name=scenario_script]", fixed)
    page.keyboard.press("Control+s")  # the editor's shortcut saves
    expect(page.locator(".flash.ok")).to_contain_text("Saved")
    assert page.locator("#version").inner_text() != first_hash
    assert page.locator("textarea[name=scenario_script]").input_value() == fixed
    screenshot(page, "scenario-editor")

    page.goto(app_url)
    page.fill("input[name=rule_name]", rule)
    page.fill("input[name=rule_pattern]", "panel-run")
    page.select_option("select[name=scenario_id]", label=scenario)
    page.click("text=Add rule")
    expect(page.locator(".sortable li")).to_contain_text(rule)
    screenshot(page, "application")
    page.select_option("select[name=rule_id]", label=rule)
    page.fill("textarea[name=script_custom_data]", "custom-42")
    page.click("text=Start session")
    page.wait_for_url(re.compile(r".*/history/\d+$"))
    expect(page.locator("#session-log")).to_contain_text("hello from the panel custom-42", timeout=LIVE_MS)
    expect(page.locator("#session-state")).to_have_text("ended", timeout=LIVE_MS)  # the stream ends with it
    screenshot(page, "session-log")


def test_rules_reorder_by_dragging(page: Page, api: Api) -> None:
    app_id, _ = api.application()
    _, scenario = api.scenario('Logger.write("x");')
    first, second = (api.rule(app_id, pattern=unique("p"), scenario_name=scenario)[1] for _ in range(2))
    page.goto(f"{api.daemon.base_url}/applications/{app_id}")
    items = page.locator(".sortable li")
    expect(items.nth(0)).to_contain_text(first)
    items.nth(1).drag_to(items.nth(0), target_position={"x": 20, "y": 5})
    expect(page.locator("#order-status")).to_have_text("Order saved.")
    rules = api.ok("GetRules", application_id=app_id)["result"]
    assert [r["rule_name"] for r in rules] == [second, first]


def test_live_call_history_recording_and_csv(browser: Browser, page: Page, daemon: Daemon, api: Api,
                                             tmp_path: Path) -> None:
    number = str(random.randrange(10**8, 10**9))
    app_id, app_name = api.application("calls")
    _, scenario = api.scenario(RECORDED_CALL.replace("HOLD_MS", "6000"))
    api.rule(app_id, pattern=number, scenario_name=scenario)
    page.goto(daemon.base_url + "/")
    history = new_page(browser)
    browser_sign_in(history, daemon)
    history.goto(daemon.base_url + "/history")
    expect(history.locator("#sessions")).not_to_contain_text(number)

    with sipp_caller(tmp_path, daemon.sip_port, number, CALLER, CALLER_NAME) as sipp:
        # Neither page is reloaded: the call arrives over their event streams.
        call_row = page.locator("#calls tr[data-call]")
        expect(call_row).to_contain_text(CALLER, timeout=LIVE_MS)
        expect(call_row).to_contain_text(CALLER_NAME)
        expect(call_row).to_contain_text("connected")
        expect(page.locator("#stats")).to_contain_text("1")
        screenshot(page, "dashboard-live-call")
        row = history.locator("#sessions tr", has_text=number)
        expect(row).to_contain_text("in progress", timeout=LIVE_MS)
        expect(row).to_contain_text(app_name)
        screenshot(history, "history-live-call")
        sipp_got_bye(sipp, timeout=30)
    expect(page.locator("#calls")).to_contain_text("No calls right now", timeout=LIVE_MS)
    expect(row).to_contain_text("answered", timeout=LIVE_MS)
    history.context.close()

    page.goto(daemon.base_url + "/history")
    page.locator("#sessions tr", has_text=number).locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("Session")
    audio = page.locator("audio")
    expect(audio).to_have_count(1, timeout=LIVE_MS)
    played = page.evaluate("""async () => {
        const a = document.querySelector('audio');
        a.preload = 'auto';
        await a.play();
        await new Promise(r => setTimeout(r, 1500));
        return {time: a.currentTime, duration: a.duration, error: a.error && a.error.code, paused: a.paused};
    }""")
    assert played["error"] is None and played["time"] > 0.5 and played["duration"] > 3, played
    screenshot(page, "session-recording")
    # What the page plays is the call: the recording carries the box's speech.
    url = audio.get_attribute("src")
    assert url
    body = page.request.get(url).body()
    decoded = miniaudio.decode(body, nchannels=1, sample_rate=8000)
    samples = np.frombuffer(decoded.samples, dtype=np.int16).astype(np.float64)
    rms_db = 20 * np.log10(np.sqrt(np.mean(samples**2)) / 32768 + 1e-12)
    assert decoded.duration > 3 and rms_db > -40, (decoded.duration, rms_db)
    assert page.locator(".trace details").count() >= 5  # INVITE, 100, 180/200, ACK, BYE...

    page.goto(daemon.base_url + f"/history?number={CALLER}")
    with page.expect_download() as download:
        page.click("text=Export CSV")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    ours = [r for r in rows if r["callee"] == number]
    assert len(ours) == 1, rows
    assert ours[0]["caller"] == CALLER and ours[0]["direction"] == "in" and ours[0]["result"] == "answered"
    assert ours[0]["application"] == app_name and ours[0]["recordings"].startswith("http")


def test_service_account_and_backup_restored_into_a_fresh_box(browser: Browser, page: Page, daemon: Daemon, api: Api,
                                          tmp_path: Path) -> None:
    app_id, app_name = api.application("kept")
    api.ok("SetKeyValueItem", application_id=app_id, key="greeting", value="hello")
    page.goto(daemon.base_url + "/settings")
    with page.expect_download() as download:
        page.click("text=Download backup")
    backup = tmp_path / download.value.suggested_filename
    download.value.save_as(backup)
    assert backup.name.endswith(".vgbackup")

    with page.expect_download() as download:
        page.click("text=New service account")
    credentials = json.loads(Path(download.value.path()).read_text())
    assert set(credentials) >= {"account_id", "key_id", "private_key"}
    keys = api.ok("GetKeys", count=1000)["result"]
    assert any(k["key_id"] == credentials["key_id"] and k["service_account"] for k in keys)

    with running_daemon(tmp_path / "fresh") as fresh:
        other = new_page(browser)
        other.goto(fresh.base_url + "/")
        other.fill("input[name=name]", "someone")
        other.fill("input[name=password]", "a temporary password")
        other.fill("input[name=confirm]", "a temporary password")
        other.click("button[type=submit]")
        other.goto(fresh.base_url + "/settings")
        other.set_input_files("input[name=backup]", str(backup))
        other.once("dialog", lambda dialog: dialog.accept())
        other.click("button:has-text('Restore')")
        other.wait_for_url(re.compile(r".*/login"))  # the panel's users are the backup's now
        browser_sign_in(other, fresh)
        other.goto(fresh.base_url + "/applications")
        expect(other.locator("table")).to_contain_text(app_name)
        other.goto(fresh.base_url + "/storage?application_id=" + str(app_id))
        expect(other.locator("table")).to_contain_text("greeting")
        other.context.close()


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_every_page_looks_right(browser: Browser, daemon: Daemon, api: Api, screen: str) -> None:
    """Every page renders, fits the screen (no sideways scrolling on a phone), and is saved to look at."""
    page = new_page(browser, PHONE) if screen == "phone" else new_page(browser)
    browser_sign_in(page, daemon)
    app_id, _ = api.application("shown")
    scenario_id, _ = api.scenario('Logger.write("shown");')
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for path in (*PAGES, f"/applications/{app_id}", f"/scenarios/{scenario_id}"):
        page.goto(daemon.base_url + path)
        expect(page.locator("h1")).to_be_visible()
        assert page.locator(".flash.error").count() == 0, (path, flash(page))
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, (path, width)
        if path == "/logs":  # the box's own log, tailed live
            expect(page.locator("#system-log")).to_contain_text("VoxGate ready")
        name = path.strip("/").replace("/", "-") or "dashboard"
        screenshot(page, f"{screen}-{name}")
    if screen == "phone":  # the menu folds away and opens
        expect(page.locator(".sidebar nav")).to_be_hidden()
        page.click("text=Menu")
        expect(page.locator(".sidebar nav")).to_be_visible()
    assert not errors, errors
    page.context.close()
