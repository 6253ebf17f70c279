"""The web panel's defences against a real daemon: first-boot set-up, sign-in lockout, cookies, CSRF,
inert markup (XSS) in Debian's Chromium, session fixation and sign-out, roles, and open redirects.

One daemon serves the module (a trunk on 127.0.0.1 so sipp's calls need no password, API rate limits
tests never reach); first boot and the lockout, which change the box for everyone, get their own.
Every test uses fresh names, and every wait is bounded.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from api_helpers import GENEROUS_LIMITS, Api, api_date, unique
from daemon_helpers import Daemon, read_text, running_daemon, wait_until
from panel_helpers import (
    ADMIN,
    PASSWORD,
    browser_sign_in,
    chromium,
    client,
    csrf_of,
    do,
    new_page,
    screenshot,
    set_up_admin,
    sign_in,
)
from playwright.sync_api import Browser, Dialog, Page
from sip_helpers import SIPP, sipp_caller, sipp_got_bye, voxfiles, with_local_trunk

from appliance.web.panel.auth import LOCKOUT_FAILURES, LOCKOUT_SECONDS, Lockout

ERR_FORBIDDEN = 108  # the role may not (appliance/web/api.py)
CSRF_REFUSED = "CSRF token is missing or wrong"
STRONG = "Correct-h0rse-battery"  # passwords of the users the tests add (the store wants 10+ characters)

# What the panel must show as text, never run.
LOG_PAYLOAD = "<img src=x onerror=alert(1)>"
SCRIPT_PAYLOAD = "</textarea><script>alert(1)</script><!--"
CUSTOM_DATA = '"><img src=x onerror=alert(2)>'
RULE_NAME = "\"'><svg onload=alert(7)>"
RULE_PATTERN = "<iframe src=javascript:alert(8)>"
RULE_EXCLUDE = "<script>alert(9)</script>"
KV_KEY = "<b onmouseover=alert(5)>k</b>"
KV_VALUE = "</td><script>alert(6)</script>"
SIP_DISPLAY = "<img src=x onerror=alert(10)>"
ADMIN_DISPLAY = '"><script>alert(11)</script>'
APP_NAME = "<script>alert(4)</script>"
SIGNIN_NAME = "<img src=x onerror=alert(3)>"
REFLECTED = '"><script>alert(12)</script>'
# A SIP caller: the display name is a quoted string (an escaped quote included), the URI's user part
# is %-escaped on the wire and unescaped by the box.
CALL_DISPLAY = "\"'><img src=x onerror=alert(13)>"
CALL_DISPLAY_WIRE = '"\\"\'><img src=x onerror=alert(13)>"'
CALLER = "<svg/onload=alert(14)>"
CALLER_WIRE = "%3Csvg%2Fonload%3Dalert(14)%3E"
CALLEE = 'xss"><script>alert(15)</script>'
CALLEE_WIRE = "xss%22%3E%3Cscript%3Ealert(15)%3C%2Fscript%3E"

# The scenario of incoming calls (voxfiles application `t`, rule `in`, every number).
CALL_SCENARIO = f"""\
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {{
  Logger.write("call from " + e.callerid + " (" + e.displayName + ") to " + e.destination);
  Logger.write({json.dumps(LOG_PAYLOAD)});
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
  e.call.answer();
}});
// {SCRIPT_PAYLOAD}
"""
# A StartScenarios session that logs markup and its custom data, then ends.
LOGGING_SCENARIO = f"""\
VoxEngine.addEventListener(AppEvents.Started, () => {{
  Logger.write({json.dumps(LOG_PAYLOAD)});
  Logger.write("custom data: " + VoxEngine.customData());
  setTimeout(() => VoxEngine.terminate(), 100);
}});
// {SCRIPT_PAYLOAD}
"""
ENDING_SCENARIO = "VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());\n"


# Records Content-Security-Policy violations (an injected script or handler the policy blocked).
CSP_WATCH = """\
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + (e.sample || "")));
"""
# Elements a payload would have made: scripts not the panel's own, any on* handler, <img src=x>, frames.
INJECTED_JS = """\
() => {
  const bad = [];
  for (const s of document.querySelectorAll("script")) {
    if (!s.src || !new URL(s.src).pathname.startsWith("/panel/static/")) bad.push(s.outerHTML.slice(0, 200));
  }
  for (const e of document.querySelectorAll("*")) {
    for (const a of e.attributes) {
      if (a.name.toLowerCase().startsWith("on")) bad.push(e.outerHTML.slice(0, 200));
    }
  }
  for (const e of document.querySelectorAll("img[src='x'], iframe, object, embed, b[onmouseover]")) {
    bad.push(e.outerHTML.slice(0, 200));
  }
  return bad;
}
"""
# What the page shows: its text and its form fields' values.
SHOWN_JS = """\
() => document.body.innerText + "\\n" +
  [...document.querySelectorAll("input, textarea, select")].map((e) => e.value).join("\\n")
