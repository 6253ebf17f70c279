"""Rules: AddRule, GetRules, SetRuleInfo, DelRule, ReorderRules."""

from __future__ import annotations

from typing import Any

from appliance.store.catalog import RULE_NAME_MAX, Rule
from appliance.web.api import ERR_PARAMETER, ERR_UNSUPPORTED, Api, ApiError, Method, Params, Reload, api_date, listing

PATTERN_MAX_CHARS = 1000


def rule_info(api: Api, rule: Rule, with_scenarios: bool) -> dict[str, Any]:
    info: dict[str, Any] = {
        "rule_id": rule.id, "application_id": rule.application_id, "rule_name": rule.name,
        "rule_pattern": rule.pattern, "rule_pattern_exclude": rule.pattern_exclude,
        "video_conference": rule.video_conference, "modified": api_date(rule.modified),
    }
    if with_scenarios:
        scenarios = [api.catalog.scenario(id=i) for i in rule.scenario_ids]
        info["scenarios"] = [{"scenario_id": s.id, "scenario_name": s.name, "modified": api_date(s.modified)}
                             for s in scenarios]
    return info


def _no_key_binding(p: Params) -> None:
    if p.has("bind_key_id"):
        raise ApiError(400, ERR_UNSUPPORTED, "bind_key_id: scenarios on this box reach its API without a bound key")


def add_rule(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    _no_key_binding(p)
    rule = api.catalog.add_rule(
        app.id, p.text("rule_name", required=True, max_chars=RULE_NAME_MAX),
        p.text("rule_pattern", required=True, max_chars=PATTERN_MAX_CHARS),
        p.text("rule_pattern_exclude", max_chars=PATTERN_MAX_CHARS), api.scenario_ids(p, required=False),
        p.boolean("video_conference"))
    return {"result": 1, "rule_id": rule.id}


def get_rules(api: Api, p: Params) -> dict[str, Any]:
    count, offset = p.page()
    matched, app = api.application_filter(p)
    if not matched:
        return listing([], 0, offset)
    rule_id, rule_name = p.integer("rule_id"), p.optional_text("rule_name")
    template = p.text("template")
    video = p.optional_boolean("video_conference")
    rules = [
        r for r in api.catalog.rules(None if app is None else app.id)
        if (rule_id is None or r.id == rule_id) and (rule_name is None or r.name == rule_name)
        and (not template or template in r.pattern) and (video is None or r.video_conference == video)
    ]
    with_scenarios = p.boolean("with_scenarios")
    return listing([rule_info(api, r, with_scenarios) for r in rules[offset:offset + count]], len(rules), offset)


def set_rule_info(api: Api, p: Params) -> dict[str, Any]:
    rule_id = p.integer("rule_id", required=True)
    _no_key_binding(p)
    rule = api.rule(Params({"rule_id": str(rule_id)}))  # rule_name here is the new name
    name = p.optional_text("rule_name", max_chars=RULE_NAME_MAX)
    api.catalog.update_rule(
        rule.id, name=name or None, pattern=p.optional_text("rule_pattern", max_chars=PATTERN_MAX_CHARS) or None,
        pattern_exclude=p.optional_text("rule_pattern_exclude", max_chars=PATTERN_MAX_CHARS),
        video_conference=p.optional_boolean("video_conference"))
    return {"result": 1}


def del_rule(api: Api, p: Params) -> dict[str, Any]:
    app = api.optional_application(p)
    ids = p.ids("rule_id")
    if ids is None:
        ids = [api.rule(p, app).id]
    else:
        p.either("rule_id", "rule_name")
        for rule_id in ids:
            api.rule(Params({"rule_id": str(rule_id)}), app)
    for rule_id in ids:
        api.catalog.delete_rule(rule_id)
    return {"result": 1}


def reorder_rules(api: Api, p: Params) -> dict[str, Any]:
    ids = p.ids("rule_id")
    if not ids:
        raise ApiError(400, ERR_PARAMETER, "rule_id is required: the application's rule ids in their new order")
    first = api.rule(Params({"rule_id": str(ids[0])}))
    api.catalog.reorder_rules(first.application_id, ids)
    return {"result": 1}


METHODS = [
    Method("AddRule", add_rule, writes=True, reload=(Reload.ROUTING,)),
    Method("GetRules", get_rules),
    Method("SetRuleInfo", set_rule_info, writes=True, reload=(Reload.ROUTING,)),
    # SIP registrations bound to the rule are unbound by the store (ON DELETE SET NULL): lines reload too.
    Method("DelRule", del_rule, writes=True, reload=(Reload.ROUTING, Reload.LINES)),
    Method("ReorderRules", reorder_rules, writes=True, reload=(Reload.ROUTING,)),
]
