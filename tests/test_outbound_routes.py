"""Outbound routes: kept in the store (checked when written), picked for a dialled number (order,
rewrite, caller ID, international guard, concurrency limit), dialled through a line, and managed with
`appliance route ...`. The toll-fraud guards (opening hours, calls per hour, call length) are
tested in test_route_guards.py.

The lines here are fakes that record what they are asked to dial: real trunk dialling is tested with
the SIP trunk tests.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from appliance.engine.calls import DialError
from appliance.legs.leg import Leg, LegState
from appliance.lines.line import Line, Originate
from appliance.lines.outbound import OutboundRoutes, Pick
from appliance.store.db import Conflict, Database, NotFound, StoreError
from appliance.store.routes import OutboundRoute, OutboundRouteStore

ROOT = Path(__file__).resolve().parent.parent
_leg_ids = itertools.count(1)


@dataclass
class FakeLeg:
    """What the picker looks at of a leg: its state (and the kind it sets)."""

    state: LegState = LegState.PROGRESSING
    kind: str = "sip"
    id: str = field(default_factory=lambda: f"leg-{next(_leg_ids)}")


@dataclass
class FakeLine:
    name: str
    kind: str = "sip-trunk"
    application_id: int | None = None
    rule_id: int | None = None
    dialled: list[tuple[str, Originate]] = field(default_factory=list)
    legs: list[FakeLeg] = field(default_factory=list)

    def status(self) -> dict[str, object]:
        return {"name": self.name}

    def originate(self, destination: str, options: Originate) -> Leg:
        self.dialled.append((destination, options))
        self.legs.append(FakeLeg())
        return cast(Leg, self.legs[-1])


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "voxgate.db")
    yield database
    database.close()


@pytest.fixture
def store(db: Database) -> OutboundRouteStore:
    return OutboundRouteStore(db)


def _pick(store: OutboundRouteStore, number: str, callerid: str = "74950000001") -> Pick:
    return OutboundRoutes(store.list()).pick(number, callerid)


def _dial_error(routes: OutboundRoutes, number: str, lines: dict[str, Line] | None = None) -> DialError:
    with pytest.raises(DialError) as info:
        routes.dial(number, Originate(caller="100"), lines or {})
    return info.value


# Store


def test_routes_are_added_with_defaults_and_listed_in_order(store: OutboundRouteStore) -> None:
    local = store.add("local", r"8\d{10}", "itsp")
    assert local == OutboundRoute(local.id, "local", r"8\d{10}", "itsp", position=0)
    intl = store.add("intl", r"\+\d+", "itsp2", strip_digits=1, prepend="00", callerid_policy="fixed",
                     callerid_value="74950000000", international=True, max_concurrent=3, enabled=False)
    assert intl == OutboundRoute(intl.id, "intl", r"\+\d+", "itsp2", 1, "00", "fixed", "74950000000", True, 3, 1,
                                 False)
    assert store.list() == [local, intl]
    assert store.get(intl.id) == intl


def test_the_table_comes_with_migration_3(db: Database) -> None:
    assert db.schema_version >= 3
    assert db.query("SELECT name FROM sqlite_master WHERE name = 'outbound_routes'")


def test_update_changes_fields_and_checks_the_result(store: OutboundRouteStore) -> None:
    route = store.add("r1", r"\d+", "itsp")
    changed = store.update(route.id, line="gsm1", callerid_policy="fixed", callerid_value="100", enabled=False)
    assert changed == OutboundRoute(route.id, "r1", r"\d+", "gsm1", callerid_policy="fixed", callerid_value="100",
                                    enabled=False)
    assert store.get(route.id) == changed
    with pytest.raises(StoreError, match="a fixed caller ID needs a number"):
        store.update(route.id, callerid_value="")
    with pytest.raises(StoreError, match="no editable field position"):
        store.update(route.id, position=5)
    store.add("r2", r"\d+", "itsp")
    with pytest.raises(Conflict, match="outbound route 'r2' already exists"):
        store.update(route.id, name="r2")
    with pytest.raises(NotFound, match="no outbound route 99"):
        store.update(99, line="x")
    assert store.get(route.id) == changed


def test_remove_by_id_or_name(store: OutboundRouteStore) -> None:
    first = store.add("first", r"1\d*", "itsp")
    store.add("second", r"2\d*", "itsp")
    store.remove(first.id)
    store.remove("second")
    assert store.list() == []
    with pytest.raises(NotFound, match="no outbound route 'second'"):
        store.remove("second")
    with pytest.raises(NotFound, match="no outbound route 7"):
        store.get(7)


def test_reorder(store: OutboundRouteStore) -> None:
    a, b, c = (store.add(name, r"\d+", "itsp") for name in "abc")
    store.reorder([c.id, a.id, b.id])
    assert [r.name for r in store.list()] == ["c", "a", "b"]
    with pytest.raises(StoreError, match="must list every outbound route once"):
        store.reorder([a.id, b.id])
    with pytest.raises(StoreError, match="must list every outbound route once"):
        store.reorder([a.id, b.id, c.id, c.id])
    assert [r.name for r in store.list()] == ["c", "a", "b"]


def test_a_duplicate_name_is_a_conflict(store: OutboundRouteStore) -> None:
    store.add("local", r"\d+", "itsp")
    with pytest.raises(Conflict, match="outbound route 'local' already exists"):
        store.add("local", r"8\d+", "other")


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "-local"}, "invalid outbound route name '-local'"),
    ({"name": "a b"}, "invalid outbound route name 'a b'"),
    ({"name": "x" * 65}, "invalid outbound route name"),
    ({"pattern": "8(\\d+"}, "invalid route pattern '8(\\\\d+': missing ), unterminated subpattern"),
    ({"line": ""}, "invalid line name '' for outbound route 'r'"),
    ({"line": "trunk one"}, "invalid line name 'trunk one'"),
    ({"strip_digits": -1}, "strip_digits cannot be negative"),
    ({"prepend": "9a"}, "prepend may hold digits, +, * and # only, not '9a'"),
    ({"callerid_policy": "hidden"}, "the caller ID policy is one of pass, fixed, anonymous, not 'hidden'"),
    ({"callerid_policy": "fixed"}, "a fixed caller ID needs a number"),
    ({"max_concurrent": -1}, "max_concurrent cannot be negative"),
])
def test_invalid_routes_are_refused(store: OutboundRouteStore, fields: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": "r", "pattern": r"\d+", "line": "itsp", **fields}
    with pytest.raises(StoreError, match=re.escape(message)):
        store.add(**args)
    assert store.list() == []


def test_a_leading_plus_in_a_pattern_is_a_literal_plus(store: OutboundRouteStore) -> None:
    store.add("e164", "+?[1-9]\\d{1,14}", "itsp", international=True)  # as Voximplant's docs write it
    assert _pick(store, "+74951234567").number == "+74951234567"


# Picking


def test_the_first_enabled_matching_route_in_position_order_wins(store: OutboundRouteStore) -> None:
    mobile = store.add("mobile", r"89\d{9}", "gsm1")
    store.add("any", r"\d+", "itsp")
    off = store.add("off", r"8\d{10}", "broken", enabled=False)
    assert _pick(store, "89161234567").route.name == "mobile"
    assert _pick(store, "84951234567").line_name == "itsp"
    store.reorder([off.id, store.list()[1].id, mobile.id])
    store.update(off.id, enabled=True)
    assert _pick(store, "89161234567").line_name == "broken"


def test_the_number_is_normalised_then_rewritten(store: OutboundRouteStore) -> None:
    store.add("moscow", r"8495\d{7}", "itsp", strip_digits=1, prepend="+7", international=True)
    pick = _pick(store, " 8 (495) 123-45.67 ")
    assert (pick.route.name, pick.line_name, pick.number) == ("moscow", "itsp", "+74951234567")


def test_a_rewrite_that_leaves_nothing_is_refused(store: OutboundRouteStore) -> None:
    store.add("short", r"9", "itsp", strip_digits=3)
    with pytest.raises(DialError, match="route short leaves nothing of 9 to dial") as info:
        _pick(store, "9")
    assert info.value.code == 403


@pytest.mark.parametrize(("policy", "value", "shown"), [
    ("pass", "", "74950000001"),
    ("fixed", "74957770000", "74957770000"),
    ("anonymous", "", "anonymous"),
])
def test_caller_id_policies(store: OutboundRouteStore, policy: str, value: str, shown: str) -> None:
    store.add("r", r"\d+", "itsp", callerid_policy=policy, callerid_value=value)
    assert _pick(store, "84951234567", "74950000001").callerid == shown


@pytest.mark.parametrize("number", ["+14155550100", "0014155550100", "+1 (415) 555-0100"])
def test_international_numbers_need_a_route_that_allows_them(store: OutboundRouteStore, number: str) -> None:
    store.add("domestic", r"\+?\d+", "itsp")
    with pytest.raises(DialError) as info:
        _pick(store, number)
    assert (info.value.code, info.value.reason) == (
        403, "International calls are not allowed on route 'domestic' "
             "(numbers starting with + or 00 need a route with the international option on)")
    store.add("abroad", r"(\+|00)1\d{10}", "itsp2", international=True)
    assert _pick(store, number).route.name == "abroad"


@pytest.mark.parametrize("number", ["", "   ", "abc", "12+3", "++1", "sip:100@itsp"])
def test_garbage_is_an_invalid_number(store: OutboundRouteStore, number: str) -> None:
    store.add("any", r".*", "itsp", international=True)
    with pytest.raises(DialError, match=r"^403 Invalid number$"):
        _pick(store, number)


def test_no_matching_route_is_404(store: OutboundRouteStore) -> None:
    store.add("local", r"8\d{10}", "itsp")
    with pytest.raises(DialError, match=r"^404 No outbound route for 123$"):
        _pick(store, "12-3")
    with pytest.raises(DialError, match=r"^404 No outbound route for 555$"):
        OutboundRoutes().pick("555")


# Dialling


def test_dial_calls_the_routes_line_with_the_rewritten_number_and_caller_id(store: OutboundRouteStore) -> None:
    store.add("moscow", r"8495\d{7}", "itsp", strip_digits=1, prepend="7", callerid_policy="fixed",
              callerid_value="74957770000")
    store.add("hidden", r"\d+", "gsm1", callerid_policy="anonymous")
    itsp, gsm = FakeLine("itsp"), FakeLine("gsm1")
    routes = OutboundRoutes(store.list())
    options = Originate(caller="100", display_name="Reception", headers=(("X-Case", "7"),))
    leg = routes.dial("84951234567", options, {"itsp": itsp, "gsm1": gsm})
    assert itsp.dialled == [("74951234567", Originate("74957770000", "Reception", (("X-Case", "7"),)))]
    assert leg is cast(Leg, itsp.legs[0]) and leg.kind == "pstn"
    routes.dial("101", options, {"itsp": itsp, "gsm1": gsm})
    assert gsm.dialled == [("101", Originate("anonymous", "", (("X-Case", "7"),)))]  # no name gives it away


def test_a_missing_line_is_503(store: OutboundRouteStore) -> None:
    store.add("r", r"\d+", "gsm1")
    error = _dial_error(OutboundRoutes(store.list()), "101", {"itsp": FakeLine("itsp")})
    assert (error.code, error.reason) == (503, "Line gsm1 is not available")


def test_a_route_carries_at_most_max_concurrent_calls(store: OutboundRouteStore) -> None:
    limited = store.add("limited", r"1\d*", "itsp", max_concurrent=2)
    store.add("free", r"2\d*", "itsp")
    itsp = FakeLine("itsp")
    lines: dict[str, Line] = {"itsp": itsp}
    routes = OutboundRoutes(store.list())
    for number in ("101", "102", "201", "202", "203"):
        routes.dial(number, Originate(), lines)
    assert routes.active(limited.id) == 2
    error = _dial_error(routes, "103", lines)
    assert (error.code, error.reason) == (486, "Route limited is at its limit of 2 calls")

    itsp.legs[0].state = LegState.TERMINATED  # the end of a call frees its place: no one has to report it
    assert routes.active(limited.id) == 1
    routes.dial("104", Originate(), lines)
    assert _dial_error(routes, "105", lines).code == 486

    routes.load(store.list())  # a new snapshot of the routes keeps the calls in progress
    assert routes.active(limited.id) == 2
    assert _dial_error(routes, "106", lines).code == 486


def test_a_line_that_refuses_the_call_takes_no_place(store: OutboundRouteStore) -> None:
    route = store.add("r", r"\d+", "itsp", max_concurrent=1)

    class Down(FakeLine):
        def originate(self, destination: str, options: Originate) -> Leg:
            raise DialError(503, "Service Unavailable (trunk itsp is not resolved yet)")

    routes = OutboundRoutes(store.list())
    assert _dial_error(routes, "101", {"itsp": Down("itsp")}).code == 503
    assert routes.active(route.id) == 0
    routes.dial("101", Originate(), {"itsp": FakeLine("itsp")})
    assert routes.active(route.id) == 1


# The command line


def _route(data: Path, *args: str) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-m", "appliance", "route", "--data-dir", str(data), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


def test_cli_adds_lists_and_removes_routes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _route(data, "list") == (0, "")
    assert _route(data, "add", "local", "--pattern", r"8\d{10}", "--line", "itsp", "--strip", "1",
                  "--prepend", "+7") == (0, "outbound route local -> line itsp\n")
    assert _route(data, "add", "abroad", "--pattern", r"(\+|00)\d+", "--line", "itsp2", "--callerid",
                  "fixed:74957770000", "--international", "--max-calls", "4") == (
        0, "outbound route abroad -> line itsp2\n")
    assert _route(data, "add", "quiet", "--pattern", r"\d+", "--line", "gsm1", "--callerid", "anonymous",
                  "--hours", "mon-fri 08:00-20:00", "--max-duration", "600", "--max-calls-per-hour", "30")[0] == 0
    assert _route(data, "list") == (0, (
        "route  local: 8\\d{10} -> itsp (strip 1, prepend +7, callerid pass)\n"
        "route  abroad: (\\+|00)\\d+ -> itsp2 (callerid fixed:74957770000, international, at most 4 calls)\n"
        "route  quiet: \\d+ -> gsm1 (callerid anonymous, hours mon-fri 08:00-20:00, calls cut after 600 s, "
        "at most 30 calls per hour)\n"))
    assert _route(data, "set", "abroad", "--no-international", "--hours", "sat 09:00-13:00", "--max-duration",
                  "60") == (0, "outbound route abroad changed\n")
    assert _route(data, "set", "quiet", "--hours", "", "--max-calls-per-hour", "0") == (
        0, "outbound route quiet changed\n")
    assert _route(data, "list")[1].splitlines()[1:] == [
        "route  abroad: (\\+|00)\\d+ -> itsp2 (callerid fixed:74957770000, at most 4 calls, hours sat 09:00-13:00, "
        "calls cut after 60 s)",
        "route  quiet: \\d+ -> gsm1 (callerid anonymous, calls cut after 600 s)"]
    assert _route(data, "remove", "abroad") == (0, "removed outbound route abroad\n")
    status, out = _route(data, "remove", "abroad")
    assert status == 2 and "no outbound route 'abroad'" in out
    assert [line.split(":")[0] for line in _route(data, "list")[1].splitlines()] == ["route  local", "route  quiet"]


def test_cli_refuses_bad_routes_clearly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    status, out = _route(data, "add", "bad", "--pattern", "8(\\d+", "--line", "itsp")
    assert status == 2 and out.startswith("appliance route: invalid route pattern '8(\\\\d+': missing ), "), out
    status, out = _route(data, "add", "dup", "--pattern", "1", "--line", "itsp")
    assert status == 0
    status, out = _route(data, "add", "dup", "--pattern", "2", "--line", "itsp")
    assert status == 2 and "outbound route 'dup' already exists" in out
    status, out = _route(data, "add", "cid", "--pattern", "1", "--line", "itsp", "--callerid", "fixed:")
    assert status == 2 and "'fixed:': expected pass, fixed:NUMBER or anonymous" in out
    status, out = _route(data, "add", "late", "--pattern", "1", "--line", "itsp", "--hours", "mon-fri 08:00-25:00")
    assert status == 2 and out == ("appliance route: outbound route 'late': invalid hours 'mon-fri 08:00-25:00': "
                                   "'25:00' in '08:00-25:00' is not a time of day (00:00 to 23:59; 24:00 may end "
                                   "a window)\n"), out
    status, out = _route(data, "set", "dup", "--max-duration", "-5")
    assert status == 2 and "max_duration must be from 0 (no limit) to 86400, not -5" in out, out
    status, out = _route(data, "set", "nope", "--max-duration", "5")
    assert status == 2 and "no outbound route 'nope'" in out, out
    assert _route(data, "list") == (0, "route  dup: 1 -> itsp (callerid pass)\n")
