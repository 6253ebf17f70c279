"""SIP registrations: CreateSipRegistration, UpdateSipRegistration, BindSipRegistration,
DeleteSipRegistration, GetSipRegistrations.

A registration is a SIP trunk the box registers to (appliance/sip/trunk.py). Beyond Voximplant's
parameters the box takes `trunk_name` (what scripts dial: sip:NUMBER@NAME; by default the proxy's host)
and `transport` (udp, tcp or tls). Calls coming in through a registration bound to a rule run that rule.
"""

from __future__ import annotations

import re
from typing import Any

from appliance.store.sip import TRANSPORTS, TRUNK_NAME, SipTrunk
from appliance.web.api import (
    ERR_PARAMETER,
    ERR_UNSUPPORTED,
    Api,
    ApiError,
    Method,
    Params,
    Reload,
    listing,
    not_found,
)

PROXY = re.compile(r"^(?:sip:)?(\[[0-9A-Fa-f:.]+\]|[^\s:;@<>\[\]]+)(?::(\d{1,5}))?\Z")


def _proxy(p: Params, required: bool) -> tuple[str, int | None] | None:
    text = p.text("proxy", required=required).strip()
    if not text:
        return None
    match = PROXY.match(text)
    if match is None or (match.group(2) and not 0 < int(match.group(2)) < 65536):
        raise ApiError(400, ERR_PARAMETER, f"proxy: expected HOST or HOST:PORT, not {text[:80]!r}")
    host = match.group(1).strip("[]")
    return host, int(match.group(2)) if match.group(2) else None


def _unsupported(p: Params) -> None:
    if p.has("outbound_proxy"):
        raise ApiError(400, ERR_UNSUPPORTED, "outbound_proxy: not supported on this box (name the proxy as the "
                       "trunk's host, or use DNS SRV)")
    if p.has("user_id") or p.has("user_name"):
        raise ApiError(400, ERR_UNSUPPORTED, "binding a registration to a user is not supported on this box: bind "
                       "it to a rule whose scenario calls the user (callUser)")


def _binding(api: Api, p: Params) -> dict[str, Any]:
    """application_id and rule_id fields from the request's application and rule, where given."""
    changes: dict[str, Any] = {}
    app = api.optional_application(p)
    if app is not None:
        changes["application_id"] = app.id
    if p.has("rule_id") or p.has("rule_name"):
        rule = api.rule(p, app)
        changes["rule_id"] = rule.id
        changes["application_id"] = rule.application_id
    return changes


def _registration(api: Api, p: Params) -> SipTrunk:
    registration_id = p.integer("sip_registration_id", required=True)
    trunk = next((t for t in api.sip_lines.trunks() if t.id == registration_id and t.register), None)
    if trunk is None:
        raise not_found("SIP registration", registration_id)
    return trunk


def _transport(p: Params) -> str | None:
    transport = p.optional_text("transport")
    if transport is not None and transport not in TRANSPORTS:
        raise ApiError(400, ERR_PARAMETER, f"transport is one of {', '.join(TRANSPORTS)}")
    return transport


def create_sip_registration(api: Api, p: Params) -> dict[str, Any]:
    _unsupported(p)
    proxy = _proxy(p, required=True)
    assert proxy is not None
    host, port = proxy
    name = p.text("trunk_name")
    if not name:  # the proxy's host, made unique
        taken = {t.name for t in api.sip_lines.trunks()}
        base = host if TRUNK_NAME.match(host) else "trunk"
        name = base if base not in taken else next(f"{base}-{n}" for n in range(2, 10_000)
                                                   if f"{base}-{n}" not in taken)
    binding = _binding(api, p)
    trunk = api.sip_lines.add_trunk(
        name, host, port, _transport(p) or "udp", p.text("sip_username", required=True), p.text("password"),
        register=True, application_id=binding.get("application_id"), rule_id=binding.get("rule_id"),
        auth_user=p.text("auth_user"))
    return {"result": 1, "sip_registration_id": trunk.id}


def update_sip_registration(api: Api, p: Params) -> dict[str, Any]:
    _unsupported(p)
    trunk = _registration(api, p)
    changes = _binding(api, p)
    proxy = _proxy(p, required=False)
    if proxy is not None:
        changes["host"], changes["port"] = proxy
    for param, field in (("sip_username", "username"), ("password", "password"), ("auth_user", "auth_user"),
                         ("trunk_name", "name")):
        if param in p.values:
            changes[field] = p.text(param)
    transport = _transport(p)
    if transport is not None:
        changes["transport"] = transport
    api.sip_lines.update_trunk(trunk.id, **changes)
    return {"result": 1}


