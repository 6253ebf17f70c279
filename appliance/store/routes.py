"""Outbound routes as the store keeps them (migrations 0005 and 0008): which line a dialled number goes
out through, and the toll-fraud guards on it.

Routes are checked here, when they are written, so the picker (appliance/lines/outbound.py) can trust
what it reads: a valid pattern, a rewrite that only yields dialable characters, a usable caller-ID policy,
opening hours that parse, limits in range.

Opening hours (`Hours`) are comma-separated windows, each `[DAYS] [HH:MM-HH:MM]`: DAYS is one or more of
mon..sun or ranges of them (`mon-fri`, `fri-mon` wraps over the weekend), all days when left out; the
times default to the whole day, `24:00` may end a window, and a window whose end is not after its start
runs past midnight into the next morning (`fri 22:00-06:00` is Friday 22:00 to Saturday 06:00). Windows
may overlap; the route is open when any window is. '' means always open. Times are the box's local time.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.patterns import compile_pattern
from appliance.store.db import Conflict, Database, NotFound, StoreError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}\Z")  # of routes and of lines: as TRUNK_NAME in store/sip.py
PREPEND = re.compile(r"^[0-9+*#]*\Z")
CALLERID_POLICIES = ("pass", "fixed", "anonymous")
# What update() may change: position goes through reorder(), id and created never change.
EDITABLE = ("name", "pattern", "line", "strip_digits", "prepend", "callerid_policy", "callerid_value",
            "international", "max_concurrent", "enabled", "hours", "max_duration", "max_calls_per_hour")

# Limits of the guards' settings.
HOURS_MAX_CHARS = 500  # of a route's opening hours text
MAX_DURATION_LIMIT = 86_400  # seconds: the longest call length a route can be set to allow (a day)
MAX_CALLS_PER_HOUR_LIMIT = 100_000  # the highest calls-per-hour limit a route can have

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # as datetime.weekday() counts them
DAY_MINUTES = 24 * 60
CLOCK_TIME = re.compile(r"(\d{1,2}):(\d{2})\Z")
TIMEISH = re.compile(r"[\d:]")  # a token meant as times, not days


@dataclass(frozen=True)
class Window:
    """One opening window: from `start` on each of `days` until `end` (minutes after midnight).

    An `end` not after `start` falls on the next day: the window runs past midnight."""

    days: frozenset[int]  # 0: Monday ... 6: Sunday
    start: int
    end: int  # up to DAY_MINUTES (24:00)

    def is_open(self, day: int, minute: int) -> bool:
        if self.start < self.end:
            return day in self.days and self.start <= minute < self.end
        return (day in self.days and minute >= self.start) or ((day - 1) % 7 in self.days and minute < self.end)


@dataclass(frozen=True)
class Hours:
    """A route's opening hours (the module's docstring has the syntax); no windows: always open."""

    windows: tuple[Window, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Hours:
        """The hours `text` gives; a ValueError naming the bad part if it is not valid."""
        text = text.strip()
        if not text:
            return cls()
        if len(text) > HOURS_MAX_CHARS:
            raise ValueError(f"at most {HOURS_MAX_CHARS} characters")
        return cls(tuple(_window(part.strip()) for part in text.lower().split(",")), text)

    def serialize(self) -> str:
        return self.text

    @property
    def always(self) -> bool:
        return not self.windows

    def is_open(self, at: datetime) -> bool:
        """Whether the route may be used at `at`, a wall-clock time of the box's time zone."""
        day, minute = at.weekday(), at.hour * 60 + at.minute
        return self.always or any(w.is_open(day, minute) for w in self.windows)


def _window(part: str) -> Window:
    if not part:
        raise ValueError("an empty window (two commas, or a comma at an end)")
    tokens = part.split()
    start, end = 0, DAY_MINUTES
    if TIMEISH.search(tokens[-1]):
        start, end = _times(tokens.pop())
    days: set[int] = set()
    for token in tokens:
        if TIMEISH.search(token):
            raise ValueError(f"{part!r}: one time range per window, after the days")
        days.update(_days(token))
    return Window(frozenset(days) if days else frozenset(range(7)), start, end)


