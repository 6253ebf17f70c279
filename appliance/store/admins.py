"""Web panel users (Voximplant's admin users) and their signed-in sessions.

Passwords are kept as argon2id hashes. A session is a random token in an HttpOnly cookie; the store keeps
its SHA-256 hash (a leaked database does not sign anyone in) and the session's CSRF token. Signing in
always makes a new session, so a token planted before sign-in never becomes a signed-in one (fixation).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from appliance.store.db import Conflict, Database, NotFound, StoreError

ROLES = ("admin", "operator", "read-only")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@\-]{0,63}\Z")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
SESSION_IDLE_SECONDS = 8 * 3600.0  # signed out after this long without a request
SESSION_MAX_SECONDS = 7 * 86400.0  # and after a week in any case

_hasher = PasswordHasher()
# Checked against when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class AdminUser:
    id: int
    name: str
    display_name: str
    role: str
    active: bool
    created: float
    modified: float


@dataclass(frozen=True)
class PanelSession:
    user: AdminUser
    csrf: str


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise StoreError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise StoreError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")
    if len(set(password)) < 4:
        raise StoreError("the password is too simple: use at least 4 different characters")


class AdminUsers:
    def __init__(self, db: Database) -> None:
        self.db = db

    def any(self) -> bool:
        """Whether the panel has a user yet (before the first one, the panel offers only first-boot set-up)."""
        return bool(self.db.query("SELECT 1 FROM admin_users LIMIT 1"))

    def add(self, name: str, password: str, role: str, display_name: str = "", active: bool = True) -> AdminUser:
        if not NAME.match(name):
            raise StoreError(f"invalid user name {name!r}: up to 64 of [A-Za-z0-9._@-], starting with a letter "
                             "or digit")
        _check_role(role)
        check_password(password)
        now = time.time()
        try:
            cursor = self.db.execute(
                "INSERT INTO admin_users (name, display_name, password_hash, role, active, created, modified) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (name, display_name, _hasher.hash(password), role, active, now, now))
        except sqlite3.IntegrityError:
            raise Conflict(f"user {name!r} already exists") from None
        return self.get(cursor.lastrowid or 0)

    def get(self, key: int | str) -> AdminUser:
        column = "id" if isinstance(key, int) else "name"
        rows = self.db.query(f"SELECT * FROM admin_users WHERE {column} = ?", (key,))
        if not rows:
            raise NotFound(f"no user {key!r}")
        r = rows[0]
        return AdminUser(r["id"], r["name"], r["display_name"], r["role"], bool(r["active"]), r["created"],
                         r["modified"])

    def list(self) -> list[AdminUser]:
        return [self.get(r["id"]) for r in self.db.query("SELECT id FROM admin_users ORDER BY name")]

    def update(self, user_id: int, *, password: str | None = None, role: str | None = None,
               display_name: str | None = None, active: bool | None = None) -> AdminUser:
        user = self.get(user_id)
        if role is not None:
            _check_role(role)
        if (role not in (None, "admin") or active is False) and user.role == "admin" and user.active:
            self._keep_an_admin(user_id)
        with self.db.transaction() as db:
            if password is not None:
                check_password(password)
                db.execute("UPDATE admin_users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), user_id))
                db.execute("DELETE FROM panel_sessions WHERE user_id = ?", (user_id,))  # sign out everywhere
            if active is False:
                db.execute("DELETE FROM panel_sessions WHERE user_id = ?", (user_id,))
            for column, value in (("role", role), ("display_name", display_name), ("active", active)):
                if value is not None:
                    db.execute(f"UPDATE admin_users SET {column} = ? WHERE id = ?", (value, user_id))
            db.execute("UPDATE admin_users SET modified = ? WHERE id = ?", (time.time(), user_id))
        return self.get(user_id)

    def delete(self, user_id: int) -> None:
        user = self.get(user_id)
        if user.role == "admin" and user.active:
            self._keep_an_admin(user_id)
        self.db.execute("DELETE FROM admin_users WHERE id = ?", (user_id,))

    def _keep_an_admin(self, user_id: int) -> None:
        others = self.db.query("SELECT 1 FROM admin_users WHERE role = 'admin' AND active AND id != ?", (user_id,))
        if not others:
            raise StoreError("the panel must keep at least one active admin")

    def verify(self, name: str, password: str) -> AdminUser | None:
        """The user these credentials are, or None. Takes an argon2 check's time whether the name exists or not."""
        rows = self.db.query("SELECT id, password_hash, active FROM admin_users WHERE name = ?", (name,))
        stored = rows[0]["password_hash"] if rows else _DUMMY_HASH
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows or not rows[0]["active"]:
            return None
        user_id = rows[0]["id"]
        if _hasher.check_needs_rehash(stored):
            self.db.execute("UPDATE admin_users SET password_hash = ? WHERE id = ?", (_hasher.hash(password), user_id))
        return self.get(user_id)

    # Sessions

    def sign_in(self, user: AdminUser) -> str:
        """A new session for the user: its token (for the cookie)."""
        token, now = secrets.token_urlsafe(32), time.time()
        self.db.execute("INSERT INTO panel_sessions (token_hash, user_id, csrf, created, last_seen) "
                        "VALUES (?, ?, ?, ?, ?)", (_hash_token(token), user.id, secrets.token_urlsafe(32), now, now))
        return token

    def session(self, token: str) -> PanelSession | None:
        """The signed-in session of this token, still valid (its last-seen time is updated), or None."""
        now = time.time()
        rows = self.db.query(
            "SELECT s.user_id, s.csrf, s.created, s.last_seen FROM panel_sessions s "
            "JOIN admin_users u ON u.id = s.user_id WHERE s.token_hash = ? AND u.active", (_hash_token(token),))
        if not rows:
            return None
        row = rows[0]
        if now - row["last_seen"] > SESSION_IDLE_SECONDS or now - row["created"] > SESSION_MAX_SECONDS:
            self.sign_out(token)
            return None
        self.db.execute("UPDATE panel_sessions SET last_seen = ? WHERE token_hash = ?", (now, _hash_token(token)))
        return PanelSession(self.get(row["user_id"]), row["csrf"])

    def sign_out(self, token: str) -> None:
        self.db.execute("DELETE FROM panel_sessions WHERE token_hash = ?", (_hash_token(token),))


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise StoreError(f"the role is one of {', '.join(ROLES)}")
