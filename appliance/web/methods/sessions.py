"""Starting sessions from the API: StartScenarios."""

from __future__ import annotations

from typing import Any

from appliance.engine import limits
from appliance.router import AmbiguousRule, RoutingError
from appliance.web.api import ERR_NOT_FOUND, ERR_PARAMETER, Api, ApiError, Method, Params


async def start_scenarios(api: Api, p: Params) -> dict[str, Any]:
    """A new session of the rule's scenarios, with no call: AppEvents.Started, then HttpRequests to its URL."""
    p.one_of("rule_id", "rule_name")
    app_id, app_name = p.one_of("application_id", "application_name", required=False)
    custom_data = p.text("script_custom_data", max_chars=limits.CUSTOM_DATA_CHARS)
    try:
        route = api.router.table.rule(rule_id=p.integer("rule_id"), rule_name=p.optional_text("rule_name"),
                                      application_id=app_id, application_name=app_name)
    except AmbiguousRule as exc:
        raise ApiError(400, ERR_PARAMETER, str(exc)) from None
    except RoutingError as exc:
        raise ApiError(404, ERR_NOT_FOUND, str(exc)) from None
    spec = route.spec(custom_data, await api.router.secrets(route), initiator=f"StartScenarios from {p.source}")
    session = api.engine.start_session(spec, base_url=p.base_url)
    return {
        "result": 1,
        "media_session_access_url": session.access_url,
        "media_session_access_secure_url": session.access_url if session.access_url.startswith("https:") else "",
        "media_session_check_url": "",
        "call_session_history_id": session.id,
    }


METHODS = [
    Method("StartScenarios", start_scenarios, writes=True),
]