"""


@dataclass
class Box:
    daemon: Daemon
    admin: httpx.Client  # signed in as ADMIN
    api: Api


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    root = tmp_path_factory.mktemp("panel-security")
    config = root / "voxgate.toml"
    config.write_text(GENEROUS_LIMITS)
    data = with_local_trunk(root / "data")
    vox = voxfiles(root / "vox", CALL_SCENARIO)
    with running_daemon(data, voxfiles=vox, extra_args=["--config", str(config)]) as daemon:
        admin = set_up_admin(daemon)
        api = Api(daemon)
        try:
            yield Box(daemon, admin, api)
        finally:
            api.close()
            admin.close()


# Helpers


def cookies_set(reply: httpx.Response) -> dict[str, Morsel[str]]:
    """The cookies a reply sets, by name, with their attributes."""
    found: dict[str, Morsel[str]] = {}
    for header in reply.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        found.update(jar)
    return found


def with_cookies(daemon: Daemon, method: str, path: str, cookies: Mapping[str, str],
                 data: Mapping[str, str] | None = None, base_url: str | None = None) -> httpx.Response:
    """One request carrying exactly these cookies (no cookie jar kept between requests)."""
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    with httpx.Client(base_url=base_url or daemon.base_url, timeout=30, follow_redirects=False) as http:
        return http.request(method, path, data=data, headers={"Cookie": header} if header else {})


def sign_in_reply(daemon: Daemon, name: str, password: str, cookies: Mapping[str, str] | None = None,
                  next_field: str | None = None, path: str = "/login") -> httpx.Response:
    """A sign-in form posted with a pre-sign-in CSRF token of our own (double submit: cookie and field)."""
    csrf = secrets.token_urlsafe(24)
    data = {"csrf": csrf, "name": name, "password": password}
    if next_field is not None:
        data["next"] = next_field
    return with_cookies(daemon, "POST", path, {**(cookies or {}), "vg_csrf": csrf}, data)


def session_token(daemon: Daemon, name: str, password: str) -> str:
    reply = sign_in_reply(daemon, name, password)
    assert reply.status_code == 303, reply.text
    return cookies_set(reply)["vg_session"].value


def signed_in(daemon: Daemon, token: str) -> bool:
    """Whether this session cookie value opens the dashboard (else the box sends it to /login)."""
    reply = with_cookies(daemon, "GET", "/", {"vg_session": token})
    if reply.status_code == 303:
        assert reply.headers["location"].startswith("/login"), reply.headers
        return False
    assert reply.status_code == 200, reply.status_code
    return True


def token_csrf(daemon: Daemon, token: str) -> str:
    reply = with_cookies(daemon, "GET", "/", {"vg_session": token})
    assert reply.status_code == 200
    return csrf_of(reply.text)


def flash(reply: httpx.Response) -> tuple[str, str]:
    """The message a redirect leaves for the next page (kind, text)."""
    morsel = cookies_set(reply).get("vg_flash")
    assert morsel is not None, (reply.status_code, reply.headers)
    kind, text = json.loads(unquote(morsel.value))
    return str(kind), str(text)


def add_panel_user(admin: httpx.Client, role: str, display_name: str = "") -> str:
    name = unique(role.replace("-", ""))
    fields = {"new_admin_user_name": name, "new_admin_user_password": STRONG, "admin_role": role}
    if display_name:
        fields["admin_user_display_name"] = display_name
    reply = do(admin, "AddAdminUser", **fields)
    assert reply.status_code == 200, reply.text
    return name


def audit(api: Api, key_id: str) -> list[dict[str, Any]]:
    now = time.time()
    body = api.ok("GetAuditLog", from_date=api_date(now - 3600), to_date=api_date(now + 60),
                  filtered_key_id=key_id, count=1000)
    entries = body["result"]
    assert isinstance(entries, list)
    return entries


def app_names(api: Api) -> set[str]:
    return {a["application_name"] for a in api.ok("GetApplications", count=1000)["result"]}


def script_of(api: Api, scenario_id: int) -> str:
    found = api.ok("GetScenarios", scenario_id=scenario_id, with_script=True)["result"]
    return str(found[0]["scenario_script"])


# 1. First boot


def test_first_boot_leads_everything_to_setup_until_the_admin_exists(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data") as daemon, client(daemon) as http:
        pages = ("/", "/history", "/settings", "/applications", "/scenarios", "/scenarios/1", "/history/1",
                 "/history.csv", "/lines", "/routes", "/storage", "/logs", "/login", "/panel/events?view=dashboard")
        for path in pages:
            reply = http.get(path)
            assert (reply.status_code, reply.headers.get("location")) == (303, "/setup"), path
            assert reply.content == b"", path
        for path in ("/panel/do/GetApplications", "/panel/do/AddApplication", "/settings/backup",
                     "/settings/service-account", "/scenarios/1"):
            reply = http.post(path, data={"csrf": "x" * 30, "application_name": "early"},
                              headers={"Accept": "application/json"})
            assert (reply.status_code, reply.headers.get("location")) == (303, "/setup"), path
            assert reply.content == b"", path

        def still_first_boot() -> bool:
            reply = http.get("/")
            return reply.status_code == 303 and reply.headers["location"] == "/setup"

        form = http.get("/setup")
        assert form.status_code == 200 and "Content-Security-Policy" in form.headers
        token = csrf_of(form.text)
        assert cookies_set(form)["vg_csrf"].value == token
        good = {"csrf": token, "name": "boss", "password": PASSWORD, "confirm": PASSWORD}

        short = http.post("/setup", data={**good, "password": "Sh0rt!", "confirm": "Sh0rt!"})
        assert short.status_code == 400 and "at least 10 characters" in short.text
        differ = http.post("/setup", data={**good, "confirm": PASSWORD + "x"})
        assert differ.status_code == 400 and "The passwords differ." in differ.text
        without = http.post("/setup", data={k: v for k, v in good.items() if k != "csrf"})
        assert without.status_code == 403 and "The form expired" in without.text
        wrong = http.post("/setup", data={**good, "csrf": secrets.token_urlsafe(24)})
        assert wrong.status_code == 403
        # The right token in the field but no cookie (a cross-site form cannot set it): refused too.
        no_cookie = with_cookies(daemon, "POST", "/setup", {}, good)
        assert no_cookie.status_code == 403
        assert still_first_boot()

        done = http.post("/setup", data=good)
        assert (done.status_code, done.headers["location"]) == (303, "/")
        assert cookies_set(done)["vg_session"].value
        assert http.get("/").status_code == 200

        # From now on /setup is gone: it leads to /login, and cannot make a second admin.
        with client(daemon) as stranger:
            reply = stranger.get("/setup")
            assert (reply.status_code, reply.headers["location"]) == (303, "/login")
        csrf = secrets.token_urlsafe(24)
        again = with_cookies(daemon, "POST", "/setup", {"vg_csrf": csrf},
                             {"csrf": csrf, "name": "intruder", "password": STRONG, "confirm": STRONG})
        assert (again.status_code, again.headers["location"]) == (303, "/login")
        assert "vg_session" not in cookies_set(again)
        api = Api(daemon)
        try:
            users = api.ok("GetAdminUsers")["result"]
            assert [(u["admin_user_name"], u["admin_role"]) for u in users] == [("boss", "admin")]
            first = audit(api, "panel:boss")
            assert [(e["cmd"], e["error_code"]) for e in first] == [("AddAdminUser", 0)]
        finally:
            api.close()


# 2. Lockout


def test_five_failed_sign_ins_lock_the_address_out_even_with_the_right_password(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "data") as daemon:
        set_up_admin(daemon).close()
        for attempt in range(1, LOCKOUT_FAILURES):
            reply = sign_in_reply(daemon, ADMIN if attempt % 2 else "nobody", f"wrong-password-{attempt}")
            assert reply.status_code == 401 and "Wrong user name or password." in reply.text, attempt
        fifth = sign_in_reply(daemon, ADMIN, "wrong-password-5")
        assert fifth.status_code == 429 and "try again in 10 minutes" in fifth.text
        right = sign_in_reply(daemon, ADMIN, PASSWORD)
        assert right.status_code == 429 and "try again in 10 minutes" in right.text
        assert "vg_session" not in cookies_set(right)
        with client(daemon) as fresh:  # a new cookie jar is still the same address
            token = csrf_of(fresh.get("/login").text)
            reply = fresh.post("/login", data={"csrf": token, "name": ADMIN, "password": PASSWORD})
            assert reply.status_code == 429 and "vg_session" not in cookies_set(reply)
            assert fresh.get("/").status_code == 303

        stderr = daemon.stderr_text()
        assert "panel: failed sign-in as 'admin' from 127.0.0.1" in stderr
        assert "panel: failed sign-in as 'nobody' from 127.0.0.1" in stderr
        assert "127.0.0.1 locked out for" in stderr
        assert "wrong-password" not in stderr  # never the password
        api = Api(daemon)  # the management API has its own keys: it still answers
        try:
            records = api.ok("GetSystemLog", level="warning", count=500)["result"]
        finally:
            api.close()
        failed = [r for r in records if "failed sign-in as" in r["message"]]
        assert len(failed) == LOCKOUT_FAILURES, records
        assert all(r["level"].lower() == "warning" for r in failed)
        assert any("locked out" in r["message"] for r in records)


def test_lockout_is_per_address_and_ends_after_ten_minutes() -> None:
    lockout = Lockout()
    assert LOCKOUT_SECONDS == 600.0
    for _ in range(LOCKOUT_FAILURES - 1):
        lockout.failed("192.0.2.1", now=1004.0)
        assert lockout.remaining("192.0.2.1", now=1004.0) == 0.0
    lockout.failed("192.0.2.1", now=1004.0)
    assert lockout.remaining("192.0.2.1", now=1004.0) == 600.0
    assert lockout.remaining("192.0.2.2", now=1004.0) == 0.0  # another address may try
    lockout.failed("192.0.2.2", now=1005.0)
    assert lockout.remaining("192.0.2.2", now=1005.0) == 0.0
    assert lockout.remaining("192.0.2.1", now=1004.0 + 599.0) == pytest.approx(1.0)
    assert lockout.remaining("192.0.2.1", now=1004.0 + 600.5) == 0.0
    lockout.failed("192.0.2.1", now=1700.0)  # a new failure after the lock counts from one again
    assert lockout.remaining("192.0.2.1", now=1700.0) == 0.0
    lockout.succeeded("192.0.2.2")
    assert lockout.remaining("192.0.2.2", now=1006.0) == 0.0


def test_lockout_lasts_ten_minutes_from_the_last_failure_however_spread_the_failures() -> None:
    lockout = Lockout()
    lockout.failed("192.0.2.9", now=0.0)
    for t in (599.0, 599.1, 599.2, 599.3):
        lockout.failed("192.0.2.9", now=t)
    assert lockout.remaining("192.0.2.9", now=599.3) == pytest.approx(600.0)  # "try again in 10 minutes"
    assert lockout.remaining("192.0.2.9", now=601.0) > 0.0  # ...yet here the address may try again


# 3. Cookies


def test_session_cookie_is_httponly_strict_and_secure_only_over_https(box: Box) -> None:
    daemon = box.daemon
    with client(daemon) as http:
        pre = cookies_set(http.get("/login"))["vg_csrf"]
        assert pre["httponly"] and pre["samesite"] == "Strict" and not pre["secure"]
        token = csrf_of(http.get("/login").text)
        reply = http.post("/login", data={"csrf": token, "name": ADMIN, "password": PASSWORD})
        assert reply.status_code == 303
        session = cookies_set(reply)["vg_session"]
        assert session["httponly"] is True and session["samesite"] == "Strict" and session["path"] == "/"
        assert not session["secure"]
        assert len(session.value) >= 40

    verify = ssl.create_default_context(cafile=str(daemon.cert_path))  # the box's certificate names 127.0.0.1
    with httpx.Client(base_url=daemon.https_url, verify=verify, timeout=30, follow_redirects=False) as https:
        form = https.get("/login")
        pre = cookies_set(form)["vg_csrf"]
        assert pre["httponly"] and pre["samesite"] == "Strict" and pre["secure"]
        reply = https.post("/login", data={"csrf": csrf_of(form.text), "name": ADMIN, "password": PASSWORD})
        assert reply.status_code == 303
        session = cookies_set(reply)["vg_session"]
        assert session["httponly"] is True and session["samesite"] == "Strict" and session["secure"] is True
        assert https.get("/").status_code == 200  # the Secure cookie goes back over HTTPS


# 4. CSRF


def test_every_change_needs_the_sessions_own_csrf_token(box: Box) -> None:
    daemon, api = box.daemon, box.api
    token = session_token(daemon, ADMIN, PASSWORD)
    mine = token_csrf(daemon, token)
    others = token_csrf(daemon, session_token(daemon, ADMIN, PASSWORD))  # another session of the same user
    reader = add_panel_user(box.admin, "read-only")
    readers = token_csrf(daemon, session_token(daemon, reader, STRONG))  # another user's session
    bad_tokens: dict[str, str | None] = {"none": None, "empty": "", "wrong": secrets.token_urlsafe(32),
                                         "other session": others, "other user": readers}
    cookie = {"vg_session": token}

    def post(path: str, fields: Mapping[str, str], csrf: str | None, json_answer: bool = False) -> httpx.Response:
        data = dict(fields) if csrf is None else {**fields, "csrf": csrf}
        with httpx.Client(base_url=daemon.base_url, timeout=30) as http:
            headers = {"Cookie": f"vg_session={token}"}
            if json_answer:
                headers["Accept"] = "application/json"
            return http.post(path, data=data, headers=headers)

    scenario_id, _ = api.scenario(ENDING_SCENARIO)
    original = script_of(api, scenario_id)
    keys = len(api.ok("GetKeys", count=1000)["result"])
    name = unique("csrf-app")
    for label, csrf in bad_tokens.items():
        reply = post("/panel/do/AddApplication", {"application_name": name}, csrf, json_answer=True)
        assert reply.status_code == 403 and CSRF_REFUSED in reply.json()["error"]["msg"], label
        reply = post("/panel/do/AddApplication", {"application_name": name}, csrf)
        assert reply.status_code == 303 and flash(reply)[0] == "error", label
        assert CSRF_REFUSED in flash(reply)[1], label

        reply = post(f"/scenarios/{scenario_id}", {"scenario_name": "renamed", "scenario_script": "// changed"}, csrf)
        assert reply.status_code == 403 and CSRF_REFUSED in reply.text, label

        reply = post("/settings/backup", {}, csrf)
        assert reply.status_code == 303 and "content-disposition" not in reply.headers, label
        assert CSRF_REFUSED in flash(reply)[1] and not reply.content, label

        reply = post("/settings/service-account", {"description": "csrf"}, csrf)
        assert reply.status_code == 303 and "content-disposition" not in reply.headers, label
        assert CSRF_REFUSED in flash(reply)[1] and not reply.content, label

        reply = post("/logout", {}, csrf)
        assert (reply.status_code, reply.headers["location"]) == (303, "/login"), label
        assert "vg_session" not in cookies_set(reply), label
        assert signed_in(daemon, token), f"{label}: a forged sign-out signed the session out"

    # Nothing changed...
    assert name not in app_names(api)
    assert script_of(api, scenario_id) == original
    assert api.ok("GetScenarios", scenario_id=scenario_id)["result"][0]["scenario_name"] != "renamed"
    assert len(api.ok("GetKeys", count=1000)["result"]) == keys
    done = [e["cmd"] for e in audit(api, f"panel:{ADMIN}") if e["cmd"] in ("GetBackup", "CreateKey", "AddApplication")]
    assert done == [], done  # a refused token stops the request before the method: not even an attempt

    # ...and the same requests with the right token do change (the refusals were the token's).
    reply = post("/panel/do/AddApplication", {"application_name": name}, mine, json_answer=True)
    assert reply.status_code == 200 and name in app_names(api)
    reply = post(f"/scenarios/{scenario_id}", {"scenario_name": unique("saved"), "scenario_script": "// saved\n"},
                 mine)
    assert reply.status_code == 303 and script_of(api, scenario_id) == "// saved\n"
    reply = post("/settings/backup", {}, mine)
    assert reply.status_code == 200 and "attachment" in reply.headers["content-disposition"]
    reply = post("/settings/service-account", {"description": "csrf"}, mine)
    assert reply.status_code == 200 and "attachment" in reply.headers["content-disposition"]
    assert len(api.ok("GetKeys", count=1000)["result"]) == keys + 1
    reply = with_cookies(daemon, "POST", "/logout", cookie, {"csrf": mine})
    assert reply.status_code == 303 and not signed_in(daemon, token)


# 5. XSS: markup from every source is shown as text in Chromium


@dataclass
class Watched:
    page: Page
    dialogs: list[str] = field(default_factory=list)


def watched_page(browser: Browser) -> Watched:
    page = new_page(browser)
    watched = Watched(page)

    def on_dialog(dialog: Dialog) -> None:
        watched.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.add_init_script(CSP_WATCH)
    return watched


def assert_inert(w: Watched, where: str, texts: Sequence[str] = (), escaped: Sequence[str] = (),
                 values: Sequence[str] = ()) -> None:
    """No dialog, no element a payload made, no script the policy had to block; `texts` shown literally
    (and escaped in the page's HTML), `escaped` present in the HTML as escaped text (not shown: a closed
    SIP trace), `values` the value of a form field."""
    page = w.page
    assert w.dialogs == [], (where, w.dialogs)
    injected = page.evaluate(INJECTED_JS)
    assert injected == [], (where, injected)
    blocked = [v for v in page.evaluate("() => window.__csp || []") if str(v).startswith("script-src")]
    assert blocked == [], (where, blocked)
    shown = str(page.evaluate(SHOWN_JS))
    content = page.content()
    for text in texts:
        assert text in shown, (where, text)
        assert html.escape(text, quote=False) in content, (where, text)
    for text in escaped:
        assert html.escape(text, quote=False) in content, (where, text)
    for text in values:
        assert text in shown, (where, text)


def visit(w: Watched, daemon: Daemon, path: str) -> None:
    response = w.page.goto(daemon.base_url + path)
    assert response is not None and response.status == 200, (path, response and response.status)
    headers = response.headers
    assert "script-src 'self'" in headers["content-security-policy"], path
    assert "unsafe-inline" not in headers["content-security-policy"], path


def live_call(api: Api, caller: str, timeout: float = 10.0) -> tuple[int, str]:
    """(session id, call id) of the live call from `caller`."""
    found: list[tuple[int, str]] = []

    def up() -> bool:
        for s in api.ok("GetActiveCalls")["result"]:
            for c in s.get("calls", []):
                if c.get("remote_number") == caller and c.get("state") == "CONNECTED":
                    found.append((int(s["call_session_history_id"]), str(c["call_id"])))
        return bool(found)

    assert wait_until(up, timeout, 0.2), [s.get("calls") for s in api.ok("GetActiveCalls")["result"]]
    return found[0]


@pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")
def test_markup_from_every_source_is_shown_as_text_never_run(box: Box, tmp_path: Path) -> None:
    daemon, api = box.daemon, box.api
    # What a scenario, the API and other panel users can put in front of the admin.
    app_id, _ = api.application("xss")
    scenario_id, _ = api.scenario(LOGGING_SCENARIO, prefix="xss")
    rule_id = int(api.ok("AddRule", application_id=app_id, rule_name=RULE_NAME, rule_pattern=RULE_PATTERN,
                         rule_pattern_exclude=RULE_EXCLUDE, scenario_id=scenario_id)["rule_id"])
    started, _ = api.start(rule_id, CUSTOM_DATA)
    api.wait_ended(started)
    api.ok("SetKeyValueItem", application_id=app_id, key=KV_KEY, value=KV_VALUE)
    api.ok("AddUser", user_name=unique("xss"), user_display_name=SIP_DISPLAY, user_password="Secr3t-pass-99",
           application_id=app_id)
    api.ok("AddAdminUser", new_admin_user_name=unique("xss"), new_admin_user_password=STRONG,
           admin_user_display_name=ADMIN_DISPLAY, admin_role="read-only")
    failed = sign_in_reply(daemon, SIGNIN_NAME, "not-the-password")  # logged as a warning, with the name
    assert failed.status_code == 401

    with chromium() as browser:
        w = watched_page(browser)
        page = w.page
        # The watch itself sees a payload that runs (a page without the panel's policy).
        page.set_content(f"<p>{LOG_PAYLOAD}</p>")
        assert wait_until(lambda: bool(w.dialogs), 5) and page.evaluate(INJECTED_JS), "the watch is blind"
        w.dialogs.clear()
        browser_sign_in(page, daemon)  # also clears the failure above from the lockout count
        assert_inert(w, "dashboard")
        # A call from sipp comes in while the dashboard is open: the live update shows it.
        with sipp_caller(tmp_path, daemon.sip_port, CALLEE_WIRE, CALLER_WIRE, CALL_DISPLAY_WIRE[1:-1]) as sipp:
            call_session, _ = live_call(api, CALLER)
            page.wait_for_selector("tr[data-call]")
            assert_inert(w, "dashboard, live", texts=[CALL_DISPLAY, CALLER, CALLEE])
            visit(w, daemon, "/")
            assert_inert(w, "dashboard, rendered", texts=[CALL_DISPLAY, CALLER, CALLEE])
            screenshot(page, "security_dashboard_call")
            api.ok("HangupCall", call_session_history_id=call_session)
            api.wait_ended(call_session)
            sipp_got_bye(sipp)

        visit(w, daemon, "/history")
        assert_inert(w, "history", texts=[CALLER, CALLEE, RULE_NAME])
        visit(w, daemon, f"/history/{call_session}")
        page.wait_for_function("() => document.getElementById('session-log').textContent.includes('call from')")
        assert_inert(w, "call session", texts=[CALLER, CALLEE, LOG_PAYLOAD, CALL_DISPLAY],
                     escaped=["<img src=x onerror=alert(13)>"])  # in the SIP trace (From header)
        visit(w, daemon, f"/history/{started}")
        page.wait_for_function("() => document.getElementById('session-log').textContent.includes('custom data')")
        assert_inert(w, "started session", texts=[CUSTOM_DATA, LOG_PAYLOAD, f"custom data: {CUSTOM_DATA}", RULE_NAME])
        # The log's own link is plain text too.
        log_url = str(api.history(started)["log_file_url"])
        response = page.goto(log_url)
        assert response is not None and response.headers["content-type"].startswith("text/plain")
        assert_inert(w, "session log file", texts=[LOG_PAYLOAD])

        visit(w, daemon, f"/storage?application_id={app_id}")
        assert_inert(w, "storage", texts=[KV_KEY, KV_VALUE])
        visit(w, daemon, "/lines")
        assert_inert(w, "lines", texts=[SIP_DISPLAY])
        visit(w, daemon, "/scenarios")
        assert_inert(w, "scenarios")
        visit(w, daemon, f"/scenarios/{scenario_id}")
        assert SCRIPT_PAYLOAD in page.input_value("textarea[name=scenario_script]")
        assert_inert(w, "scenario editor", texts=[SCRIPT_PAYLOAD, RULE_NAME])
        visit(w, daemon, f"/applications/{app_id}")
        assert_inert(w, "application", texts=[RULE_NAME, RULE_PATTERN, RULE_EXCLUDE])
        visit(w, daemon, "/settings")
        assert_inert(w, "settings", texts=[ADMIN_DISPLAY])

        # A refused change whose error repeats the markup: the flash after the redirect, then the audit log.
        visit(w, daemon, "/applications")
        page.fill("input[name=application_name]", APP_NAME)
        page.click("button:has-text('Add application')")
        page.wait_for_selector(".flash.error")
        assert_inert(w, "flash", texts=[APP_NAME])
        visit(w, daemon, "/logs")
        page.wait_for_function("() => document.getElementById('system-log').textContent.includes('failed sign-in')")
        assert_inert(w, "logs", texts=[SIGNIN_NAME, APP_NAME])

        # Markup in a link's query comes back as text.
        quoted = quote(REFLECTED, safe="")
        visit(w, daemon, f"/logs?sip_call_id={quoted}")
        assert_inert(w, "logs, Call-ID", texts=[REFLECTED])
        visit(w, daemon, f"/history?number={quoted}")
        assert_inert(w, "history, number", values=[REFLECTED])
        visit(w, daemon, f"/storage?application_id={app_id}&key={quoted}")
        assert_inert(w, "storage, key", values=[REFLECTED])
        assert w.dialogs == []


def test_pages_send_the_security_headers(box: Box) -> None:
    app_id, _ = box.api.application("headers")
    scenario_id, _ = box.api.scenario(ENDING_SCENARIO, prefix="headers")
    paths = ("/", "/applications", f"/applications/{app_id}", "/scenarios", f"/scenarios/{scenario_id}",
             "/history", "/lines", "/routes", "/storage", "/logs", "/settings", "/scenarios/999999999")
    replies = [box.admin.get(path) for path in paths]
    with client(box.daemon) as stranger:
        replies.append(stranger.get("/login"))
    for reply in replies:
        assert reply.status_code in (200, 404), reply.url
        policy = reply.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'",
                          "form-action 'self'"):
            assert directive in policy, (reply.url, policy)
        assert "unsafe" not in policy
        assert reply.headers["x-frame-options"] == "DENY" and reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["cache-control"] == "no-store"


# 6. Session fixation, sign-out, password change


def test_a_planted_session_cookie_is_never_honoured_and_is_replaced_at_sign_in(box: Box) -> None:
    daemon = box.daemon
    planted = secrets.token_urlsafe(32)
    assert not signed_in(daemon, planted)
    reply = sign_in_reply(daemon, ADMIN, PASSWORD, {"vg_session": planted})
    assert reply.status_code == 303
    issued = cookies_set(reply)["vg_session"].value
    assert issued != planted
    assert signed_in(daemon, issued) and not signed_in(daemon, planted)

    # An attacker's own (valid, low-privilege) session planted in the admin's browser: signing in makes a
    # new session, and the planted one is signed out rather than raised to the admin's rights.
    attacker = add_panel_user(box.admin, "read-only")
    planted = session_token(daemon, attacker, STRONG)
    assert signed_in(daemon, planted)
    reply = sign_in_reply(daemon, ADMIN, PASSWORD, {"vg_session": planted})
    issued = cookies_set(reply)["vg_session"].value
    assert issued != planted and signed_in(daemon, issued) and not signed_in(daemon, planted)
    settings = with_cookies(daemon, "GET", "/settings", {"vg_session": issued})
    assert "Panel users" in settings.text  # the admin's page, not the attacker's


def test_signing_out_ends_the_session_on_the_server(box: Box) -> None:
    daemon = box.daemon
    token = session_token(daemon, ADMIN, PASSWORD)
    csrf = token_csrf(daemon, token)
    reply = with_cookies(daemon, "POST", "/logout", {"vg_session": token}, {"csrf": csrf})
    assert (reply.status_code, reply.headers["location"]) == (303, "/login")
    gone = cookies_set(reply)["vg_session"]
    assert gone.value == "" or gone["max-age"] == "0"
    # The old cookie value, replayed, is no longer a session anywhere.
    for path in ("/", "/history", "/panel/events?view=dashboard"):
        again = with_cookies(daemon, "GET", path, {"vg_session": token})
        assert again.status_code == 303 and again.headers["location"].startswith("/login"), path
    again = with_cookies(daemon, "POST", "/panel/do/AddApplication", {"vg_session": token},
                         {"csrf": csrf, "application_name": unique("after-logout")})
    assert again.status_code == 303 and again.headers["location"] == "/login"


def test_a_password_change_signs_the_users_other_sessions_out(box: Box) -> None:
    daemon = box.daemon
    # An admin changes another user's password: every session of that user ends.
    operator = add_panel_user(box.admin, "operator")
    first, second = session_token(daemon, operator, STRONG), session_token(daemon, operator, STRONG)
    assert signed_in(daemon, first) and signed_in(daemon, second)
    reply = do(box.admin, "SetAdminUserInfo", required_admin_user_name=operator,
               new_admin_user_password="Brand-new-passw0rd")
    assert reply.status_code == 200, reply.text
    assert not signed_in(daemon, first) and not signed_in(daemon, second)
    assert signed_in(daemon, session_token(daemon, operator, "Brand-new-passw0rd"))

    # A user changes their own password: their other sessions end.
    admin = add_panel_user(box.admin, "admin")
    here, elsewhere = session_token(daemon, admin, STRONG), session_token(daemon, admin, STRONG)
    reply = with_cookies(daemon, "POST", "/panel/do/SetAdminUserInfo", {"vg_session": here},
                         {"csrf": token_csrf(daemon, here), "required_admin_user_name": admin,
                          "new_admin_user_password": "Another-passw0rd"})
    assert reply.status_code == 303, reply.text
    assert not signed_in(daemon, elsewhere)
    assert sign_in_reply(daemon, admin, STRONG).status_code == 401  # the old password is gone
    assert signed_in(daemon, session_token(daemon, admin, "Another-passw0rd"))


# 7. Roles


def forms_with_buttons(text: str) -> list[str]:
    """The /panel/do methods a page offers a submit button for."""
    return [m.group(1) for m in re.finditer(r'<form[^>]*action="/panel/do/(\w+)"[^>]*>(.*?)</form>', text, re.S)
            if "<button" in m.group(2)]


def test_roles_are_enforced_on_the_methods_not_only_the_buttons(box: Box) -> None:
    daemon, api, admin = box.daemon, box.api, box.admin
    reader, operator = add_panel_user(admin, "read-only"), add_panel_user(admin, "operator")
    ro, op = sign_in(daemon, reader, STRONG), sign_in(daemon, operator, STRONG)
    try:
        app_id, app_name = api.application("roles")
        scenario_id, _ = api.scenario(ENDING_SCENARIO, prefix="roles")
        first, _ = api.rule(app_id, pattern="role-one-[0-9]+", scenario_id=scenario_id)
        second, _ = api.rule(app_id, pattern="role-two-[0-9]+", scenario_id=scenario_id)
        api.ok("AddSecret", application_id=app_id, secret_name=unique("roles").replace("-", "_"), secret_value="s3cret")
        script = script_of(api, scenario_id)
        box_settings = api.ok("GetBoxSettings")["result"]
        keys = api.ok("GetKeys", count=1000)["result"]
        admins = {u["admin_user_name"]: u["admin_role"] for u in api.ok("GetAdminUsers", count=1000)["result"]}
        new_names = {"app": unique("ro-app"), "rule": unique("ro-rule"), "user": unique("ro-user"),
                     "admin": unique("ro-admin"), "route": unique("ro-route")}

        # Pages: readable, without a control that changes anything.
        for path in ("/", "/applications", f"/applications/{app_id}", "/scenarios", f"/scenarios/{scenario_id}",
                     "/history", "/lines", "/routes", f"/storage?application_id={app_id}", "/logs", "/settings"):
            reply = ro.get(path)
            assert reply.status_code == 200, path
            assert forms_with_buttons(reply.text) == [], (path, forms_with_buttons(reply.text))
            assert "/settings/backup" not in reply.text and "/settings/service-account" not in reply.text, path
        assert "Add application" not in ro.get("/applications").text
        assert "Add user" not in ro.get("/settings").text
        assert "readonly" in ro.get(f"/scenarios/{scenario_id}").text
        assert app_name in ro.get("/applications").text

        writes: dict[str, dict[str, object]] = {
            "AddApplication": {"application_name": new_names["app"]},
            "DelApplication": {"application_id": app_id},
            "SetScenarioInfo": {"scenario_id": scenario_id, "scenario_script": "// changed by a reader\n"},
            "AddRule": {"application_id": app_id, "rule_name": new_names["rule"], "rule_pattern": "ro-[0-9]+",
                        "scenario_id": scenario_id},
            "DelRule": {"rule_id": first},
            "ReorderRules": {"rule_id": f"{second};{first}"},
            "StartScenarios": {"rule_id": first},
            "HangupCall": {"call_session_history_id": 1},
            "SetKeyValueItem": {"application_id": app_id, "key": "ro-key", "value": "x"},
            "AddUser": {"user_name": new_names["user"], "user_display_name": "x", "user_password": "Secr3t-pass-99",
                        "application_id": app_id},
            "AddOutboundRoute": {"route_name": new_names["route"], "pattern": "9.*", "line": "local"},
            "SetBoxSettings": {"time_zone": "Europe/Berlin"},
            "RestoreBackup": {"backup": "AAAA"},
            "CreateKey": {"description": "by a reader"},
            "DeleteKey": {"key_id": keys[0]["key_id"]},
            "AddAdminUser": {"new_admin_user_name": new_names["admin"], "new_admin_user_password": STRONG,
                             "admin_role": "admin"},
            "SetAdminUserInfo": {"required_admin_user_name": reader, "admin_role": "admin"},  # raise itself
            "GetSecretValue": {"secret_name": "anything"},
            "GetBackup": {},
        }
        private_reads: dict[str, dict[str, object]] = {
            "GetKeys": {}, "GetAdminUsers": {},
            "GetAuditLog": {"from_date": "2000-01-01 00:00:00", "to_date": "2100-01-01 00:00:00"},
        }
        for method, params in {**writes, **private_reads}.items():
            reply = do(ro, method, **{k: str(v) for k, v in params.items()})
            assert reply.status_code == 403, (method, reply.status_code, reply.text)
            assert reply.json()["error"]["code"] == ERR_FORBIDDEN, (method, reply.text)
        assert ro.get("/history").status_code == 200 and do(ro, "GetApplications").status_code == 200

        # The operator starts scenarios, and changes nothing else.
        assert "StartScenarios" in forms_with_buttons(op.get(f"/applications/{app_id}").text)
        assert "AddRule" not in forms_with_buttons(op.get(f"/applications/{app_id}").text)
        assert "AddApplication" not in forms_with_buttons(op.get("/applications").text)
        reply = do(op, "StartScenarios", rule_id=str(first))
        assert reply.status_code == 200, reply.text
        api.wait_ended(int(reply.json()["call_session_history_id"]))
        for method in ("AddApplication", "SetScenarioInfo", "DelRule", "SetKeyValueItem", "AddAdminUser"):
            reply = do(op, method, **{k: str(v) for k, v in writes[method].items()})
            assert reply.status_code == 403 and reply.json()["error"]["code"] == ERR_FORBIDDEN, method

        # Nothing changed.
        names = app_names(api)
        assert app_name in names and new_names["app"] not in names
        rules = api.ok("GetRules", application_id=app_id, count=1000)["result"]
        assert [r["rule_id"] for r in rules] == [first, second]
        assert script_of(api, scenario_id) == script
        assert api.ok("GetKeyValueItems", application_id=app_id, key="ro-key")["total_count"] == 0
        assert new_names["user"] not in {u["user_name"] for u in api.ok("GetUsers", count=1000)["result"]}
        assert new_names["route"] not in {r["route_name"] for r in api.ok("GetOutboundRoutes", count=1000)["result"]}
        assert api.ok("GetBoxSettings")["result"] == box_settings
        assert {k["key_id"] for k in api.ok("GetKeys", count=1000)["result"]} == {k["key_id"] for k in keys}
        now_admins = {u["admin_user_name"]: u["admin_role"] for u in api.ok("GetAdminUsers", count=1000)["result"]}
        assert now_admins == admins

        # The audit log keeps the refused attempts, as the panel user.
        entries = audit(api, f"panel:{reader}")
        assert {e["cmd"] for e in entries} == set(writes)  # reads are not audited; every write attempt is
        assert all(e["error_code"] == ERR_FORBIDDEN and "not allowed" in e["error_msg"] for e in entries), entries
        assert all(e["ip"] == "127.0.0.1" for e in entries)
        entries = audit(api, f"panel:{operator}")
        assert [e["cmd"] for e in entries if e["error_code"] == 0] == ["StartScenarios"]
        assert {e["cmd"] for e in entries if e["error_code"] == ERR_FORBIDDEN} == {
            "AddApplication", "SetScenarioInfo", "DelRule", "SetKeyValueItem", "AddAdminUser"}
    finally:
        ro.close()
        op.close()


# 8. Open redirect


OFFSITE = ("//evil.example/", "https://evil.example/", "/\\evil.example/", "\\\\evil.example/", "https:evil.example",
           "/\t/evil.example/", "javascript:alert(1)", "//evil.example/%2F..")


def test_sign_in_never_sends_the_browser_to_another_site(box: Box) -> None:
    daemon = box.daemon
    for target in OFFSITE:
        quoted = httpx.QueryParams({"next": target})
        form = with_cookies(daemon, "GET", f"/login?{quoted}", {})
        assert 'name="next" value="/"' in form.text, target
        by_query = sign_in_reply(daemon, ADMIN, PASSWORD, path=f"/login?{quoted}")
        assert (by_query.status_code, by_query.headers["location"]) == (303, "/"), target
        by_field = sign_in_reply(daemon, ADMIN, PASSWORD, next_field=target)
        assert (by_field.status_code, by_field.headers["location"]) == (303, "/"), target
    local = sign_in_reply(daemon, ADMIN, PASSWORD, next_field="/history?from=2024-01-01")
    assert local.headers["location"] == "/history?from=2024-01-01"

    with chromium() as browser:
        for target in ("//evil.example/", "https://evil.example/"):
            page = new_page(browser)
            page.goto(f"{daemon.base_url}/login?{httpx.QueryParams({'next': target})}")
            page.fill("input[name=name]", ADMIN)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(daemon.base_url + "/")
            assert page.url == daemon.base_url + "/"
            page.context.close()


def test_logs_never_hold_passwords(box: Box) -> None:
    assert PASSWORD not in read_text(box.daemon.stderr_path)
    assert STRONG not in read_text(box.daemon.stderr_path)
