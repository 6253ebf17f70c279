"""Who may call the management API: Voximplant's `account_id` + `api_key` parameters, or a Bearer key."""

from __future__ import annotations

from aiohttp import web

from appliance.store.apikeys import ApiKeys
from appliance.store.db import DEFAULT_ACCOUNT_ID


def _key_of(request: web.Request, params: dict[str, str]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip() or None
    if params.get("account_id", "").strip() != str(DEFAULT_ACCOUNT_ID):
        return None
    return params.get("api_key") or None


async def authorized(request: web.Request, params: dict[str, str], keys: ApiKeys) -> bool:
    key = _key_of(request, params)
    return key is not None and await keys.db.call(keys.check, key)
