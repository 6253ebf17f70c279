"""The account the box is, its keys and its audit log: GetAccountInfo, CreateKey, GetKeys, DeleteKey,
GetAuditLog."""

from __future__ import annotations

from typing import Any

from appliance import __version__
from appliance.store.db import DEFAULT_ACCOUNT_ID
from appliance.web.api import ERR_PARAMETER, Api, ApiError, Method, Params, api_date, listing

DESCRIPTION_MAX_CHARS = 200


def get_account_info(api: Api, p: Params) -> dict[str, Any]:
    created = api.db.query("SELECT created FROM account WHERE id = ?", (DEFAULT_ACCOUNT_ID,))[0]["created"]
    return {
        "result": {
            "account_id": DEFAULT_ACCOUNT_ID, "account_name": api.account_name, "account_email": "",
            "active": True, "frozen": False, "created": api_date(created), "currency": "", "balance": 0,
            # Appliance fields.
            "firmware_version": __version__, "key_id": p.key_id,
        },
        "api_address": f"{p.base_url}/platform_api",
    }


def create_key(api: Api, p: Params) -> dict[str, Any]:
    """A new service account; its private key is in this answer only."""
    if p.has("role_id") or p.has("role_name"):
        raise ApiError(400, 107, "roles: every key of this box may do everything (there are no roles)")
    description = p.text("description", max_chars=DESCRIPTION_MAX_CHARS) or p.text("key_name")
    credentials = api.keys.create_service_account(description)
    return {"result": credentials}


def get_keys(api: Api, p: Params) -> dict[str, Any]:
    count, offset = p.page()
    wanted = p.optional_text("key_id")
    keys = [k for k in api.keys.list() if wanted is None or k.key_id == wanted]
    return listing([{"key_id": k.key_id, "description": k.description, "created": api_date(k.created),
                     "last_used": api_date(k.last_used), "service_account": k.service_account}
                    for k in keys[offset:offset + count]], len(keys), offset)


def delete_key(api: Api, p: Params) -> dict[str, Any]:
    key_id = p.text("key_id", required=True)
    if key_id == p.key_id:
        raise ApiError(400, ERR_PARAMETER, "a key cannot delete itself: delete it with another key")
    api.keys.delete(key_id)
    return {"result": 1}


def get_audit_log(api: Api, p: Params) -> dict[str, Any]:
    since, until = p.date("from_date", required=True), p.date("to_date", required=True)
    assert since is not None and until is not None
    count, offset = p.page()
    key_id = p.optional_text("filtered_key_id") or p.optional_text("filtered_admin_user_id")
    entries, total = api.audit.entries(
        since=since, until=until + 0.999, key_id=key_id, ip=p.optional_text("filtered_ip"),
        cmds=p.names("filtered_cmd"), desc=p.boolean("desc_order"), count=count, offset=offset)
    answer = listing([{
        "audit_log_id": e.id, "account_id": DEFAULT_ACCOUNT_ID, "requested": api_date(e.requested),
        "requested_unix": round(e.requested, 3), "key_id": e.key_id, "ip": e.ip, "cmd": e.cmd,
        "parameters": e.parameters, "error_code": e.error_code, "error_msg": e.error_msg,
    } for e in entries], total, offset)
    if not p.boolean("with_total_count", default=True):
        del answer["total_count"]
    return answer


METHODS = [
    Method("GetAccountInfo", get_account_info),
    Method("CreateKey", create_key, writes=True),
    Method("GetKeys", get_keys),
    Method("DeleteKey", delete_key, writes=True),
    Method("GetAuditLog", get_audit_log),
]

