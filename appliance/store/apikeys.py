"""API keys for the management API. Only a SHA-256 hash of each key is kept.

Keys are 256 random bits, so a fast hash is enough: there is nothing to guess from a leaked hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from appliance.store.db import Database


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, description: str = "") -> str:
        """A new key, returned once; only its hash is stored."""
        key = secrets.token_urlsafe(32)
        self.db.execute(
            "INSERT INTO api_keys (key_hash, description, created) VALUES (?, ?, ?)",
            (_hash(key), description, time.time()),
        )
        return key

    def check(self, key: str) -> bool:
        """Whether `key` is a valid key; notes its last use. Keys created meanwhile count at once."""
        rows = self.db.query("SELECT id FROM api_keys WHERE key_hash = ?", (_hash(key),))
        if rows:
            self.db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (time.time(), rows[0]["id"]))
        return bool(rows)
