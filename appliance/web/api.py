"""What management API methods are made of: their parameters, their errors, the services they reach.

A method is a function of (`Api`, `Params`) returning the JSON answer. A plain function runs on the
store's thread (all its reads and writes there, one after another, never racing another method's);
an `async` one runs on the event loop, for what the engine or the lines own (sessions, live status).
Wire names and shapes are Voximplant's (reference/management-api.md), so its clients work unchanged.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from appliance.engine.engine import Engine
from appliance.logs import SystemLog
from appliance.media.recording import RecordingStore
from appliance.router import Router
from appliance.sip.trace import SipTrace
from appliance.store.admins import AdminUsers
from appliance.store.apikeys import ApiKeys
from appliance.store.audit import AuditLog
from appliance.store.catalog import Application, Catalog, Rule
from appliance.store.db import Database, NotFound
from appliance.store.history import History
from appliance.store.kv import KeyValueStore
from appliance.store.routes import OutboundRouteStore
from appliance.store.secrets import SecretStore
from appliance.store.sip import SipLineStore
from appliance.supervisor.metrics import Metrics

# Error codes of the {"error": {"code", "msg"}} answers (HTTP status in brackets).
ERR_AUTH = 100  # (401) no or wrong credentials
ERR_PARAMETER = 101  # (400) a parameter is missing, malformed or out of range
ERR_NOT_FOUND = 102  # (404) no such object
ERR_METHOD = 103  # (404) no such method
ERR_EXISTS = 104  # (409) the name is taken
ERR_SCRIPT = 105  # (400) the scenario does not compile: file, line and message
ERR_TOO_LARGE = 106  # (413) the request body is over the limit
ERR_UNSUPPORTED = 107  # (400) a Voximplant feature this box does not have
ERR_FORBIDDEN = 108  # (403) the caller's role may not do this (web panel users)
ERR_RATE = 429  # (429) too many requests: retry after the time given
ERR_INTERNAL = 500  # (500) the box failed; its log says why

DEFAULT_COUNT = 20
INT_LIMIT = 2**63
MAX_COUNT = 1000
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def missing(name: str) -> ApiError:
    return ApiError(400, ERR_PARAMETER, f"{name} is required")


def invalid(name: str, why: str) -> ApiError:
    return ApiError(400, ERR_PARAMETER, f"{name}: {why}")


def api_date(timestamp: float | None) -> str:
    """Voximplant's date format, UTC; '' for none."""
    return "" if timestamp is None else time.strftime(DATE_FORMAT, time.gmtime(timestamp))


class Params:
    """A request's parameters (query and form), read with their Voximplant types, and who sent it."""

    def __init__(self, values: dict[str, str], *, key_id: str = "", source: str = "", base_url: str = "") -> None:
        self.values = values
        self.key_id = key_id  # the API key the request acts with
        self.source = source  # the address it came from
        self.base_url = base_url  # where the caller reached the box: URLs handed back must work from there

    def has(self, name: str) -> bool:
        return self.values.get(name, "") != ""

    def text(self, name: str, *, required: bool = False, default: str = "", max_chars: int | None = None) -> str:
        value = self.values.get(name)
        if value is None or (required and value == ""):
            if required:
                raise missing(name)
            return default
        if max_chars is not None and len(value) > max_chars:
            raise invalid(name, f"at most {max_chars} characters")
        return value

    def optional_text(self, name: str, max_chars: int | None = None) -> str | None:
        return self.text(name, max_chars=max_chars) if name in self.values else None

    def integer(self, name: str, *, required: bool = False, minimum: int | None = None,
                maximum: int | None = None) -> int | None:
        value = self.values.get(name, "")
        if value == "":
            if required:
                raise missing(name)
            return None
        try:
            number = int(value)
        except ValueError:
            raise invalid(name, f"{value[:40]!r} is not a whole number") from None
        if not -INT_LIMIT < number < INT_LIMIT:  # what SQLite can hold: larger numbers are no one's id
            raise invalid(name, "out of range")
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            bounds = f"from {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise invalid(name, f"must be {bounds}, not {number}")
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name, "").strip().lower()
        if value == "":
            return default
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise invalid(name, f"expected true or false, not {value[:40]!r}")

    def optional_boolean(self, name: str) -> bool | None:
        return self.boolean(name) if self.has(name) else None

    def names(self, name: str) -> list[str] | None:
        """A ';'-separated list; None when not given."""
        if not self.has(name):
            return None
        items = [item.strip() for item in self.values[name].split(";")]
        if any(not item for item in items):
            raise invalid(name, "an empty item in the ';'-separated list")
        return items

    def ids(self, name: str) -> list[int] | None:
        items = self.names(name)
        if items is None:
            return None
        try:
            numbers = [int(item) for item in items]
        except ValueError:
            raise invalid(name, "expected ';'-separated whole numbers") from None
        if any(not -INT_LIMIT < n < INT_LIMIT for n in numbers):
            raise invalid(name, "out of range")
        return numbers

    def date(self, name: str, *, required: bool = False) -> float | None:
        """'YYYY-MM-DD HH:MM:SS' (or just the date) in UTC, as Unix seconds."""
        value = self.text(name, required=required).strip()
        if not value:
            return None
        for fmt in (DATE_FORMAT, "%Y-%m-%d"):
            try:
                return float(calendar.timegm(time.strptime(value, fmt)))
            except ValueError:
                continue
        raise invalid(name, f"expected YYYY-MM-DD HH:MM:SS (UTC), not {value[:40]!r}")

    def page(self, default_count: int = DEFAULT_COUNT, max_count: int = MAX_COUNT,
             max_offset: int | None = None) -> tuple[int, int]:
        """(count, offset) of a listing."""
        count = self.integer("count", minimum=1, maximum=max_count)
        offset = self.integer("offset", minimum=0, maximum=max_offset)
        return (default_count if count is None else count), (offset or 0)

    def either(self, first: str, second: str, *, required: bool = True) -> None:
        """Voximplant's 'one of' pairs: never both; one of them when `required`."""
        if self.has(first) and self.has(second):
            raise ApiError(400, ERR_PARAMETER, f"give {first} or {second}, not both")
        if required and not (self.has(first) or self.has(second)):
            raise ApiError(400, ERR_PARAMETER, f"{first} or {second} is required")

    def one_of(self, id_name: str, name_name: str, *, required: bool = True) -> tuple[int | None, str | None]:
        """An object given by id or by name: (id, None) or (None, name); (None, None) if optional and absent."""
        self.either(id_name, name_name, required=required)
        return self.integer(id_name), (self.values[name_name] if self.has(name_name) else None)


