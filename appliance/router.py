"""Routing: which rule (and so which scenarios) runs for a destination or a StartScenarios call.

Rules are tried in order, applications in the order they were created and rules by position; a
rule's pattern must match the whole destination and its exclude pattern must not (reference 4.10).
A line bound to an application only tries that application's rules.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from appliance.engine.calls import DialError
from appliance.engine.engine import Engine
from appliance.engine.errors import EngineError
from appliance.engine.session import ScriptSource, Session, SessionSpec
from appliance.errors import ApplianceError
from appliance.legs.leg import Leg, LegState, Party
from appliance.legs.local import LocalCall
from appliance.lines.line import LineIdentity, Originate
from appliance.patterns import compile_pattern
from appliance.store.catalog import Application, Catalog, Rule
from appliance.store.secrets import SecretStore
from appliance.tasks import TaskSet

log = logging.getLogger(__name__)


class RoutingError(ApplianceError, LookupError):
    """No rule for the request: unknown rule, application, or no match."""


class AmbiguousRule(RoutingError):
    """A rule name several applications use, given without the application."""


@dataclass(frozen=True)
class Route:
    application: Application
    rule: Rule
    scripts: tuple[ScriptSource, ...]

    def spec(self, custom_data: str, secrets: dict[str, str], initiator: str) -> SessionSpec:
        return SessionSpec(
            scripts=self.scripts,
            application_id=self.application.id,
            application_name=self.application.name,
            rule_id=self.rule.id,
            rule_name=self.rule.name,
            custom_data=custom_data,
            secrets=secrets,
            initiator=initiator,
        )


class RoutingTable:
    """An immutable snapshot of applications, rules and scenarios, rebuilt when they change."""

    def __init__(self, catalog: Catalog) -> None:
        self.applications = {a.id: a for a in catalog.applications()}
        scenarios = {s.id: s for s in catalog.scenarios()}
        self.routes: list[tuple[re.Pattern[str], re.Pattern[str] | None, Route]] = []
        for rule in catalog.rules():
            scripts = tuple(ScriptSource(scenarios[i].name, scenarios[i].script) for i in rule.scenario_ids)
            route = Route(self.applications[rule.application_id], rule, scripts)
            try:
                pattern = compile_pattern(rule.pattern)
                exclude = compile_pattern(rule.pattern_exclude) if rule.pattern_exclude else None
            except ValueError as exc:
                log.error("rule %s of %s is skipped: %s", rule.name, route.application.name, exc)
                continue
            self.routes.append((pattern, exclude, route))

    def match(self, destination: str, application_id: int | None = None) -> Route | None:
        for pattern, exclude, route in self.routes:
            if application_id is not None and route.application.id != application_id:
                continue
            if pattern.fullmatch(destination) and not (exclude and exclude.fullmatch(destination)):
                return route
        return None

    def rule(
        self,
        *,
        rule_id: int | None = None,
        rule_name: str | None = None,
        application_id: int | None = None,
        application_name: str | None = None,
    ) -> Route:
        """The route of one rule, by id, or by name within an application (StartScenarios)."""
        found = [
            route
            for _, _, route in self.routes
            if (rule_id is None or route.rule.id == rule_id)
            and (rule_name is None or route.rule.name == rule_name)
            and (application_id is None or route.application.id == application_id)
            and (application_name is None or route.application.name == application_name)
        ]
        if not found:
            raise RoutingError("no such rule")
        if len(found) > 1:
            raise AmbiguousRule("the rule name is used by several applications: give application_id or "
                                "application_name")
        return found[0]


class Router:
    """The live routing table over the store; `reload()` it after the catalog changed."""

    def __init__(self, catalog: Catalog, secrets: SecretStore) -> None:
        self._catalog = catalog
        self._secrets = secrets
        self.table = RoutingTable(catalog)

    async def reload(self) -> None:
        self.table = await self._catalog.db.call(RoutingTable, self._catalog)

    async def secrets(self, route: Route) -> dict[str, str]:
        return await self._catalog.db.call(self._secrets.values, route.application.id)

    def route_leg(self, destination: str, application_id: int | None = None) -> Route | None:
        """The rule an incoming leg runs, or None: the line then refuses the leg (SIP 404)."""
        route = self.table.match(destination, application_id)
        if route is None:
            log.warning("no rule matches destination %r: the leg is refused", destination)
        return route


class CallRouter:
    """Incoming legs to sessions: the first rule matching a leg's destination starts its session.

    It also runs standalone conferences (reference section 4.7, the engine's `Conferences`): a
    `callConference(id)` becomes a local call whose incoming leg goes to the conference's session, the
    one session per application and id, started from the rule matching the id on the first call.
    """

    def __init__(self, router: Router, engine: Engine) -> None:
        self.router = router
        self.engine = engine
        self._tasks = TaskSet("call router")
        self._conferences: dict[tuple[int, str], Session] = {}

    def route(self, line: LineIdentity, leg: Leg) -> None:
        if line.rule_id is not None:  # a line bound to a rule (a SIP registration's BindSipRegistration)
            try:
                route: Route | None = self.router.table.rule(rule_id=line.rule_id)
            except RoutingError:
                log.warning("line %s is bound to rule %s, which is gone: the leg is refused", line.name,
                            line.rule_id)
                route = None
        else:
            route = self.router.route_leg(leg.callee.number, line.application_id)
        if route is None:
            leg.reject(404)
            return
        self._tasks.spawn(self._start(route, line, leg))

    async def _secrets(self, route: Route) -> dict[str, str]:
        """The rule's secrets; a virtual clock waits meanwhile, as the call does."""
        self.engine.clock.hold()
        try:
            return await self.router.secrets(route)
        finally:
            self.engine.clock.release()

    async def _start(self, route: Route, line: LineIdentity, leg: Leg) -> None:
        secrets = await self._secrets(route)
        if leg.state is LegState.TERMINATED:
            return  # the caller gave up meanwhile
        try:
            session = self.engine.start_session(route.spec("", secrets, f"{line.kind} {line.name}"))
        except EngineError as exc:
            log.warning("cannot start a session for an incoming call: %s", exc)
            leg.reject(503)
            return
        session.attach_incoming(leg)

    def join(self, application_id: int | None, conference_id: str, options: Originate) -> Leg:
        plane = self.engine.plane
        if plane is None:
            raise DialError(503, "Service Unavailable (no media plane)")
        route = self.router.table.match(conference_id, application_id)
        if route is None:
            raise DialError(404, f"Not Found (no rule matches the conference id {conference_id!r})")
        call = LocalCall(plane, self.engine.clock, Party(options.caller, options.display_name),
                         Party(conference_id, "", f"conference:{conference_id}"), dict(options.headers))
        for leg in (call.caller, call.callee):
            leg.line = f"conference:{conference_id}"
        key = (route.application.id, conference_id)
        session = self._conferences.get(key)
        if session is not None and session.live:
            session.attach_incoming(call.callee)
        else:
            self._tasks.spawn(self._start_conference(key, route, call.callee))
        return call.caller

    async def _start_conference(self, key: tuple[int, str], route: Route, leg: Leg) -> None:
        secrets = await self._secrets(route)
        session = self._conferences.get(key)  # a second call may have started it meanwhile
        if session is None or not session.live:
            try:
                session = self.engine.start_session(route.spec("", secrets, f"conference {key[1]}"))
            except EngineError as exc:
                log.warning("cannot start the session of conference %s: %s", key[1], exc)
                leg.reject(503)
                return
            self._conferences[key] = session
            session.ended.add_done_callback(lambda _: self._forget(key, session))
        if leg.state is not LegState.TERMINATED:
            session.attach_incoming(leg)

    def _forget(self, key: tuple[int, str], session: Session) -> None:
        if self._conferences.get(key) is session:
            del self._conferences[key]

    async def close(self) -> None:
        await self._tasks.close()
