"""The SQLite database: opening, migrations, transactions, and a thread to run queries off the loop.

Every table access goes through one connection used from one thread (`Database.call` runs a function
on it from asyncio), so the event loop never waits on the disk and writers never contend.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_ACCOUNT_ID = 1


class StoreError(ApplianceError):
    """A store operation was refused (unknown object, duplicate name, bad value)."""


class NotFound(StoreError, LookupError):
    pass


class Conflict(StoreError, ValueError):
    pass


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("appliance.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """One SQLite database file (or ':memory:') with the schema brought up to date on open."""

    def __init__(self, path: Path | str, account_name: str = "voxgate") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="store")
        self._closed = False
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA busy_timeout = 5000")
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM account").fetchone() is None:
                db.execute(
                    "INSERT INTO account (id, name, created) VALUES (?, ?, ?)",
                    (DEFAULT_ACCOUNT_ID, account_name, time.time()),
                )

    def _migrate(self) -> None:
        current = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for version, name, sql in _migrations():
            if version <= current:
                continue
            log.info("store %s: applying migration %s", self.path, name)
            try:
                self._conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StoreError(f"{self.path}: migration {name} failed: {exc}") from exc

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises. Inside another transaction (a store
        call made by a management API method, which runs in one) it is a savepoint of that one."""
        if self._conn.in_transaction:
            self._conn.execute("SAVEPOINT inner")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK TO inner")
                self._conn.execute("RELEASE inner")
                raise
            self._conn.execute("RELEASE inner")
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the store's thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        """Finish queued work and close the file; safe twice."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._conn.close()
