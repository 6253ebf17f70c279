"""Scenarios: AddScenario, GetScenarios, SetScenarioInfo, DelScenario, BindScenario, ReorderScenarios.

Every script stored is compiled first (Catalog.check_script); a syntax error is refused with the
scenario's file name, the line and the message.
"""

from __future__ import annotations

from typing import Any

from appliance.engine import limits
from appliance.store.catalog import Scenario
from appliance.web.api import ERR_PARAMETER, Api, ApiError, Method, Params, Reload, api_date, listing


def scenario_info(scenario: Scenario, with_script: bool) -> dict[str, Any]:
    info: dict[str, Any] = {"scenario_id": scenario.id, "scenario_name": scenario.name,
                            "modified": api_date(scenario.modified)}
    if with_script:
        info["scenario_script"] = scenario.script
    return info


def _script(p: Params, required: bool) -> str | None:
    if required and "scenario_script" not in p.values:
        raise ApiError(400, ERR_PARAMETER, "scenario_script is required")
    return p.optional_text("scenario_script", max_chars=limits.SCENARIO_CHARS)


def add_scenario(api: Api, p: Params) -> dict[str, Any]:
    name = p.text("scenario_name", required=True)
    script = _script(p, required=True) or ""
    app = api.optional_application(p)
    has_rule = p.has("rule_id") or p.has("rule_name")
    rule = api.rule(p, app) if has_rule else None
    rewrite = p.boolean("rewrite")
    existing = next((s for s in api.catalog.scenarios() if s.name == name), None)
    if existing is not None and rewrite:
        scenario = api.catalog.update_scenario(existing.id, script=script)
    else:
        scenario = api.catalog.add_scenario(name, script, None if app is None else app.id)
    if rule is not None:
        api.catalog.bind_scenarios(rule.id, [scenario.id], bind=True)
    return {"result": 1, "scenario_id": scenario.id}


def get_scenarios(api: Api, p: Params) -> dict[str, Any]:
    count, offset = p.page()
    scenario_id, name = p.integer("scenario_id"), p.optional_text("scenario_name")
    matched, app = api.application_filter(p)
    if not matched:
        return listing([], 0, offset)
    used_by_app: set[int] = set()
    if app is not None:
        for rule in api.catalog.rules(app.id):
            used_by_app.update(rule.scenario_ids)
    scenarios = [
        s for s in api.catalog.scenarios()
        if (scenario_id is None or s.id == scenario_id) and (name is None or s.name == name)
        and (app is None or s.application_id == app.id or s.id in used_by_app)
    ]
    with_script = p.boolean("with_script")
    return listing([scenario_info(s, with_script) for s in scenarios[offset:offset + count]], len(scenarios), offset)


def set_scenario_info(api: Api, p: Params) -> dict[str, Any]:
    scenario_id, name = p.one_of("scenario_id", "required_scenario_name")
    try:
        scenario = api.catalog.scenario(id=scenario_id) if name is None else api.catalog.scenario(name=name)
    except LookupError:
        raise ApiError(404, 102, f"no scenario {name if name is not None else scenario_id}") from None
    api.catalog.update_scenario(scenario.id, p.optional_text("scenario_name") or None, _script(p, required=False))
    return {"result": 1}


def del_scenario(api: Api, p: Params) -> dict[str, Any]:
    if p.text("scenario_id") == "all" or p.text("scenario_name") == "all":
        ids = [s.id for s in api.catalog.scenarios()]
    else:
        ids = api.scenario_ids(p)
    for scenario_id in ids:
        api.catalog.delete_scenario(scenario_id)
    return {"result": 1}


def bind_scenario(api: Api, p: Params) -> dict[str, Any]:
    app = api.optional_application(p)
    rule = api.rule(p, app)
    api.catalog.bind_scenarios(rule.id, api.scenario_ids(p), p.boolean("bind", default=True))
    return {"result": 1}


def reorder_scenarios(api: Api, p: Params) -> dict[str, Any]:
    rule = api.rule(p)
    ids = p.ids("scenario_id")
    if ids is None:
        raise ApiError(400, ERR_PARAMETER, "scenario_id is required: the rule's scenario ids in their new order")
    api.catalog.reorder_scenarios(rule.id, ids)
    return {"result": 1}


METHODS = [
    Method("AddScenario", add_scenario, writes=True, reload=(Reload.ROUTING,)),
    Method("GetScenarios", get_scenarios),
    Method("SetScenarioInfo", set_scenario_info, writes=True, reload=(Reload.ROUTING,)),
    Method("DelScenario", del_scenario, writes=True, reload=(Reload.ROUTING,)),
    Method("BindScenario", bind_scenario, writes=True, reload=(Reload.ROUTING,)),
    Method("ReorderScenarios", reorder_scenarios, writes=True, reload=(Reload.ROUTING,)),
]
