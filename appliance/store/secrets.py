"""Application secrets, read by scenarios with VoxEngine.getSecretValue(name)."""

from __future__ import annotations

import re
import time

from appliance.store.db import Database, StoreError

SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}\Z")
SECRET_VALUE_MAX_CHARS = 8192


class SecretStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, application_id: int, name: str, value: str, description: str = "") -> None:
        if not SECRET_NAME.match(name):
            raise StoreError("a secret name starts with a Latin letter and has at most 64 of [A-Za-z0-9_]")
        if len(value) > SECRET_VALUE_MAX_CHARS:
            raise StoreError(f"a secret value has at most {SECRET_VALUE_MAX_CHARS} characters")
        self.db.execute(
            "INSERT INTO secrets (application_id, name, value, description, created) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (application_id, name) DO UPDATE SET value = excluded.value, "
            "description = excluded.description",
            (application_id, name, value, description, time.time()),
        )

    def values(self, application_id: int) -> dict[str, str]:
        rows = self.db.query("SELECT name, value FROM secrets WHERE application_id = ?", (application_id,))
        return {r["name"]: r["value"] for r in rows}