def bind_sip_registration(api: Api, p: Params) -> dict[str, Any]:
    _unsupported(p)
    trunk = _registration(api, p)
    if p.boolean("bind", default=True):
        changes = _binding(api, p)
        if not changes:
            raise ApiError(400, ERR_PARAMETER, "give the application or the rule to bind the registration to")
    else:
        changes = {"application_id": None, "rule_id": None}
    api.sip_lines.update_trunk(trunk.id, **changes)
    return {"result": 1}


def delete_sip_registration(api: Api, p: Params) -> dict[str, Any]:
    api.sip_lines.delete_trunk(_registration(api, p).id)
    return {"result": 1}


async def get_sip_registrations(api: Api, p: Params) -> dict[str, Any]:
    live = {str(s["name"]): s for s in api.line_status() if s.get("kind") == "sip-trunk"}
    return await api.db.call(_get_sip_registrations, api, p, live)


def _get_sip_registrations(api: Api, p: Params, live: dict[str, dict[str, object]]) -> dict[str, Any]:
    count, offset = p.page()
    wanted_id, username = p.integer("sip_registration_id"), p.optional_text("sip_username")
    matched, app = api.application_filter(p)
    if not matched:
        return listing([], 0, offset)
    successful, bound = p.optional_boolean("successful"), p.optional_boolean("is_bound_to_application")
    proxy_part = p.text("proxy")
    rule = api.rule(p, app) if p.has("rule_id") or p.has("rule_name") else None
    apps = {a.id: a.name for a in api.catalog.applications()}
    rules = {r.id: r.name for r in api.catalog.rules()}
    found = []
    for trunk in api.sip_lines.trunks():
        state = live.get(trunk.name, {})
        registered = state.get("registration") == "registered"
        if not trunk.register or (wanted_id is not None and trunk.id != wanted_id) \
                or (username is not None and trunk.username != username) \
                or (app is not None and trunk.application_id != app.id) \
                or (rule is not None and trunk.rule_id != rule.id) \
                or (successful is not None and registered != successful) \
                or (bound is not None and (trunk.application_id is not None) != bound) \
                or proxy_part not in trunk.host:
            continue
        found.append({
            "sip_registration_id": trunk.id, "sip_username": trunk.username,
            "proxy": trunk.host if trunk.port is None else f"{trunk.host}:{trunk.port}",
            "auth_user": trunk.auth_user, "outbound_proxy": "", "successful": registered,
            "status_code": _status_code(str(state.get("detail", ""))), "error_message": "" if registered else
            str(state.get("detail", "")), "in_progress": state.get("registration") == "registering",
            "deactivated": False, "is_persistent": True,
            "application_id": trunk.application_id, "application_name": apps.get(trunk.application_id or 0, ""),
            "rule_id": trunk.rule_id, "rule_name": rules.get(trunk.rule_id or 0, ""),
            # Appliance fields: the name scripts dial, its transport, and the keep-alive's view of the trunk.
            "trunk_name": trunk.name, "transport": trunk.transport, "reachable": state.get("reachable"),
            "rtt_ms": state.get("rtt_ms"), "expires_in": state.get("expires_in"),
        })
    return listing(found[offset:offset + count], len(found), offset)


def _status_code(detail: str) -> int:
    """The SIP status in the trunk's last registration detail ("403 Forbidden"), 200 once registered."""
    match = re.match(r"(\d{3})\b", detail)
    return int(match.group(1)) if match else (200 if detail.lower().startswith("registered") else 0)


METHODS = [
    Method("CreateSipRegistration", create_sip_registration, writes=True, reload=(Reload.LINES,)),
    Method("UpdateSipRegistration", update_sip_registration, writes=True, reload=(Reload.LINES,)),
    Method("BindSipRegistration", bind_sip_registration, writes=True, reload=(Reload.LINES,)),
    Method("DeleteSipRegistration", delete_sip_registration, writes=True, reload=(Reload.LINES,)),
    Method("GetSipRegistrations", get_sip_registrations),
]
