"""Application secrets, read by scenarios with VoxEngine.getSecretValue(name)."""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from appliance.store.db import Conflict, Database, NotFound, StoreError

SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")
SECRET_VALUE_MAX_CHARS = 8192


DESCRIPTION_MAX_CHARS = 1000


@dataclass(frozen=True)
class SecretInfo:
    """A secret without its value (what listings show)."""

    id: int
    name: str
    description: str
    created: float
    modified: float


def _check(name: str, value: str, description: str) -> None:
    if not SECRET_NAME.match(name):
        raise StoreError("a secret name starts with a Latin letter and has at most 64 of [A-Za-z0-9_]")
    if len(value) > SECRET_VALUE_MAX_CHARS:
        raise StoreError(f"a secret value has at most {SECRET_VALUE_MAX_CHARS} characters")
    if len(description) > DESCRIPTION_MAX_CHARS:
        raise StoreError(f"a secret's description has at most {DESCRIPTION_MAX_CHARS} characters")


class SecretStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, application_id: int, name: str, value: str, description: str = "") -> int:
        """A new secret's id; Conflict if the application has one of that name."""
        _check(name, value, description)
        try:
            cur = self.db.execute(
                "INSERT INTO secrets (application_id, name, value, description, created) VALUES (?, ?, ?, ?, ?)",
                (application_id, name, value, description, time.time()))
        except sqlite3.IntegrityError:
            raise Conflict(f"the application already has a secret {name!r}") from None
        return int(cur.lastrowid or 0)

    def infos(self, application_id: int) -> list[SecretInfo]:
        rows = self.db.query("SELECT rowid, name, description, created, modified FROM secrets "
                             "WHERE application_id = ? ORDER BY name", (application_id,))
        return [SecretInfo(r["rowid"], r["name"], r["description"], r["created"], r["modified"] or r["created"])
                for r in rows]

    def find(self, application_id: int, *, secret_id: int | None = None, name: str | None = None) -> SecretInfo:
        for info in self.infos(application_id):
            if info.id == secret_id or info.name == name:
                return info
        raise NotFound(f"no secret {name if name is not None else secret_id}")

    def value(self, application_id: int, secret_id: int) -> str:
        rows = self.db.query("SELECT value FROM secrets WHERE application_id = ? AND rowid = ?",
                             (application_id, secret_id))
        if not rows:
            raise NotFound(f"no secret {secret_id}")
        return str(rows[0]["value"])

    def update(self, application_id: int, secret_id: int, *, name: str | None = None, value: str | None = None,
               description: str | None = None) -> None:
        current = self.find(application_id, secret_id=secret_id)
        new_name = current.name if name is None else name
        new_value = self.value(application_id, secret_id) if value is None else value
        new_description = current.description if description is None else description
        _check(new_name, new_value, new_description)
        try:
            self.db.execute("UPDATE secrets SET name = ?, value = ?, description = ?, modified = ? WHERE rowid = ?",
                            (new_name, new_value, new_description, time.time(), secret_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"the application already has a secret {new_name!r}") from None

    def delete(self, application_id: int, secret_id: int) -> None:
        if not self.db.execute("DELETE FROM secrets WHERE application_id = ? AND rowid = ?",
                               (application_id, secret_id)).rowcount:
            raise NotFound(f"no secret {secret_id}")

    def put(self, application_id: int, name: str, value: str, description: str = "") -> None:
        """Create or replace a secret (the CLI and tests)."""
        _check(name, value, description)
        self.db.execute(
            "INSERT INTO secrets (application_id, name, value, description, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (application_id, name) DO UPDATE SET value = excluded.value, "
            "description = excluded.description",
            (application_id, name, value, description, time.time()),
        )

    def values(self, application_id: int) -> dict[str, str]:
        rows = self.db.query("SELECT name, value FROM secrets WHERE application_id = ?", (application_id,))
        return {r["name"]: r["value"] for r in rows}
