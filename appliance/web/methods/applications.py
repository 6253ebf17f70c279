"""Applications: AddApplication, GetApplications, SetApplicationInfo, DelApplication."""

from __future__ import annotations

from typing import Any

from appliance.store.catalog import Application
from appliance.web.api import Api, Method, Params, Reload, api_date, listing
from appliance.web.methods.rules import rule_info


def application_info(app: Application) -> dict[str, Any]:
    return {"application_id": app.id, "application_name": app.name, "modified": api_date(app.modified),
            "secure_record_storage": app.secure_record_storage}


def add_application(api: Api, p: Params) -> dict[str, Any]:
    app = api.catalog.add_application(p.text("application_name", required=True),
                                      p.boolean("secure_record_storage"))
    return {"result": 1, "application_id": app.id, "application_name": app.name,
            "secure_record_storage": app.secure_record_storage}


def get_applications(api: Api, p: Params) -> dict[str, Any]:
    count, offset = p.page()
    matched, wanted = api.application_filter(p)
    apps = [wanted] if wanted is not None else api.catalog.applications() if matched else []
    with_rules, with_scenarios = p.boolean("with_rules"), p.boolean("with_scenarios")
    page = []
    for app in apps[offset:offset + count]:
        info = application_info(app)
        if with_rules:
            info["rules"] = [rule_info(api, rule, with_scenarios) for rule in api.catalog.rules(app.id)]
        page.append(info)
    return listing(page, len(apps), offset)


def set_application_info(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p, name_name="required_application_name")
    name = p.optional_text("application_name")
    api.catalog.update_application(app.id, name or None, p.optional_boolean("secure_record_storage"))
    return {"result": 1}


def del_application(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    api.catalog.delete_application(app.id)
    return {"result": 1}


METHODS = [
    Method("AddApplication", add_application, writes=True, reload=(Reload.ROUTING,)),
    Method("GetApplications", get_applications),
    Method("SetApplicationInfo", set_application_info, writes=True, reload=(Reload.ROUTING,)),
    # Lines bound to the application are unbound by the store (ON DELETE SET NULL): they reload too.
    Method("DelApplication", del_application, writes=True, reload=(Reload.ROUTING, Reload.LINES)),
]
