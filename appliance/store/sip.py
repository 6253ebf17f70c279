"""SIP users and trunks as the store keeps them (migrations 0002 and 0006)."""

from __future__ import annotations

import dataclasses
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from appliance.store.db import Conflict, Database, NotFound, StoreError

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-+]{0,63}\Z")
TRUNK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}\Z")
TRANSPORTS = ("udp", "tcp", "tls")
PASSWORD_MAX_CHARS = 128
CUSTOM_DATA_MAX_CHARS = 200
DISPLAY_NAME_MAX_CHARS = 256


@dataclass(frozen=True)
class SipUser:
    id: int
    name: str
    password: str
    display_name: str
    application_id: int | None
    active: bool = True  # an inactive user cannot register or call
    custom_data: str = ""
    created: float = 0.0
    modified: float | None = None


@dataclass(frozen=True)
class SipTrunk:
    id: int
    name: str
    host: str
    port: int | None
    transport: str
    username: str
    password: str
    register: bool
    application_id: int | None
    rule_id: int | None = None  # incoming calls run this rule, whatever they dial
    auth_user: str = ""  # digest user name when it is not `username`


# What update_user() and update_trunk() may change.
USER_FIELDS = ("name", "password", "display_name", "application_id", "active", "custom_data")
TRUNK_FIELDS = ("name", "host", "port", "transport", "username", "password", "register", "application_id",
                "rule_id", "auth_user")


def new_password() -> str:
    return secrets.token_urlsafe(12)


class SipLineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_user(self, name: str, password: str, display_name: str = "", application_id: int | None = None,
                 active: bool = True, custom_data: str = "") -> SipUser:
        _check_user(SipUser(0, name, password, display_name, application_id, active, custom_data))
        try:
            cursor = self.db.execute(
                "INSERT INTO sip_users (name, password, display_name, application_id, active, custom_data, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, password, display_name, application_id, active, custom_data, time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"SIP user {name!r} already exists") from None
        return self.user(cursor.lastrowid or 0)

    def update_user(self, user_id: int, **fields: Any) -> SipUser:
        user = dataclasses.replace(self.user(user_id), **_editable(fields, USER_FIELDS))
        _check_user(user)
        try:
            self.db.execute(
                f"UPDATE sip_users SET {', '.join(f'{f} = ?' for f in USER_FIELDS)}, modified = ? WHERE id = ?",
                (*[getattr(user, f) for f in USER_FIELDS], time.time(), user_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"SIP user {user.name!r} already exists") from None
        return self.user(user_id)

    def delete_user(self, user_id: int) -> None:
        if not self.db.execute("DELETE FROM sip_users WHERE id = ?", (user_id,)).rowcount:
            raise NotFound(f"no SIP user {user_id}")

    def user(self, user_id: int) -> SipUser:
        rows = self.db.query("SELECT * FROM sip_users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound(f"no SIP user {user_id}")
        return _user(rows[0])

    def users(self) -> list[SipUser]:
        return [_user(r) for r in self.db.query("SELECT * FROM sip_users ORDER BY id")]

    def add_trunk(self, name: str, host: str, port: int | None = None, transport: str = "udp", username: str = "",
                  password: str = "", register: bool = False, application_id: int | None = None,
                  rule_id: int | None = None, auth_user: str = "") -> SipTrunk:
        _check_trunk(SipTrunk(0, name, host, port, transport, username, password, register, application_id, rule_id,
                              auth_user))
        try:
            cursor = self.db.execute(
                "INSERT INTO sip_trunks (name, host, port, transport, username, password, register, application_id, "
                "rule_id, auth_user, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, host, port, transport, username, password, int(register), application_id, rule_id, auth_user,
                 time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"trunk {name!r} already exists") from None
        return self.trunk(cursor.lastrowid or 0)

    def update_trunk(self, trunk_id: int, **fields: Any) -> SipTrunk:
        trunk = dataclasses.replace(self.trunk(trunk_id), **_editable(fields, TRUNK_FIELDS))
        _check_trunk(trunk)
        try:
            self.db.execute(f"UPDATE sip_trunks SET {', '.join(f'{f} = ?' for f in TRUNK_FIELDS)} WHERE id = ?",
                            (*[getattr(trunk, f) for f in TRUNK_FIELDS], trunk_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"trunk {trunk.name!r} already exists") from None
        return self.trunk(trunk_id)

    def delete_trunk(self, trunk_id: int) -> None:
        if not self.db.execute("DELETE FROM sip_trunks WHERE id = ?", (trunk_id,)).rowcount:
            raise NotFound(f"no SIP trunk {trunk_id}")

    def trunk(self, trunk_id: int) -> SipTrunk:
        rows = self.db.query("SELECT * FROM sip_trunks WHERE id = ?", (trunk_id,))
        if not rows:
            raise NotFound(f"no SIP trunk {trunk_id}")
        return _trunk(rows[0])

    def remove(self, name: str) -> str:
        """Remove the user or trunk called `name`; which of the two it was."""
        for kind, table in (("user", "sip_users"), ("trunk", "sip_trunks")):
            if self.db.execute(f"DELETE FROM {table} WHERE name = ?", (name,)).rowcount:
                return kind
        raise NotFound(f"no SIP user or trunk named {name!r}")

    def trunks(self) -> list[SipTrunk]:
        return [_trunk(r) for r in self.db.query("SELECT * FROM sip_trunks ORDER BY id")]


def _editable(fields: dict[str, Any], editable: tuple[str, ...]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(editable))
    if unknown:
        raise StoreError(f"no editable field {', '.join(unknown)}")
    return fields


def _check_user(user: SipUser) -> None:
    if not USER_NAME.match(user.name):
        raise StoreError(f"invalid SIP user name {user.name!r}: up to 64 of [A-Za-z0-9._-+], not starting with a sign")
    if not user.password or len(user.password) > PASSWORD_MAX_CHARS:
        raise StoreError(f"a SIP password has 1 to {PASSWORD_MAX_CHARS} characters")
    if len(user.display_name) > DISPLAY_NAME_MAX_CHARS:
        raise StoreError(f"a display name has at most {DISPLAY_NAME_MAX_CHARS} characters")
    if len(user.custom_data) > CUSTOM_DATA_MAX_CHARS:
        raise StoreError(f"a user's custom data has at most {CUSTOM_DATA_MAX_CHARS} characters")


def _check_trunk(trunk: SipTrunk) -> None:
    if not TRUNK_NAME.match(trunk.name):
        raise StoreError(f"invalid trunk name {trunk.name!r}: up to 64 of [A-Za-z0-9._-]")
    if not trunk.host or any(c.isspace() or c in "@;<>" for c in trunk.host):
        raise StoreError(f"invalid trunk host {trunk.host!r}: an IP address or a DNS name")
    if trunk.transport not in TRANSPORTS:
        raise StoreError(f"a trunk's transport is one of {', '.join(TRANSPORTS)}, not {trunk.transport!r}")
    if trunk.port is not None and not 0 < trunk.port < 65536:
        raise StoreError(f"bad trunk port {trunk.port}")
    if trunk.register and not trunk.username:
        raise StoreError("a trunk that registers needs a username")
    if len(trunk.password) > PASSWORD_MAX_CHARS:
        raise StoreError(f"a SIP password has at most {PASSWORD_MAX_CHARS} characters")


def _user(row: sqlite3.Row) -> SipUser:
    return SipUser(row["id"], row["name"], row["password"], row["display_name"], row["application_id"],
                   bool(row["active"]), row["custom_data"], row["created"], row["modified"])


def _trunk(row: sqlite3.Row) -> SipTrunk:
    return SipTrunk(row["id"], row["name"], row["host"], row["port"], row["transport"], row["username"],
                    row["password"], bool(row["register"]), row["application_id"], row["rule_id"], row["auth_user"])
