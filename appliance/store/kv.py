"""Key-value storage per application (VoxEngine's ApplicationStorage), with expiry and namespaces.

A key's namespace is the part before its first ':' ("test:1234" is in "test"). Expired keys are
invisible at once and deleted by `purge_expired`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from appliance.store.db import Database, StoreError

KEY_MAX_CHARS = 200
VALUE_MAX_CHARS = 2000
TTL_MAX_SECONDS = 7_776_000  # 90 days
KEYS_PAGE_DEFAULT = 1000


@dataclass(frozen=True)
class Item:
    key: str
    value: str
    expire_at: int  # Unix seconds


def validate(key: str, value: str | None = None, ttl: float | None = None) -> None:
    if not key or len(key) > KEY_MAX_CHARS:
        raise StoreError(f"a storage key must have 1 to {KEY_MAX_CHARS} characters")
    if value is not None and len(value) > VALUE_MAX_CHARS:
        raise StoreError(f"a storage value must have at most {VALUE_MAX_CHARS} characters")
    if ttl is not None and not 0 <= ttl <= TTL_MAX_SECONDS:
        raise StoreError(f"ttl must be between 0 and {TTL_MAX_SECONDS} seconds")


class KeyValueStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, application_id: int, key: str, value: str, ttl: float, now: float) -> Item:
        """Upsert; a ttl of 0 keeps the key for the longest time allowed (90 days)."""
        validate(key, value, ttl)
        expire_at = int(now + (ttl or TTL_MAX_SECONDS))
        self.db.execute(
            "INSERT INTO kv (application_id, key, value, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (application_id, key) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at",
            (application_id, key, value, expire_at),
        )
        return Item(key, value, expire_at)

    def get(self, application_id: int, key: str, now: float) -> Item | None:
        validate(key)
        rows = self.db.query(
            "SELECT key, value, expires_at FROM kv WHERE application_id = ? AND key = ? AND expires_at > ?",
            (application_id, key, now),
        )
        return Item(rows[0]["key"], rows[0]["value"], int(rows[0]["expires_at"])) if rows else None

    def remove(self, application_id: int, key: str) -> Item:
        validate(key)
        self.db.execute("DELETE FROM kv WHERE application_id = ? AND key = ?", (application_id, key))
        return Item(key, "", 0)

    def keys(self, application_id: int, pattern: str | None, count: int, now: float) -> list[str]:
        """Live keys, sorted; `pattern` is a namespace ("test" lists "test:*") or a glob with '*'."""
        count = max(1, min(int(count or KEYS_PAGE_DEFAULT), KEYS_PAGE_DEFAULT))
        rows = self.db.query(
            "SELECT key FROM kv WHERE application_id = ? AND expires_at > ? ORDER BY key",
            (application_id, now),
        )
        keys = [r["key"] for r in rows]
        if pattern:
            glob = pattern if any(c in pattern for c in "*?[") else pattern + ":*"
            keys = [k for k in keys if fnmatch.fnmatchcase(k, glob)]
        return keys[:count]

    def items(self, application_id: int, prefix: str, now: float, count: int, offset: int) -> tuple[list[Item], int]:
        """A page of the live items whose key starts with `prefix`, sorted by key, and how many there are."""
        rows = self.db.query(
            "SELECT key, value, expires_at FROM kv WHERE application_id = ? AND expires_at > ? AND "
            "substr(key, 1, ?) = ? ORDER BY key", (application_id, now, len(prefix), prefix))
        page = rows[offset:offset + count]
        return [Item(r["key"], r["value"], int(r["expires_at"])) for r in page], len(rows)

    def purge_expired(self, now: float) -> int:
        return self.db.execute("DELETE FROM kv WHERE expires_at <= ?", (now,)).rowcount
