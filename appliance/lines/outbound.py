"""Outbound routes at work: the line a `VoxEngine.callPSTN(number, callerid)` goes out through.

`OutboundRoutes` holds a snapshot of the store's routes (`load()` it again after they change) and the
calls each route carries. For a number it picks the first enabled route, in position order, whose
pattern matches the whole number and whose toll-fraud guards let the call through:

- numbers starting with '+' or '00' only go through routes allowed international calls;
- a route is used only within its opening hours (box's local time);
- a route puts through at most `max_calls_per_hour` calls in any 60 minutes (counted here, in memory).

A route a guard stops is skipped, and the next matching route may take the call; when none does, the
call fails as an unroutable number does (404; 403 when international calls were all that was refused),
its reason naming each guard that stopped it. `max_concurrent` is not a skip: a matching route that is
full fails the call with 486. The route rewrites the number and sets the caller ID, and the call goes
to the line the route names, whatever kind of line that is.

A route's calls are counted by keeping the legs it dialled: a leg stops counting once its state is
TERMINATED. No one has to report the end of a call, so no end can be missed, and the session keeps
the leg's `on_event` to itself. For the same reason `max_duration` is enforced by a timer per leg that
reads the leg's `duration`: while the leg rings the timer checks again every `max_duration` seconds
(it cannot have been connected longer than that), once connected it fires when the time is up and
hangs the leg up, so the session sees Disconnected as for any other end of the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from appliance.clock import Clock, RealClock, Timer
from appliance.engine.calls import DialError
from appliance.legs.leg import Leg, LegState
from appliance.lines.line import Line, Originate
from appliance.patterns import compile_pattern
from appliance.store.routes import Hours, OutboundRoute

log = logging.getLogger(__name__)

DECORATION = re.compile(r"[\s.()\-]")  # how people write numbers: "+7 (495) 123-45-67"
NUMBER = re.compile(r"\+?[0-9*#]+")
ANONYMOUS = "anonymous"
RATE_WINDOW = 3600.0  # seconds: max_calls_per_hour counts the calls of the last hour, rolling
DURATION_SLACK = 0.05  # seconds: a max_duration check this close to the end hangs up rather than waits again


@dataclass(frozen=True)
class Pick:
    """Where a number goes: the route, its line, the number as the line dials it, the caller ID to show."""

    route: OutboundRoute
    line_name: str
    number: str
    callerid: str


def normalise(number: str) -> str:
    """The number without decoration; DialError 403 if what is left is not a number."""
    digits = DECORATION.sub("", number)
    if not NUMBER.fullmatch(digits):
        raise DialError(403, "Invalid number")
    return digits


def is_international(number: str) -> bool:
    return number.startswith(("+", "00"))


@dataclass(frozen=True)
class _Usable:
    """A route as the picker uses it: compiled pattern and parsed hours."""

    pattern: re.Pattern[str]
    hours: Hours
    route: OutboundRoute


class OutboundRoutes:
    """The routes in use. `clock` (default: the real one, timers on the running loop) times `max_duration`
    and the rolling hour (calls are counted while the route has a max_calls_per_hour); `now` gives the box's
    local wall-clock time for opening hours (default: `datetime.now()`, the system's time zone)."""

    def __init__(self, routes: Iterable[OutboundRoute] = (), *, clock: Clock | None = None,
                 now: Callable[[], datetime] = datetime.now) -> None:
        self._routes: list[_Usable] = []
        self._legs: dict[int, list[Leg]] = {}  # by route id: the legs it dialled that may still be up
        self._recent: dict[int, deque[float]] = {}  # by route id: when (monotonic) it put calls through lately
        self._watches: dict[str, Timer] = {}  # by leg id: the max_duration timer of a leg that may still be up
        self._clock = clock
        self._now = now
        self.load(routes)

    def load(self, routes: Iterable[OutboundRoute]) -> None:
        """Take a new snapshot of the routes; calls in progress stay counted against their route's id, and
        keep the max_duration they were dialled with."""
        self._routes = []
        for route in sorted(routes, key=lambda r: (r.position, r.id)):
            if not route.enabled:
                continue
            try:
                self._routes.append(_Usable(compile_pattern(route.pattern, "route"), Hours.parse(route.hours), route))
            except ValueError as exc:  # the store checks routes: this one was written behind its back
                log.error("outbound route %s is skipped: %s", route.name, exc)

    def close(self) -> None:
        """Stop the max_duration timers (the calls themselves are the sessions' to end); safe twice."""
        for timer in self._watches.values():
            timer.cancel()
        self._watches.clear()

    @property
    def count(self) -> int:
        """Enabled routes in use."""
        return len(self._routes)

    def active(self, route_id: int) -> int:
        """The calls going through a route now."""
        return len(self._live(route_id))

    def calls_last_hour(self, route_id: int) -> int:
        """The calls a route put through in the last 60 minutes."""
        recent = self._recent.get(route_id)
        if recent is None:
            return 0
        horizon = self._monotonic() - RATE_WINDOW
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._recent[route_id]
            return 0
        return len(recent)

    def _live(self, route_id: int) -> list[Leg]:
        """The route's legs that have not ended; the ended ones are let go, with their max_duration timers."""
        legs = []
        for leg in self._legs.pop(route_id, []):
            if leg.state is not LegState.TERMINATED:
                legs.append(leg)
            elif self._watches and (timer := self._watches.pop(leg.id, None)) is not None:
                timer.cancel()
        if legs:
            self._legs[route_id] = legs
        return legs

    def pick(self, number: str, callerid: str = "", at: datetime | None = None) -> Pick:
        """The route for `number` at `at` (default: now, local time) and what it dials; DialError 403, 404
        or 486 when there is none, its reason naming the guards that stopped the matching routes."""
        digits = normalise(number)
        international = is_international(digits)
        when = self._now() if at is None else at
        international_refusals: list[str] = []
        skipped: list[str] = []  # every reason a matching route did not take the call, in route order
        for usable in self._routes:
            route = usable.route
            if not usable.pattern.fullmatch(digits):
                continue
            if international and not route.international:
                international_refusals.append(route.name)
                skipped.append(f"international calls are not allowed on route '{route.name}' "
                               "(its international option is off)")
                continue
            if not usable.hours.is_open(when):
                skipped.append(f"route '{route.name}' is closed now ({route.hours})")
                continue
            if route.max_calls_per_hour and self.calls_last_hour(route.id) >= route.max_calls_per_hour:
                skipped.append(f"route '{route.name}' has put through its {route.max_calls_per_hour} calls "
                               "of the last hour (max_calls_per_hour)")
                continue
            if route.max_concurrent and self.active(route.id) >= route.max_concurrent:
                raise DialError(486, f"Route {route.name} is at its limit of {route.max_concurrent} calls")
            return Pick(route, route.line, _rewrite(route, digits), _callerid(route, callerid))
        if skipped and len(skipped) == len(international_refusals):
            names = ", ".join(f"'{name}'" for name in international_refusals)
            plural = "s" if len(international_refusals) > 1 else ""
            raise DialError(403, f"International calls are not allowed on route{plural} {names} "
                                 f"(numbers starting with + or 00 need a route with the international option on)")
        if skipped:
            raise DialError(404, f"No outbound route for {digits}: {'; '.join(skipped)}")
        raise DialError(404, f"No outbound route for {digits}")

    def dial(self, number: str, options: Originate, lines: Mapping[str, Line]) -> Leg:
        """Call `number` through its route's line; the route counts the leg until it ends."""
        pick = self.pick(number, options.caller)
        line = lines.get(pick.line_name)
        if line is None:
            raise DialError(503, f"Line {pick.line_name} is not available")
        hidden = pick.route.callerid_policy == "anonymous"  # a display name would give the caller away
        leg = line.originate(pick.number, dataclasses.replace(
            options, caller=pick.callerid, display_name="" if hidden else options.display_name))
        leg.kind = "pstn"  # what scripts see (clientType), whatever technology the line uses
        route = pick.route
        self._legs[route.id] = [*self._live(route.id), leg]
        if route.max_calls_per_hour:
            self._recent.setdefault(route.id, deque()).append(self._monotonic())
        if route.max_duration:
            self._watch(leg, route)
        return leg

    # max_duration

    def _watch(self, leg: Leg, route: OutboundRoute, delay: float | None = None) -> None:
        """Check the leg's duration after `delay` (default: max_duration) seconds."""
        wait = float(route.max_duration) if delay is None else delay
        self._watches[leg.id] = self._call_later(wait, lambda: self._check_duration(leg, route))

    def _check_duration(self, leg: Leg, route: OutboundRoute) -> None:
        self._watches.pop(leg.id, None)
        if leg.state is LegState.TERMINATED:
            return
        left = route.max_duration - leg.duration if leg.state is LegState.CONNECTED else None
        if left is not None and left <= DURATION_SLACK:
            log.info("outbound route %s: call %s hung up after its max_duration of %d s", route.name, leg.id,
                     route.max_duration)
            leg.hangup()
            return
        self._watch(leg, route, left)  # still ringing: it cannot connect and outlast max_duration before then

    # Time

    def _monotonic(self) -> float:
        return self._clock.monotonic() if self._clock is not None else time.monotonic()

    def _call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        clock = self._clock if self._clock is not None else RealClock(asyncio.get_running_loop())
        return clock.call_later(delay, callback)


def _rewrite(route: OutboundRoute, digits: str) -> str:
    rewritten = route.prepend + digits[route.strip_digits:]
    if not rewritten:
        raise DialError(403, f"Invalid number (route {route.name} leaves nothing of {digits} to dial)")
    return rewritten


def _callerid(route: OutboundRoute, callerid: str) -> str:
    if route.callerid_policy == "fixed":
        return route.callerid_value
    if route.callerid_policy == "anonymous":
        return ANONYMOUS
    return callerid
