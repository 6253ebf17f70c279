"""Toll-fraud guards of outbound routes: opening hours (parsed when written, evaluated at a given local
time), calls per rolling hour, call length (the box hangs up), and the refusal reasons scripts and
session logs get; through the store, the picker, the management API, and end to end with sipp as the
trunk (127.0.0.1 only).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from api_helpers import ERR_PARAMETER, Api, api_daemon, unique
from daemon_helpers import (
    Daemon,
    async_wait_until,
    client_session,
    create_api_key,
    free_port,
    running_daemon,
    start_scenarios,
)
from sip_helpers import SIPP, log_lines, sipp_in_background, stop_pid, store_lines, voxfiles

from appliance.clock import VirtualClock
from appliance.engine.calls import DialError
from appliance.legs.leg import Leg, LegState
from appliance.lines.line import Line, Originate
from appliance.lines.outbound import RATE_WINDOW, OutboundRoutes
from appliance.store.db import Database, StoreError
from appliance.store.routes import (
    DAYS,
    HOURS_MAX_CHARS,
    MAX_CALLS_PER_HOUR_LIMIT,
    MAX_DURATION_LIMIT,
    Hours,
    OutboundRouteStore,
)

MONDAY = datetime(2026, 11, 23)  # a Monday
_ids = itertools.count(1)


def at(day: str, clock: str) -> datetime:
    """`day` (mon..sun) of the test week at `clock` (HH:MM), local wall-clock time."""
    hour, minute = (int(x) for x in clock.split(":"))
    return MONDAY + timedelta(days=DAYS.index(day), hours=hour, minutes=minute)


# Parsing and evaluating opening hours


@pytest.mark.parametrize(("text", "open_at", "closed_at"), [
    ("", ["mon 00:00", "sun 23:59"], []),
    ("   ", ["wed 12:00"], []),
    ("mon-fri 08:00-20:00, sat 09:00-13:00",
     ["mon 08:00", "mon 19:59", "fri 12:00", "sat 09:00", "sat 12:59"],
     ["mon 07:59", "mon 20:00", "sat 13:00", "sun 10:00", "sat 08:59"]),
    ("  Mon-Fri   8:00-20:00 ", ["tue 08:00"], ["tue 07:59", "sat 10:00"]),  # case, spacing, one-digit hours
    # Across midnight: the window runs into the next morning, also from Sunday into Monday.
    ("fri 22:00-06:00", ["fri 22:00", "fri 23:59", "sat 00:00", "sat 05:59"],
     ["fri 21:59", "sat 06:00", "fri 01:00", "sat 22:00", "thu 23:00"]),
    ("sun 22:00-06:00", ["sun 23:00", "mon 02:00"], ["mon 06:00", "sat 23:00"]),
    ("22:00-00:00", ["tue 22:00", "tue 23:59"], ["wed 00:00", "tue 21:59"]),
    ("mon 20:00-24:00", ["mon 23:59"], ["tue 00:00", "mon 19:59"]),
    # The whole week, written four ways.
    ("mon-sun", ["mon 00:00", "sun 23:59", "thu 12:00"], []),
    ("00:00-24:00", ["mon 00:00", "sun 23:59"], []),
    ("mon-sun 00:00-24:00", ["mon 00:00", "sun 23:59"], []),
    ("sun-sat", ["mon 00:00", "sun 23:59"], []),
    # Ranges that wrap over the weekend, lists of days, whole days.
    ("fri-mon 10:00-11:00", ["fri 10:00", "sun 10:30", "mon 10:59"], ["tue 10:00", "thu 10:30"]),
    ("mon wed 09:00-10:00", ["mon 09:00", "wed 09:59"], ["tue 09:00", "mon 10:00"]),
    ("sat", ["sat 00:00", "sat 23:59"], ["sun 00:00", "fri 23:59"]),
    # Overlapping windows: open when any is.
    ("mon-fri 08:00-12:00, mon 10:00-14:00, mon-fri 09:00-10:00",
     ["mon 08:00", "mon 11:00", "mon 13:59", "tue 11:59"], ["mon 14:00", "tue 13:00", "tue 07:59"]),
])
def test_hours_parse_and_tell_when_a_route_is_open(text: str, open_at: list[str], closed_at: list[str]) -> None:
    hours = Hours.parse(text)
    assert hours.serialize() == text.strip()
    assert hours.always == (text.strip() == "")
    for moment in open_at:
        assert hours.is_open(at(*moment.split())), moment
    for moment in closed_at:
        assert not hours.is_open(at(*moment.split())), moment


def test_hours_use_the_wall_clock_time_given() -> None:
    hours = Hours.parse("mon-fri 08:00-20:00")
    assert hours.is_open(datetime(2026, 11, 24, 8, 0).astimezone())  # an aware local time: its own wall clock
    assert not hours.is_open(datetime(2026, 11, 28, 8, 0))  # a Saturday
    assert hours.is_open(at("mon", "19:59") + timedelta(seconds=59, microseconds=999_999))
    assert not hours.is_open(at("mon", "20:00"))


@pytest.mark.parametrize(("text", "message"), [
    ("mon-fry 08:00-20:00", "unknown day 'fry' in 'mon-fry' (days are mon, tue, wed, thu, fri, sat, sun)"),
    ("monday 08:00-20:00", "unknown day 'monday' (days are mon"),
    ("mon 25:00-26:00", "'25:00' in '25:00-26:00' is not a time of day (00:00 to 23:59; 24:00 may end a window)"),
    ("mon 08:00-24:30", "'24:30' in '08:00-24:30' is not a time of day"),
    ("mon 24:00-06:00", "'24:00' in '24:00-06:00' is not a time of day"),
    ("mon 08:60-09:00", "'08:60' in '08:60-09:00' is not a time of day"),
    ("mon 8h-20h", "'8h' in '8h-20h' is not a time: expected HH:MM"),
    ("mon 123:00-13:00", "'123:00' in '123:00-13:00' is not a time: expected HH:MM"),
    ("mon 08:00", "'08:00': a time range is HH:MM-HH:MM"),
    ("mon 08:00-08:00", "'08:00-08:00' is empty: its start and end are the same (00:00-24:00 is the whole day)"),
    ("08:00-20:00 mon", "'08:00-20:00 mon': one time range per window, after the days"),
    ("mon 08:00-12:00 13:00-17:00", "one time range per window, after the days"),
    ("mon-fri 08:00-20:00,, sat", "an empty window (two commas, or a comma at an end)"),
    ("mon-fri 08:00-20:00,", "an empty window"),
    ("mon- 08:00-20:00", "unknown day '' in 'mon-'"),
    ("mon " + "sat " * HOURS_MAX_CHARS, f"at most {HOURS_MAX_CHARS} characters"),
])
def test_bad_hours_are_refused_naming_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Hours.parse(text)


# The store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[OutboundRouteStore]:
    db = Database(tmp_path / "voxgate.db")
    yield OutboundRouteStore(db)
    db.close()


def test_the_guards_are_stored_with_the_route(store: OutboundRouteStore) -> None:
    assert store.db.schema_version >= 8
    plain = store.add("plain", r"\d+", "itsp")
    assert (plain.hours, plain.max_duration, plain.max_calls_per_hour) == ("", 0, 0)
    guarded = store.add("guarded", r"\d+", "itsp", hours=" mon-fri 08:00-20:00 ", max_duration=600,
                        max_calls_per_hour=30)
    assert (guarded.hours, guarded.max_duration, guarded.max_calls_per_hour) == ("mon-fri 08:00-20:00", 600, 30)
    assert store.list()[1] == guarded
    changed = store.update(guarded.id, hours="", max_duration=0, max_calls_per_hour=MAX_CALLS_PER_HOUR_LIMIT)
    assert (changed.hours, changed.max_duration, changed.max_calls_per_hour) == ("", 0, MAX_CALLS_PER_HOUR_LIMIT)


@pytest.mark.parametrize(("fields", "message"), [
    ({"hours": "mon-fry"}, "outbound route 'r': invalid hours 'mon-fry': unknown day 'fry' in 'mon-fry'"),
    ({"hours": "mon 07:00-25:00"}, "invalid hours 'mon 07:00-25:00': '25:00' in '07:00-25:00' is not a time of day"),
    ({"max_duration": -1}, f"max_duration must be from 0 (no limit) to {MAX_DURATION_LIMIT}, not -1"),
    ({"max_duration": MAX_DURATION_LIMIT + 1}, f"max_duration must be from 0 (no limit) to {MAX_DURATION_LIMIT}"),
    ({"max_calls_per_hour": -1}, "max_calls_per_hour must be from 0 (no limit)"),
    ({"max_calls_per_hour": MAX_CALLS_PER_HOUR_LIMIT + 1}, f"to {MAX_CALLS_PER_HOUR_LIMIT}, not"),
])
def test_bad_guards_are_refused(store: OutboundRouteStore, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        store.add("r", r"\d+", "itsp", **fields)
    route = store.add("r", r"\d+", "itsp")
    with pytest.raises(StoreError, match=re.escape(message)):
        store.update(route.id, **fields)
    assert store.get(route.id) == route


# Picking


@dataclass
class FakeLeg:
    """A leg whose connection the test decides; `duration` follows the clock."""

    clock: VirtualClock
    state: LegState = LegState.PROGRESSING
    kind: str = "sip"
    id: str = field(default_factory=lambda: f"guard-leg-{next(_ids)}")
    connected_at: float | None = None
    hung_up_at: float | None = None

    @property
    def duration(self) -> float:
        return 0.0 if self.connected_at is None else self.clock.monotonic() - self.connected_at

    def connect(self) -> None:
        self.state, self.connected_at = LegState.CONNECTED, self.clock.monotonic()

    def hangup(self, headers: dict[str, str] | None = None) -> None:
        if self.state is not LegState.TERMINATED:
            self.state, self.hung_up_at = LegState.TERMINATED, self.clock.monotonic()


@dataclass
class FakeLine:
    name: str
    clock: VirtualClock
    kind: str = "sip-trunk"
    application_id: int | None = None
    rule_id: int | None = None
    legs: list[FakeLeg] = field(default_factory=list)

    def status(self) -> dict[str, object]:
        return {"name": self.name}

    def originate(self, destination: str, options: Originate) -> Leg:
        self.legs.append(FakeLeg(self.clock))
        return cast(Leg, self.legs[-1])


def _error(routes: OutboundRoutes, number: str, when: datetime | None = None) -> tuple[int, str]:
    with pytest.raises(DialError) as info:
        routes.pick(number, at=when)
    return info.value.code, info.value.reason


def test_a_closed_route_is_skipped_for_the_next_matching_one(store: OutboundRouteStore) -> None:
    store.add("office", r"\d+", "itsp", hours="mon-fri 08:00-20:00")
    store.add("night", r"\d+", "gsm1", hours="20:00-08:00")
    routes = OutboundRoutes(store.list())
    assert routes.pick("123", at=at("mon", "08:00")).route.name == "office"
    assert routes.pick("123", at=at("mon", "20:00")).route.name == "night"
    assert routes.pick("123", at=at("tue", "07:59")).route.name == "night"
    # Saturday noon: neither is open; the call fails as an unroutable number, naming each guard.
    assert _error(routes, "123", at("sat", "12:00")) == (
        404, "No outbound route for 123: route 'office' is closed now (mon-fri 08:00-20:00); "
             "route 'night' is closed now (20:00-08:00)")
    assert _error(routes, "abc", at("sat", "12:00")) == (403, "Invalid number")


def test_the_current_time_comes_from_now(store: OutboundRouteStore) -> None:
    store.add("weekend", r"\d+", "itsp", hours="sat-sun")
    moment = [at("sat", "10:00")]
    routes = OutboundRoutes(store.list(), now=lambda: moment[0])
    assert routes.pick("1").route.name == "weekend"
    moment[0] = at("mon", "10:00")
    assert _error(routes, "1") == (404, "No outbound route for 1: route 'weekend' is closed now (sat-sun)")
    assert routes.pick("1", at=at("sun", "23:59")).route.name == "weekend"  # `at` wins


def test_refusal_reasons_name_every_guard(store: OutboundRouteStore) -> None:
    store.add("domestic", r"\+?\d+", "itsp")
    store.add("intl", r"\+\d+", "itsp2", international=True, hours="mon-fri 09:00-17:00")
    store.add("other", r"\d+", "itsp3")  # does not match '+...': not named (but does match '00...')
    routes = OutboundRoutes(store.list())
    assert routes.pick("+4930123456", at=at("mon", "09:00")).route.name == "intl"
    assert _error(routes, "+4930123456", at("mon", "17:00")) == (
        404, "No outbound route for +4930123456: international calls are not allowed on route 'domestic' "
             "(its international option is off); route 'intl' is closed now (mon-fri 09:00-17:00)")
    store.add("domestic2", r"00\d+", "itsp")
    assert _error(OutboundRoutes(store.list()), "004930123456", at("mon", "10:00")) == (
        403, "International calls are not allowed on routes 'domestic', 'other', 'domestic2' "
             "(numbers starting with + or 00 need a route with the international option on)")


def test_a_full_route_still_fails_at_once_with_486(store: OutboundRouteStore) -> None:
    clock = VirtualClock(start=1000.0)
    store.add("one", r"\d+", "itsp", max_concurrent=1, hours="mon")
    store.add("spare", r"\d+", "itsp")
    routes = OutboundRoutes(store.list(), clock=clock, now=lambda: at("mon", "10:00"))
    lines: dict[str, Line] = {"itsp": FakeLine("itsp", clock)}
    routes.dial("1", Originate(), lines)
    with pytest.raises(DialError, match=r"^486 Route one is at its limit of 1 calls$"):
        routes.dial("2", Originate(), lines)


def test_max_calls_per_hour_counts_a_rolling_hour(store: OutboundRouteStore) -> None:
    clock = VirtualClock(start=1_000_000.0)
    start = clock.time()
    limited = store.add("limited", r"\d+", "itsp", max_calls_per_hour=2)
    itsp = FakeLine("itsp", clock)
    lines: dict[str, Line] = {"itsp": itsp}
    routes = OutboundRoutes(store.list(), clock=clock)

    routes.dial("1", Originate(), lines)  # t = 0
    clock.jump_to(start + 1000)
    routes.dial("2", Originate(), lines)  # t = 1000
    assert routes.calls_last_hour(limited.id) == 2
    itsp.legs[0].hangup()  # ended calls still count: the limit is on calls made, not calls up
    clock.jump_to(start + RATE_WINDOW - 0.5)
    reason = ("No outbound route for 3: route 'limited' has put through its 2 calls of the last hour "
              "(max_calls_per_hour)")
    assert _error(routes, "3") == (404, reason)
    routes.load(store.list())  # a new snapshot keeps the count
    assert _error(routes, "3") == (404, reason)

    backup = store.add("backup", r"\d+", "gsm1")  # skipped like a closed route: the next one takes the call
    routes.load(store.list())
    assert routes.pick("3").route.name == "backup"
    store.remove(backup.id)
    routes.load(store.list())

    clock.jump_to(start + RATE_WINDOW)  # the first call is an hour old: one place is free
    assert routes.calls_last_hour(limited.id) == 1
    routes.dial("3", Originate(), lines)
    assert _error(routes, "4")[0] == 404
    clock.jump_to(start + 1000 + RATE_WINDOW)
    assert routes.calls_last_hour(limited.id) == 1
    routes.dial("4", Originate(), lines)
    assert len(itsp.legs) == 4


def test_a_call_the_line_refuses_is_not_counted(store: OutboundRouteStore) -> None:
    clock = VirtualClock(start=5000.0)
    route = store.add("r", r"\d+", "itsp", max_calls_per_hour=1)

    class Down(FakeLine):
        def originate(self, destination: str, options: Originate) -> Leg:
            raise DialError(503, "Service Unavailable")

    routes = OutboundRoutes(store.list(), clock=clock)
    with pytest.raises(DialError, match=r"^503"):
        routes.dial("1", Originate(), {"itsp": Down("itsp", clock)})
    assert routes.calls_last_hour(route.id) == 0
    routes.dial("1", Originate(), {"itsp": FakeLine("itsp", clock)})
    assert routes.calls_last_hour(route.id) == 1


# max_duration


async def run_until(clock: VirtualClock, monotonic: float) -> None:
    """Fire every timer due by `monotonic` (the clock's monotonic time), then stand at that time."""
    offset = clock.time() - clock.monotonic()
    while (due := clock.next_time()) is not None and due - offset <= monotonic:
        await clock.advance()
    clock.jump_to(monotonic + offset)


async def test_the_box_hangs_up_max_duration_after_the_answer(store: OutboundRouteStore) -> None:
    clock = VirtualClock(start=2000.0)
    t0 = clock.monotonic()
    store.add("short", r"\d+", "itsp", max_duration=2)
    itsp = FakeLine("itsp", clock)
    lines: dict[str, Line] = {"itsp": itsp}
    routes = OutboundRoutes(store.list(), clock=clock)
    routes.dial("1", Originate(), lines)  # answered after 3 s of ringing
    routes.dial("2", Originate(), lines)  # answered at once
    routes.dial("3", Originate(), lines)  # ends by itself after 1 s
    routes.dial("4", Originate(), lines)  # never answered
    ringing, quick, brief, unanswered = itsp.legs
    quick.connect()
    await run_until(clock, t0 + 1)
    brief.connect()
    brief.hangup()
    await run_until(clock, t0 + 3)
    assert quick.hung_up_at == t0 + 2  # it has had its 2 s
    assert ringing.state is LegState.PROGRESSING
    ringing.connect()
    await run_until(clock, t0 + 10)
    assert ringing.hung_up_at == t0 + 5  # 2 s after its answer, whenever that came
    assert brief.hung_up_at == t0 + 1 and unanswered.state is LegState.PROGRESSING
    routes.close()
    routes.close()
    assert not await clock.advance()  # no timer left: the ringing leg is the session's to give up on
    assert unanswered.state is LegState.PROGRESSING


async def test_routes_without_max_duration_set_no_timer(store: OutboundRouteStore) -> None:
    clock = VirtualClock(start=3000.0)
    store.add("free", r"\d+", "itsp")
    itsp = FakeLine("itsp", clock)
    OutboundRoutes(store.list(), clock=clock).dial("1", Originate(), {"itsp": itsp})
    itsp.legs[0].connect()
    assert not await clock.advance()
    assert itsp.legs[0].state is LegState.CONNECTED


# The management API


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with api_daemon(tmp_path_factory.mktemp("api-guards")) as daemon:
        client = Api(daemon)
        yield client
        client.close()


def _route_info(api: Api, name: str) -> dict[str, Any]:
    found = [r for r in api.ok("GetOutboundRoutes")["result"] if r["route_name"] == name]
    assert len(found) == 1
    info = found[0]
    assert isinstance(info, dict)
    return info


def test_api_adds_gets_and_sets_the_guards(api: Api) -> None:
    name = unique("guarded")
    api.ok("AddOutboundRoute", route_name=name, pattern=r"9\d+", line="itsp", hours="mon-fri 08:00-20:00",
           max_duration=600, max_calls_per_hour=30)
    info = _route_info(api, name)
    assert (info["hours"], info["max_duration"], info["max_calls_per_hour"], info["international"]) == (
        "mon-fri 08:00-20:00", 600, 30, False)
    api.ok("SetOutboundRouteInfo", route_name=name, hours="sat 09:00-13:00, 22:00-06:00", max_duration=0)
    info = _route_info(api, name)
    assert (info["hours"], info["max_duration"], info["max_calls_per_hour"]) == (
        "sat 09:00-13:00, 22:00-06:00", 0, 30)
    api.ok("SetOutboundRouteInfo", route_name=name, hours="", max_calls_per_hour=0)  # '' clears the hours
    info = _route_info(api, name)
    assert (info["hours"], info["max_duration"], info["max_calls_per_hour"]) == ("", 0, 0)
    defaults = unique("plain")
    api.ok("AddOutboundRoute", route_name=defaults, pattern=r"9\d+", line="itsp")
    info = _route_info(api, defaults)
    assert (info["hours"], info["max_duration"], info["max_calls_per_hour"]) == ("", 0, 0)
    for route_name in (name, defaults):
        api.ok("DelOutboundRoute", route_name=route_name)


@pytest.mark.parametrize(("field_name", "value", "message"), [
    ("hours", "mon-fry 08:00-20:00", "hours: unknown day 'fry' in 'mon-fry'"),
    ("hours", "mon 08:00-25:00", "hours: '25:00' in '08:00-25:00' is not a time of day"),
    ("hours", "mon 08:00-08:00", "hours: '08:00-08:00' is empty"),
    ("hours", "sat " * 200, f"hours: at most {HOURS_MAX_CHARS} characters"),
    ("max_duration", "-1", f"max_duration: must be from 0 to {MAX_DURATION_LIMIT}, not -1"),
    ("max_duration", str(MAX_DURATION_LIMIT + 1), f"max_duration: must be from 0 to {MAX_DURATION_LIMIT}"),
    ("max_duration", "2.5", "max_duration: '2.5' is not a whole number"),
    ("max_calls_per_hour", "-3", f"max_calls_per_hour: must be from 0 to {MAX_CALLS_PER_HOUR_LIMIT}, not -3"),
    ("max_calls_per_hour", "many", "max_calls_per_hour: 'many' is not a whole number"),
])
def test_api_refuses_bad_guards_naming_the_field(api: Api, field_name: str, value: str, message: str) -> None:
    name = unique("bad")
    base = {"route_name": name, "pattern": r"9\d+", "line": "itsp"}
    assert api.fails("AddOutboundRoute", 400, ERR_PARAMETER, **base, **{field_name: value}).startswith(message)
    api.ok("AddOutboundRoute", **base)
    assert api.fails("SetOutboundRouteInfo", 400, ERR_PARAMETER, route_name=name,
                     **{field_name: value}).startswith(message)
    info = _route_info(api, name)
    assert (info["hours"], info["max_duration"], info["max_calls_per_hour"]) == ("", 0, 0)
    api.ok("DelOutboundRoute", route_name=name)


# End to end: a scenario's callPSTN through a route to a SIP trunk (sipp answering on 127.0.0.1)

SCRIPT = """
VoxEngine.addEventListener(AppEvents.Started, () => {
  const numbers = ["5551234", "7770000"];
  let ended = 0;
  for (const number of numbers) {
    const call = VoxEngine.callPSTN(number, "5550000");
    let connected = 0;
    call.addEventListener(CallEvents.Connected, () => {
      connected = Date.now();
      Logger.write(`${number}: connected`);
    });
    const end = (text) => {
      Logger.write(`${number}: ${text}`);
      if (++ended === numbers.length) VoxEngine.terminate();
    };
    call.addEventListener(CallEvents.Failed, (e) => end(`failed ${e.code} ${e.reason}`));
    call.addEventListener(CallEvents.Disconnected, () => end(`disconnected after ${Date.now() - connected} ms`));
  }
});
"""


@pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")
async def test_the_box_hangs_up_after_max_duration_and_a_closed_route_fails_the_call(tmp_path: Path) -> None:
    uas_port = free_port()
    data = tmp_path / "data"
    with store_lines(data) as lines:
        lines.add_trunk("itsp", "127.0.0.1", uas_port)
    closed_day = DAYS[(datetime.now().weekday() + 3) % 7]  # whole day three days away: closed today, even at midnight
    db = Database(data / "voxgate.db")
    try:
        routes = OutboundRouteStore(db)
        routes.add("short", r"555\d{4}", "itsp", max_duration=2)
        routes.add("closed", r"777\d{4}", "itsp", hours=closed_day)
    finally:
        db.close()
    key = create_api_key(data)
    # -aa: the trunk's OPTIONS keep-alives are answered; the UAS scenario waits for our BYE.
    uas = sipp_in_background("-sn", "uas", "-p", str(uas_port), "-aa", "-trace_msg", cwd=tmp_path)
    try:
        daemon: Daemon
        with running_daemon(data, voxfiles=voxfiles(tmp_path / "vox", SCRIPT)) as daemon:
            async with client_session() as client:
                await start_scenarios(client, daemon, key, "in")
            started = time.monotonic()
            assert await async_wait_until(
                lambda: "engine: session ended: Normal termination" in log_lines(daemon), 20), log_lines(daemon)
            assert time.monotonic() - started < 15
            lines_seen = log_lines(daemon)
        script_lines = [line for line in lines_seen if not line.startswith("engine: ")]
        reason = f"404 No outbound route for 7770000: route 'closed' is closed now ({closed_day})"
        assert f"7770000: failed {reason}" in script_lines, lines_seen
        assert any(line.endswith(f"to 7770000 failed at once: {reason}") for line in lines_seen), lines_seen
        assert "5551234: connected" in script_lines, lines_seen
        ended = [line for line in script_lines if line.startswith("5551234: disconnected after ")]
        assert len(ended) == 1, lines_seen
        held_ms = int(ended[0].split()[-2])
        assert 1800 <= held_ms <= 3500, ended  # the box hung up ~2 s after the answer
        messages = next(tmp_path.glob("*_messages.log")).read_text()  # noqa: ASYNC240 (a small file, after the run)
        assert re.search(r"^BYE sip:", messages, re.MULTILINE), messages[-2000:]  # sipp received our BYE
        assert "INVITE sip:7770000" not in messages  # the closed route dialled nothing
    finally:
        stop_pid(uas)
