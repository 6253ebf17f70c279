"""Key-value storage (VoxEngine's ApplicationStorage, per application): SetKeyValueItem, GetKeyValueItem,
GetKeyValueItems, GetKeyValueKeys, DelKeyValueItem."""

from __future__ import annotations

import time
from typing import Any

from appliance.store.kv import KEY_MAX_CHARS, TTL_MAX_SECONDS, VALUE_MAX_CHARS, Item
from appliance.web.api import ERR_PARAMETER, Api, ApiError, Method, Params, listing, not_found

DEFAULT_TTL_SECONDS = 2_592_000  # 30 days, as Voximplant's SetKeyValueItem (0 keeps the longest, 90 days)


def _item(item: Item) -> dict[str, Any]:
    return {"key": item.key, "value": item.value, "expires_at": item.expire_at}


def _key(p: Params) -> str:
    return p.text("key", required=True, max_chars=KEY_MAX_CHARS)


def set_key_value_item(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    now = time.time()
    ttl = p.integer("ttl", minimum=0, maximum=TTL_MAX_SECONDS)
    expires_at = p.integer("expires_at")
    if ttl is not None and expires_at is not None:
        raise ApiError(400, ERR_PARAMETER, "give ttl or expires_at, not both")
    if expires_at is not None:
        ttl = expires_at - int(now)
        if not 0 < ttl <= TTL_MAX_SECONDS:
            raise ApiError(400, ERR_PARAMETER, f"expires_at must be in the next {TTL_MAX_SECONDS} seconds")
    if "value" not in p.values:
        raise ApiError(400, ERR_PARAMETER, "value is required")
    item = api.kv.put(app.id, _key(p), p.text("value", max_chars=VALUE_MAX_CHARS),
                      DEFAULT_TTL_SECONDS if ttl is None else ttl, now)
    return {"result": _item(item)}


def get_key_value_item(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    key = _key(p)
    item = api.kv.get(app.id, key, time.time())
    if item is None:
        raise not_found("key", repr(key))
    return {"result": _item(item)}


def get_key_value_items(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    count, offset = p.page(max_count=1000)
    items, total = api.kv.items(app.id, p.text("key", max_chars=KEY_MAX_CHARS), time.time(), count, offset)
    return listing([_item(i) for i in items], total, offset)


def get_key_value_keys(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    count, offset = p.page(max_count=1000)
    items, total = api.kv.items(app.id, p.text("key", max_chars=KEY_MAX_CHARS), time.time(), count, offset)
    return listing([{"key": i.key, "expires_at": i.expire_at} for i in items], total, offset)


def del_key_value_item(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    api.kv.remove(app.id, _key(p))
    return {"result": 1}


METHODS = [
    Method("SetKeyValueItem", set_key_value_item, writes=True),
    Method("GetKeyValueItem", get_key_value_item),
    Method("GetKeyValueItems", get_key_value_items),
    Method("GetKeyValueKeys", get_key_value_keys),
    Method("DelKeyValueItem", del_key_value_item, writes=True),
]
