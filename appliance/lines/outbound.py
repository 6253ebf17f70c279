"""Outbound routes at work: the line a `VoxEngine.callPSTN(number, callerid)` goes out through.

`OutboundRoutes` holds a snapshot of the store's routes (`load()` it again after they change) and the
calls each route carries. For a number it picks the first enabled route, in position order, whose
pattern matches the whole number; numbers starting with '+' or '00' only go through routes allowed
international calls (a toll-fraud guard). The route rewrites the number and sets the caller ID, and
the call goes to the line the route names, whatever kind of line that is.

A route's calls are counted by keeping the legs it dialled: a leg stops counting once its state is
TERMINATED. No one has to report the end of a call, so no end can be missed, and the session keeps
the leg's `on_event` to itself.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from appliance.engine.calls import DialError
from appliance.legs.leg import Leg, LegState
from appliance.lines.line import Line, Originate
from appliance.patterns import compile_pattern
from appliance.store.routes import OutboundRoute

log = logging.getLogger(__name__)

DECORATION = re.compile(r"[\s.()\-]")  # how people write numbers: "+7 (495) 123-45-67"
NUMBER = re.compile(r"\+?[0-9*#]+")
ANONYMOUS = "anonymous"


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


class OutboundRoutes:
    def __init__(self, routes: Iterable[OutboundRoute] = ()) -> None:
        self._routes: list[tuple[re.Pattern[str], OutboundRoute]] = []
        self._legs: dict[int, list[Leg]] = {}  # by route id: the legs it dialled that may still be up
        self.load(routes)

    def load(self, routes: Iterable[OutboundRoute]) -> None:
        """Take a new snapshot of the routes; calls in progress stay counted against their route's id."""
        self._routes = []
        for route in sorted(routes, key=lambda r: (r.position, r.id)):
            if not route.enabled:
                continue
            try:
                self._routes.append((compile_pattern(route.pattern, "route"), route))
            except ValueError as exc:  # the store checks patterns: this one was written behind its back
                log.error("outbound route %s is skipped: %s", route.name, exc)

    @property
    def count(self) -> int:
        """Enabled routes in use."""
        return len(self._routes)

    def active(self, route_id: int) -> int:
        """The calls going through a route now."""
        return len(self._live(route_id))

    def _live(self, route_id: int) -> list[Leg]:
        """The route's legs that have not ended; the ended ones are let go."""
        legs = [leg for leg in self._legs.pop(route_id, []) if leg.state is not LegState.TERMINATED]
        if legs:
            self._legs[route_id] = legs
        return legs

    def pick(self, number: str, callerid: str = "") -> Pick:
        """The route for `number` and what it dials; DialError 403, 404 or 486 when there is none."""
        digits = normalise(number)
        international = is_international(digits)
        refused: OutboundRoute | None = None  # the first route that matched but forbids international calls
        for pattern, route in self._routes:
            if not pattern.fullmatch(digits):
                continue
            if international and not route.international:
                refused = refused or route
                continue
            if route.max_concurrent and self.active(route.id) >= route.max_concurrent:
                raise DialError(486, f"Route {route.name} is at its limit of {route.max_concurrent} calls")
            return Pick(route, route.line, _rewrite(route, digits), _callerid(route, callerid))
        if refused is not None:
            raise DialError(403, f"International calls are not allowed on route {refused.name}")
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
        self._legs[pick.route.id] = [*self._live(pick.route.id), leg]
        return leg


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
