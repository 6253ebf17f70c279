"""Users: AddUser, GetUsers, SetUserInfo, DelUser. A user is a local SIP account phones register as."""

from __future__ import annotations

from typing import Any

from appliance.store.catalog import Application
from appliance.store.sip import CUSTOM_DATA_MAX_CHARS, DISPLAY_NAME_MAX_CHARS, PASSWORD_MAX_CHARS, SipUser
from appliance.web.api import Api, ApiError, Method, Params, Reload, api_date, listing, not_found
from appliance.web.methods.applications import application_info

ORDER_BY = {"user_id": lambda u: u.id, "user_name": lambda u: u.name, "user_display_name": lambda u: u.display_name}


def user_info(api: Api, user: SipUser, apps: dict[int, Application], registered: set[str]) -> dict[str, Any]:
    return {
        "user_id": user.id, "user_name": user.name, "user_display_name": user.display_name,
        "user_active": user.active, "frozen": False, "user_custom_data": user.custom_data,
        "applications": [application_info(apps[user.application_id])] if user.application_id in apps else [],
        "created": api_date(user.created), "modified": api_date(user.modified or user.created),
        "registered": user.name in registered,  # an appliance field: a phone is registered as this user now
    }


def _user(api: Api, p: Params, app: Application | None) -> SipUser:
    user_id, user_name = p.one_of("user_id", "user_name")
    for user in api.sip_lines.users():
        if (user.id == user_id or user.name == user_name) and (app is None or user.application_id == app.id):
            return user
    raise not_found("user", user_name if user_name is not None else user_id)


def add_user(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    user = api.sip_lines.add_user(
        p.text("user_name", required=True), p.text("user_password", required=True, max_chars=PASSWORD_MAX_CHARS),
        p.text("user_display_name", required=True, max_chars=DISPLAY_NAME_MAX_CHARS), app.id,
        p.boolean("user_active", default=True), p.text("user_custom_data", max_chars=CUSTOM_DATA_MAX_CHARS))
    return {"result": 1, "user_id": user.id}


async def get_users(api: Api, p: Params) -> dict[str, Any]:
    # On the loop: which users are registered right now is the SIP lines' live state.
    registered = {str(s["name"]) for s in api.line_status() if s.get("kind") == "sip-user" and s.get("registered")}
    return await api.db.call(_get_users, api, p, registered)


def _get_users(api: Api, p: Params, registered: set[str]) -> dict[str, Any]:
    count, offset = p.page()
    matched, app = api.application_filter(p)
    if not matched:
        return listing([], 0, offset)
    user_id, name_part = p.integer("user_id"), p.text("user_name")
    display_part, active = p.text("user_display_name"), p.optional_boolean("user_active")
    order = p.text("order_by", default="user_id")
    if order not in ORDER_BY:
        raise ApiError(400, 101, f"order_by is one of {', '.join(ORDER_BY)}")
    users = sorted((
        u for u in api.sip_lines.users()
        if (app is None or u.application_id == app.id) and (user_id is None or u.id == user_id)
        and name_part in u.name and display_part in u.display_name and (active is None or u.active == active)
    ), key=ORDER_BY[order])
    apps = {a.id: a for a in api.catalog.applications()}
    return listing([user_info(api, u, apps, registered) for u in users[offset:offset + count]], len(users), offset)


def set_user_info(api: Api, p: Params) -> dict[str, Any]:
    user = _user(api, p, api.optional_application(p))
    changes: dict[str, Any] = {}
    for param, field in (("new_user_name", "name"), ("user_password", "password"),
                         ("user_display_name", "display_name"), ("user_custom_data", "custom_data")):
        if param in p.values:
            changes[field] = p.text(param, max_chars=CUSTOM_DATA_MAX_CHARS if field == "custom_data" else None)
    if p.has("user_active"):
        changes["active"] = p.boolean("user_active")
    api.sip_lines.update_user(user.id, **changes)
    return {"result": 1}


def del_user(api: Api, p: Params) -> dict[str, Any]:
    app = api.optional_application(p)
    ids = p.ids("user_id")
    if ids is not None:
        p.either("user_id", "user_name")
        users = [_user(api, Params({"user_id": str(i)}), app) for i in ids]
    else:
        users = [_user(api, Params({"user_name": name}), app) for name in p.names("user_name") or []]
        if not users:
            users = [_user(api, p, app)]
    for user in users:
        api.sip_lines.delete_user(user.id)
    return {"result": 1}


METHODS = [
    Method("AddUser", add_user, writes=True, reload=(Reload.LINES,)),
    Method("GetUsers", get_users),
    Method("SetUserInfo", set_user_info, writes=True, reload=(Reload.LINES,)),
    Method("DelUser", del_user, writes=True, reload=(Reload.LINES,)),
]
