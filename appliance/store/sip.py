"""SIP users and trunks as the store keeps them (migration 0002)."""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from dataclasses import dataclass

from appliance.store.db import Conflict, Database, NotFound, StoreError

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-+]{0,63}\Z")
TRUNK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}\Z")
TRANSPORTS = ("udp", "tcp", "tls")
PASSWORD_MAX_CHARS = 128


@dataclass(frozen=True)
class SipUser:
    id: int
    name: str
    password: str
    display_name: str
    application_id: int | None


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


def new_password() -> str:
    return secrets.token_urlsafe(12)


class SipLineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_user(self, name: str, password: str, display_name: str = "", application_id: int | None = None) -> SipUser:
        if not USER_NAME.match(name):
            raise StoreError(f"invalid SIP user name {name!r}: up to 64 of [A-Za-z0-9._-+], not starting with a sign")
        if not password or len(password) > PASSWORD_MAX_CHARS:
            raise StoreError(f"a SIP password has 1 to {PASSWORD_MAX_CHARS} characters")
        try:
            cursor = self.db.execute(
                "INSERT INTO sip_users (name, password, display_name, application_id, created) VALUES (?, ?, ?, ?, ?)",
                (name, password, display_name, application_id, time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"SIP user {name!r} already exists") from None
        return self.user(cursor.lastrowid or 0)

    def user(self, user_id: int) -> SipUser:
        rows = self.db.query("SELECT * FROM sip_users WHERE id = ?", (user_id,))
        if not rows:
            raise NotFound(f"no SIP user {user_id}")
        return _user(rows[0])

    def users(self) -> list[SipUser]:
        return [_user(r) for r in self.db.query("SELECT * FROM sip_users ORDER BY id")]

    def add_trunk(self, name: str, host: str, port: int | None = None, transport: str = "udp", username: str = "",
                  password: str = "", register: bool = False, application_id: int | None = None) -> SipTrunk:
        if not TRUNK_NAME.match(name):
            raise StoreError(f"invalid trunk name {name!r}")
        if transport not in TRANSPORTS:
            raise StoreError(f"a trunk's transport is one of {', '.join(TRANSPORTS)}, not {transport!r}")
        if port is not None and not 0 < port < 65536:
            raise StoreError(f"bad trunk port {port}")
        if register and not username:
            raise StoreError("a trunk that registers needs a username")
        try:
            cursor = self.db.execute(
                "INSERT INTO sip_trunks (name, host, port, transport, username, password, register, application_id, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, host, port, transport, username, password, int(register), application_id, time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"trunk {name!r} already exists") from None
        rows = self.db.query("SELECT * FROM sip_trunks WHERE id = ?", (cursor.lastrowid,))
        return _trunk(rows[0])

    def remove(self, name: str) -> str:
        """Remove the user or trunk called `name`; which of the two it was."""
        for kind, table in (("user", "sip_users"), ("trunk", "sip_trunks")):
            if self.db.execute(f"DELETE FROM {table} WHERE name = ?", (name,)).rowcount:
                return kind
        raise NotFound(f"no SIP user or trunk named {name!r}")

    def trunks(self) -> list[SipTrunk]:
        return [_trunk(r) for r in self.db.query("SELECT * FROM sip_trunks ORDER BY id")]


def _user(row: sqlite3.Row) -> SipUser:
    return SipUser(row["id"], row["name"], row["password"], row["display_name"], row["application_id"])


def _trunk(row: sqlite3.Row) -> SipTrunk:
    return SipTrunk(row["id"], row["name"], row["host"], row["port"], row["transport"], row["username"],
                    row["password"], bool(row["register"]), row["application_id"])
