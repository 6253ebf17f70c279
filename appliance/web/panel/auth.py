"""Who is using the panel: first-boot set-up, sign-in with lockout, session cookies, CSRF and roles.

* Before the first user exists, every panel page leads to /setup, which makes the admin (no default password).
* Sign-in failures are counted per source address: LOCKOUT_FAILURES within LOCKOUT_SECONDS lock it out
  for LOCKOUT_SECONDS, right password or not.
* The session cookie is HttpOnly, SameSite=Strict, and Secure when the panel is reached over HTTPS.
  Signing in always makes a new session (a token planted beforehand is never honoured: no fixation).
* Every form carries a CSRF token: the session's own once signed in, before that (sign-in, set-up) a
  random one also set as a cookie (double submit). A POST without the right token is refused (403).
* Roles: read-only reads (not secret values, keys, users or backups), operator also starts scenarios and
  hangs up calls, admin does everything. The role is checked on the method itself, so a hand-made
  request cannot do more than the buttons a user sees.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

from aiohttp import web

from appliance.store.admins import AdminUser, PanelSession
from appliance.web.api import Method
from appliance.web.platform import METHODS

SESSION_COOKIE = "vg_session"
CSRF_COOKIE = "vg_csrf"  # before sign-in only
CSRF_FIELD = "csrf"
LOCKOUT_FAILURES = 5
LOCKOUT_SECONDS = 600.0

# Reads a read-only user may not make: secret values, credentials, the panel's users, whole backups.
PRIVATE_READS = frozenset({"GetSecretValue", "GetKeys", "GetAdminUsers", "GetBackup", "GetAuditLog"})
OPERATOR_WRITES = frozenset({"StartScenarios", "HangupCall"})


def allowed(role: str, method: Method) -> bool:
    """Whether a panel user of this role may call the method."""
    if role == "admin":
        return True
    if method.writes:
        return role == "operator" and method.name in OPERATOR_WRITES
    return method.name not in PRIVATE_READS


def may(user: AdminUser, method_name: str) -> bool:
    """For templates: whether to show the user a control that calls this method."""
    return allowed(user.role, METHODS[method_name])


class Lockout:
    """Failed sign-ins per source address."""

    def __init__(self, failures: int = LOCKOUT_FAILURES, seconds: float = LOCKOUT_SECONDS) -> None:
        self.failures = failures
        self.seconds = seconds
        self._failed: dict[str, deque[float]] = {}

    def remaining(self, source: str, now: float | None = None) -> float:
        """Seconds this source is still locked out for (0: it may try)."""
        now = time.monotonic() if now is None else now
        failed = self._failed.get(source)
        if failed is None:
            return 0.0
        if len(failed) >= self.failures and now - failed[-1] < self.seconds:
            return self.seconds - (now - failed[-1])  # locked from the last failure on, however spread out
        while failed and now - failed[0] > self.seconds:
            failed.popleft()
        if not failed:
            del self._failed[source]
        return 0.0

    def failed(self, source: str, now: float | None = None) -> None:
        self._failed.setdefault(source, deque(maxlen=self.failures)).append(
            time.monotonic() if now is None else now)

    def succeeded(self, source: str) -> None:
        self._failed.pop(source, None)


@dataclass(frozen=True)
class Visitor:
    """Who made a request: a signed-in session, or nobody yet (with the pre-sign-in CSRF token)."""
    session: PanelSession | None
    token: str  # the session cookie's value ('' when signed out)
    csrf: str

    @property
    def user(self) -> AdminUser:
        assert self.session is not None
        return self.session.user


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, secure=request.secure, samesite="Strict", path="/")
    response.del_cookie(CSRF_COOKIE, path="/")


def pre_signin_csrf(request: web.Request) -> str:
    """The CSRF token for sign-in and set-up forms: the cookie's, or a new one."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(24)


def set_csrf_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, secure=request.secure, samesite="Strict", path="/")


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected.encode(), given.encode())