def listing(items: list[Any], total: int, offset: int) -> dict[str, Any]:
    """A page of results the way Voximplant answers them."""
    return {"result": items, "total_count": total, "count": len(items), "offset": offset}


class Reload(Enum):
    """What the running box must take again after a method changed the store."""

    ROUTING = "routing"  # applications, rules, scenarios: the routing table
    LINES = "lines"  # SIP users and trunks
    OUTBOUND = "outbound"  # outbound routes


@dataclass
class Api:
    """The services methods work with. Store objects are used on the store's thread only."""

    db: Database
    account_name: str
    catalog: Catalog
    router: Router
    engine: Engine
    keys: ApiKeys
    admins: AdminUsers
    audit: AuditLog
    kv: KeyValueStore
    secrets: SecretStore
    sip_lines: SipLineStore
    outbound: OutboundRouteStore
    history: History
    recordings: RecordingStore | None
    # On the loop: live state of what runs.
    health: Callable[[], dict[str, object]]
    line_status: Callable[[], list[dict[str, object]]]
    reload: Callable[[Reload], Awaitable[None]]
    metrics: Metrics  # the dashboard's figures, sampled on the loop
    data_dir: Path  # the daemon's data directory (backups take its TLS files and box id)
    apply_system_settings: bool  # [appliance] apply_system_settings: set the system's time zone too
    sip_trace: SipTrace | None = None  # the SIP messages of recent calls, by Call-ID (on the loop)
    system_log: SystemLog | None = None  # the daemon's latest log records (any thread)

    def application(self, p: Params, name_name: str = "application_name") -> Application:
        """The application a request names by application_id or `name_name` (one of them is required)."""
        found = self.optional_application(p, name_name, required=True)
        assert found is not None
        return found

    def optional_application(self, p: Params, name_name: str = "application_name", *,
                             required: bool = False) -> Application | None:
        app_id, app_name = p.one_of("application_id", name_name, required=required)
        if app_id is None and app_name is None:
            return None
        try:
            return self.catalog.application(id=app_id, name=app_name)
        except NotFound:
            raise not_found("application", app_name if app_name is not None else app_id) from None

    def application_filter(self, p: Params) -> tuple[bool, Application | None]:
        """For listings: (False, None) when the request names an application that does not exist (the
        listing is then empty, as Voximplant's), else (True, the application or None)."""
        try:
            return True, self.optional_application(p)
        except ApiError as exc:
            if exc.code != ERR_NOT_FOUND:
                raise
            return False, None

    def rule(self, p: Params, app: Application | None = None) -> Rule:
        """The rule a request names: rule_id, or rule_name (within `app`, needed when names repeat)."""
        rule_id, rule_name = p.one_of("rule_id", "rule_name")
        if rule_id is not None:
            try:
                rule = self.catalog.rule(rule_id)
            except NotFound:
                raise not_found("rule", rule_id) from None
            if app is not None and rule.application_id != app.id:
                raise not_found("rule", f"{rule_id} in application {app.name}")
            return rule
        found = [r for r in self.catalog.rules(None if app is None else app.id) if r.name == rule_name]
        if not found:
            raise not_found("rule", rule_name)
        if len(found) > 1:
            raise ApiError(400, ERR_PARAMETER, f"several applications have a rule {rule_name!r}: give "
                           "application_id or application_name")
        return found[0]

    def scenario_ids(self, p: Params, *, required: bool = True) -> list[int]:
        """Scenarios a request lists by scenario_id or scenario_name (';'-separated), as ids."""
        p.either("scenario_id", "scenario_name", required=required)
        ids = p.ids("scenario_id")
        if ids is not None:
            names: list[str | int] = list(ids)
        else:
            names = list(p.names("scenario_name") or [])
        found = []
        for key in names:
            try:
                scenario = self.catalog.scenario(id=key) if isinstance(key, int) else self.catalog.scenario(name=key)
            except NotFound:
                raise not_found("scenario", key) from None
            found.append(scenario.id)
        return found


def not_found(kind: str, key: object) -> ApiError:
    return ApiError(404, ERR_NOT_FOUND, f"no {kind} {key}")


Handler = Callable[[Api, Params], dict[str, Any]] | Callable[[Api, Params], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    writes: bool = False  # changes something: audited
    reload: tuple[Reload, ...] = ()  # what to reload after it succeeded
