"""The web panel's users (Voximplant's admin users, each with one role: admin, operator or read-only).

AddAdminUser, GetAdminUsers, SetAdminUserInfo, DelAdminUser. The first user is made by the panel's
first-boot page (appliance/web/panel/auth.py) before anything else can be reached.
"""

from __future__ import annotations

from typing import Any

from appliance.store.admins import ROLES, AdminUser
from appliance.web.api import Api, Method, Params, api_date, invalid, listing, not_found


def admin_user_info(user: AdminUser) -> dict[str, Any]:
    return {
        "admin_user_id": user.id,
        "admin_user_name": user.name,
        "admin_user_display_name": user.display_name,
        "admin_user_active": user.active,
        "admin_role": user.role,
        "created": api_date(user.created),
        "modified": api_date(user.modified),
    }


def _role(p: Params) -> str | None:
    role = p.optional_text("admin_role")
    if role is not None and role not in ROLES:
        raise invalid("admin_role", f"one of {', '.join(ROLES)}")
    return role


def _user(api: Api, p: Params) -> AdminUser:
    user_id, name = p.one_of("required_admin_user_id", "required_admin_user_name")
    for user in api.admins.list():
        if user.id == user_id or user.name == name:
            return user
    raise not_found("admin user", name if name is not None else user_id)


def add_admin_user(api: Api, p: Params) -> dict[str, Any]:
    user = api.admins.add(p.text("new_admin_user_name", required=True, max_chars=64),
                          p.text("new_admin_user_password", required=True, max_chars=1000),
                          _role(p) or "read-only", p.text("admin_user_display_name", max_chars=256),
                          p.boolean("admin_user_active", default=True))
    return {"result": 1, "admin_user_id": user.id}


def get_admin_users(api: Api, p: Params) -> dict[str, Any]:
    count, offset = p.page()
    user_id, name = p.one_of("required_admin_user_id", "required_admin_user_name", required=False)
    users = [u for u in api.admins.list() if user_id in (None, u.id) and name in (None, u.name)]
    return listing([admin_user_info(u) for u in users[offset:offset + count]], len(users), offset)


def set_admin_user_info(api: Api, p: Params) -> dict[str, Any]:
    user = _user(api, p)
    if p.has("new_admin_user_name") and p.text("new_admin_user_name") != user.name:
        raise invalid("new_admin_user_name", "a panel user cannot be renamed (add a new one)")
    api.admins.update(user.id, password=p.optional_text("new_admin_user_password", max_chars=1000), role=_role(p),
                      display_name=p.optional_text("admin_user_display_name", max_chars=256),
                      active=p.optional_boolean("admin_user_active"))
    return {"result": 1}


def del_admin_user(api: Api, p: Params) -> dict[str, Any]:
    api.admins.delete(_user(api, p).id)
    return {"result": 1}


METHODS = [
    Method("AddAdminUser", add_admin_user, writes=True),
    Method("GetAdminUsers", get_admin_users),
    Method("SetAdminUserInfo", set_admin_user_info, writes=True),
    Method("DelAdminUser", del_admin_user, writes=True),
]
