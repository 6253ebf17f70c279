"""Outbound routes as the store keeps them (migration 0003): which line a dialled number goes out through.

Routes are checked here, when they are written, so the picker (appliance/lines/outbound.py) can trust
what it reads: a valid pattern, a rewrite that only yields dialable characters, a usable caller-ID policy.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.patterns import compile_pattern
from appliance.store.db import Conflict, Database, NotFound, StoreError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}\Z")  # of routes and of lines: as TRUNK_NAME in store/sip.py
PREPEND = re.compile(r"^[0-9+*#]*\Z")
CALLERID_POLICIES = ("pass", "fixed", "anonymous")
# What update() may change: position goes through reorder(), id and created never change.
EDITABLE = ("name", "pattern", "line", "strip_digits", "prepend", "callerid_policy", "callerid_value",
            "international", "max_concurrent", "enabled")


@dataclass(frozen=True)
class OutboundRoute:
    id: int
    name: str
    pattern: str  # must match the whole (normalised) dialled number
    line: str  # the line's name: its kind (SIP trunk, GSM, analog) is the line's business
    strip_digits: int = 0  # leading characters removed before dialling...
    prepend: str = ""  # ...then this is put in front
    callerid_policy: str = "pass"  # pass: the scenario's caller ID, fixed: callerid_value, anonymous
    callerid_value: str = ""  # used by the 'fixed' policy only
    international: bool = False  # numbers starting with '+' or '00' may go through it
    max_concurrent: int = 0  # calls at once; 0: no limit
    position: int = 0
    enabled: bool = True


class OutboundRouteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, pattern: str, line: str, *, strip_digits: int = 0, prepend: str = "",
            callerid_policy: str = "pass", callerid_value: str = "", international: bool = False,
            max_concurrent: int = 0, enabled: bool = True) -> OutboundRoute:
        """A new route, tried after the existing ones."""
        route = OutboundRoute(0, name, pattern, line, strip_digits, prepend, callerid_policy, callerid_value,
                              international, max_concurrent, 0, enabled)
        _check(route)
        position = self.db.query("SELECT COALESCE(MAX(position), -1) + 1 AS p FROM outbound_routes")[0]["p"]
        try:
            cursor = self.db.execute(
                "INSERT INTO outbound_routes (name, pattern, line, strip_digits, prepend, callerid_policy, "
                "callerid_value, international, max_concurrent, position, enabled, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, pattern, line, strip_digits, prepend, callerid_policy, callerid_value, international,
                 max_concurrent, position, enabled, time.time()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"outbound route {name!r} already exists") from None
        return self.get(cursor.lastrowid or 0)

    def update(self, route_id: int, **fields: Any) -> OutboundRoute:
        """Change some of a route's fields (those in EDITABLE); the result is checked as a whole."""
        unknown = sorted(set(fields) - set(EDITABLE))
        if unknown:
            raise StoreError(f"an outbound route has no editable field {', '.join(unknown)}")
        route = dataclasses.replace(self.get(route_id), **fields)
        _check(route)
        try:
            self.db.execute(f"UPDATE outbound_routes SET {', '.join(f'{f} = ?' for f in EDITABLE)} WHERE id = ?",
                            (*[getattr(route, f) for f in EDITABLE], route_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"outbound route {route.name!r} already exists") from None
        return self.get(route_id)

    def remove(self, key: int | str) -> None:
        """Remove the route with this id (an int) or name (a str)."""
        column = "id" if isinstance(key, int) else "name"
        if not self.db.execute(f"DELETE FROM outbound_routes WHERE {column} = ?", (key,)).rowcount:
            raise NotFound(f"no outbound route {key!r}")

    def get(self, route_id: int) -> OutboundRoute:
        rows = self.db.query("SELECT * FROM outbound_routes WHERE id = ?", (route_id,))
        if not rows:
            raise NotFound(f"no outbound route {route_id}")
        return _route(rows[0])

    def list(self) -> list[OutboundRoute]:
        """All routes, enabled or not, in the order they are tried."""
        return [_route(r) for r in self.db.query("SELECT * FROM outbound_routes ORDER BY position, id")]

    def reorder(self, route_ids: Sequence[int]) -> None:
        """Try the routes in this order, which must list every route once."""
        current = {r.id for r in self.list()}
        if set(route_ids) != current or len(route_ids) != len(current):
            raise StoreError("the new order must list every outbound route once")
        with self.db.transaction() as db:  # all positions change, or none
            for position, route_id in enumerate(route_ids):
                db.execute("UPDATE outbound_routes SET position = ? WHERE id = ?", (position, route_id))


def _check(route: OutboundRoute) -> None:
    if not NAME.match(route.name):
        raise StoreError(f"invalid outbound route name {route.name!r}: up to 64 of [A-Za-z0-9._-], "
                         "starting with a letter or digit")
    try:
        compile_pattern(route.pattern, "route")
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    if not NAME.match(route.line):
        raise StoreError(f"invalid line name {route.line!r} for outbound route {route.name!r}")
    if route.strip_digits < 0:
        raise StoreError(f"outbound route {route.name!r}: strip_digits cannot be negative ({route.strip_digits})")
    if not PREPEND.match(route.prepend):
        raise StoreError(f"outbound route {route.name!r}: prepend may hold digits, +, * and # only, "
                         f"not {route.prepend!r}")
    if route.callerid_policy not in CALLERID_POLICIES:
        raise StoreError(f"outbound route {route.name!r}: the caller ID policy is one of "
                         f"{', '.join(CALLERID_POLICIES)}, not {route.callerid_policy!r}")
    if route.callerid_policy == "fixed" and not route.callerid_value:
        raise StoreError(f"outbound route {route.name!r}: a fixed caller ID needs a number")
    if route.max_concurrent < 0:
        raise StoreError(f"outbound route {route.name!r}: max_concurrent cannot be negative "
                         f"({route.max_concurrent}); 0 means no limit")


def _route(row: sqlite3.Row) -> OutboundRoute:
    return OutboundRoute(row["id"], row["name"], row["pattern"], row["line"], row["strip_digits"], row["prepend"],
                         row["callerid_policy"], row["callerid_value"], bool(row["international"]),
                         row["max_concurrent"], row["position"], bool(row["enabled"]))