def _days(token: str) -> list[int]:
    first, sep, last = token.partition("-")
    begin, finish = _day(first, token), _day(last, token) if sep else None
    if finish is None:
        return [begin]
    return [(begin + i) % 7 for i in range((finish - begin) % 7 + 1)]  # fri-mon wraps over the weekend


def _day(name: str, token: str) -> int:
    if name not in DAYS:
        where = "" if name == token else f" in {token!r}"
        raise ValueError(f"unknown day {name!r}{where} (days are {', '.join(DAYS)})")
    return DAYS.index(name)


def _times(token: str) -> tuple[int, int]:
    first, sep, last = token.partition("-")
    if not sep:
        raise ValueError(f"{token!r}: a time range is HH:MM-HH:MM")
    start, end = _minute(first, token, end=False), _minute(last, token, end=True)
    if start == end:
        raise ValueError(f"{token!r} is empty: its start and end are the same (00:00-24:00 is the whole day)")
    return start, end


def _minute(text: str, token: str, *, end: bool) -> int:
    match = CLOCK_TIME.match(text)
    if not match:
        raise ValueError(f"{text!r} in {token!r} is not a time: expected HH:MM")
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not end)):
        raise ValueError(f"{text!r} in {token!r} is not a time of day (00:00 to 23:59; 24:00 may end a window)")
    return hour * 60 + minute


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
    hours: str = ""  # when the route may be used (Hours syntax); '': always
    max_duration: int = 0  # seconds from connect after which the box hangs its calls up; 0: no limit
    max_calls_per_hour: int = 0  # calls it may put through in any 60 minutes; 0: no limit


class OutboundRouteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, pattern: str, line: str, *, strip_digits: int = 0, prepend: str = "",
            callerid_policy: str = "pass", callerid_value: str = "", international: bool = False,
            max_concurrent: int = 0, enabled: bool = True, hours: str = "", max_duration: int = 0,
            max_calls_per_hour: int = 0) -> OutboundRoute:
        """A new route, tried after the existing ones."""
        route = OutboundRoute(0, name, pattern, line, strip_digits, prepend, callerid_policy, callerid_value,
                              international, max_concurrent, 0, enabled, hours.strip(), max_duration,
                              max_calls_per_hour)
        _check(route)
        position = self.db.query("SELECT COALESCE(MAX(position), -1) + 1 AS p FROM outbound_routes")[0]["p"]
        try:
            cursor = self.db.execute(
                "INSERT INTO outbound_routes (name, pattern, line, strip_digits, prepend, callerid_policy, "
                "callerid_value, international, max_concurrent, position, enabled, created, hours, max_duration, "
                "max_calls_per_hour) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, pattern, line, strip_digits, prepend, callerid_policy, callerid_value, international,
                 max_concurrent, position, enabled, time.time(), route.hours, max_duration, max_calls_per_hour),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"outbound route {name!r} already exists") from None
        return self.get(cursor.lastrowid or 0)

    def update(self, route_id: int, **fields: Any) -> OutboundRoute:
        """Change some of a route's fields (those in EDITABLE); the result is checked as a whole."""
        unknown = sorted(set(fields) - set(EDITABLE))
        if unknown:
            raise StoreError(f"an outbound route has no editable field {', '.join(unknown)}")
        if isinstance(fields.get("hours"), str):
            fields["hours"] = fields["hours"].strip()
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
    try:
        Hours.parse(route.hours)
    except ValueError as exc:
        raise StoreError(f"outbound route {route.name!r}: invalid hours {route.hours[:80]!r}: {exc}") from None
    for name, limit in (("max_duration", MAX_DURATION_LIMIT), ("max_calls_per_hour", MAX_CALLS_PER_HOUR_LIMIT)):
        value = getattr(route, name)
        if not 0 <= value <= limit:
            raise StoreError(f"outbound route {route.name!r}: {name} must be from 0 (no limit) to {limit}, "
                             f"not {value}")


def _route(row: sqlite3.Row) -> OutboundRoute:
    return OutboundRoute(row["id"], row["name"], row["pattern"], row["line"], row["strip_digits"], row["prepend"],
                         row["callerid_policy"], row["callerid_value"], bool(row["international"]),
                         row["max_concurrent"], row["position"], bool(row["enabled"]), row["hours"],
                         row["max_duration"], row["max_calls_per_hour"])
