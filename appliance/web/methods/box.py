"""The appliance's own methods (not Voximplant's): its lines, outbound routes, recordings and
session logs. Same conventions as the rest of the API.

GetLines, AddOutboundRoute, GetOutboundRoutes, SetOutboundRouteInfo, DelOutboundRoute,
ReorderOutboundRoutes, GetSessionLog; and Voximplant's DeleteRecord.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from appliance.store.routes import (
    CALLERID_POLICIES,
    HOURS_MAX_CHARS,
    MAX_CALLS_PER_HOUR_LIMIT,
    MAX_DURATION_LIMIT,
    Hours,
    OutboundRoute,
)
from appliance.web.api import ERR_PARAMETER, Api, ApiError, Method, Params, Reload, invalid, listing, not_found

LOG_CHUNK_MAX = 1 << 20  # bytes of a session log per GetSessionLog answer


async def get_lines(api: Api, p: Params) -> dict[str, Any]:
    """Every line (SIP users, trunks; analog and GSM lines once present) with its live status."""
    kind = p.optional_text("kind")
    lines = [s for s in api.line_status() if kind is None or s.get("kind") == kind]
    return listing(lines, len(lines), 0)


# Outbound routes

def _route_info(route: OutboundRoute) -> dict[str, Any]:
    info = asdict(route)
    info["route_id"], info["route_name"] = info.pop("id"), info.pop("name")
    return info


def _route(api: Api, p: Params) -> OutboundRoute:
    route_id, name = p.one_of("route_id", "route_name")
    for route in api.outbound.list():
        if route.id == route_id or route.name == name:
            return route
    raise not_found("outbound route", name if name is not None else route_id)


def _route_fields(p: Params) -> dict[str, Any]:
    """The route fields a request gives (AddOutboundRoute and SetOutboundRouteInfo take the same names)."""
    fields: dict[str, Any] = {}
    for name in ("pattern", "line", "prepend", "callerid_value"):
        if name in p.values:
            fields[name] = p.text(name, max_chars=1000)
    if "callerid_policy" in p.values:
        policy = p.text("callerid_policy")
        if policy not in CALLERID_POLICIES:
            raise ApiError(400, ERR_PARAMETER, f"callerid_policy is one of {', '.join(CALLERID_POLICIES)}")
        fields["callerid_policy"] = policy
    for name in ("strip_digits", "max_concurrent"):
        if p.has(name):
            fields[name] = p.integer(name, minimum=0, maximum=1000)
    for name, limit in (("max_duration", MAX_DURATION_LIMIT), ("max_calls_per_hour", MAX_CALLS_PER_HOUR_LIMIT)):
        if p.has(name):
            fields[name] = p.integer(name, minimum=0, maximum=limit)
    if "hours" in p.values:  # '' clears them: always open
        hours = p.text("hours", max_chars=HOURS_MAX_CHARS)
        try:
            Hours.parse(hours)
        except ValueError as exc:
            raise invalid("hours", str(exc)) from None
        fields["hours"] = hours
    for name in ("international", "enabled"):
        if p.has(name):
            fields[name] = p.boolean(name)
    return fields


def add_outbound_route(api: Api, p: Params) -> dict[str, Any]:
    fields = _route_fields(p)
    for required in ("pattern", "line"):
        if not fields.get(required):
            raise ApiError(400, ERR_PARAMETER, f"{required} is required")
    route = api.outbound.add(p.text("route_name", required=True), fields.pop("pattern"), fields.pop("line"),
                             **fields)
    return {"result": 1, "route_id": route.id}


def get_outbound_routes(api: Api, p: Params) -> dict[str, Any]:
    count, offset = p.page()
    routes = api.outbound.list()
    return listing([_route_info(r) for r in routes[offset:offset + count]], len(routes), offset)


def set_outbound_route_info(api: Api, p: Params) -> dict[str, Any]:
    route = _route(api, p)
    fields = _route_fields(p)
    if p.has("new_route_name"):
        fields["name"] = p.text("new_route_name")
    api.outbound.update(route.id, **fields)
    return {"result": 1}


def del_outbound_route(api: Api, p: Params) -> dict[str, Any]:
    api.outbound.remove(_route(api, p).id)
    return {"result": 1}


def reorder_outbound_routes(api: Api, p: Params) -> dict[str, Any]:
    ids = p.ids("route_id")
    if not ids:
        raise ApiError(400, ERR_PARAMETER, "route_id is required: every route id in the new order")
    api.outbound.reorder(ids)
    return {"result": 1}


# Recordings and logs

def delete_record(api: Api, p: Params) -> dict[str, Any]:
    """A recording's file and its history entry, by record_id or record_url."""
    record_id, url = p.one_of("record_id", "record_url")
    row = api.history.record_row(record_id=record_id, url=url)
    if row is None:
        raise not_found("record", url if url is not None else record_id)
    found_id, file_name = row
    if api.recordings is not None:
        # The file name comes from the box's own history, never from the request.
        (api.recordings.directory / Path(file_name).name).unlink(missing_ok=True)
    api.history.delete_record(found_id)
    return {"result": 1}


def get_session_log(api: Api, p: Params) -> dict[str, Any]:
    """Part of a session's log: from byte `offset`, at most `count` bytes (1 MiB); poll with next_offset."""
    session_id = p.integer("call_session_history_id", required=True)
    assert session_id is not None
    record = api.history.session(session_id)
    if record is None:
        raise not_found("session", session_id)
    offset = p.integer("offset", minimum=0) or 0
    count = p.integer("count", minimum=1, maximum=LOG_CHUNK_MAX) or LOG_CHUNK_MAX
    data = b""
    if record.log_file:
        try:
            with open(record.log_file, "rb") as f:
                f.seek(offset)
                data = f.read(count)
        except FileNotFoundError:
            pass
    return {"result": data.decode("utf-8", errors="replace"), "next_offset": offset + len(data),
            "finished": record.end_date is not None}


METHODS = [
    Method("GetLines", get_lines),
    Method("AddOutboundRoute", add_outbound_route, writes=True, reload=(Reload.OUTBOUND,)),
    Method("GetOutboundRoutes", get_outbound_routes),
    Method("SetOutboundRouteInfo", set_outbound_route_info, writes=True, reload=(Reload.OUTBOUND,)),
    Method("DelOutboundRoute", del_outbound_route, writes=True, reload=(Reload.OUTBOUND,)),
    Method("ReorderOutboundRoutes", reorder_outbound_routes, writes=True, reload=(Reload.OUTBOUND,)),
    Method("DeleteRecord", delete_record, writes=True),
    Method("GetSessionLog", get_session_log),
]
