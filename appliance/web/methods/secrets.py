"""Application secrets (read by scenarios with VoxEngine.getSecretValue): AddSecret, GetSecrets,
SetSecretInfo, DelSecret, GetSecretValue. Listings never carry values; reading one is audited."""

from __future__ import annotations

from typing import Any

from appliance.store.catalog import Application
from appliance.store.secrets import SecretInfo
from appliance.web.api import Api, Method, Params, api_date, listing


def _secret(api: Api, p: Params, app: Application) -> SecretInfo:
    secret_id, name = p.one_of("secret_id", "secret_name")
    return api.secrets.find(app.id, secret_id=secret_id, name=name)


def add_secret(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    secret_id = api.secrets.add(app.id, p.text("secret_name", required=True), p.text("secret_value", required=True),
                                p.text("description"))
    return {"result": {"secret_id": secret_id}}


def get_secrets(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    count, offset = p.page()
    part = p.text("secret_name_part")
    found = [s for s in api.secrets.infos(app.id) if part.lower() in s.name.lower()]
    return listing([{"secret_id": s.id, "secret_name": s.name, "description": s.description,
                     "created": api_date(s.created), "modified": api_date(s.modified)}
                    for s in found[offset:offset + count]], len(found), offset)


def set_secret_info(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    secret = _secret(api, p, app)
    api.secrets.update(app.id, secret.id, name=p.optional_text("new_secret_name") or None,
                       value=p.optional_text("secret_value"), description=p.optional_text("description"))
    return {"result": 1}


def del_secret(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    api.secrets.delete(app.id, _secret(api, p, app).id)
    return {"result": 1}


def get_secret_value(api: Api, p: Params) -> dict[str, Any]:
    app = api.application(p)
    secret = _secret(api, p, app)
    return {"result": {"secret_id": secret.id, "secret_name": secret.name,
                       "secret_value": api.secrets.value(app.id, secret.id)}}


METHODS = [
    Method("AddSecret", add_secret, writes=True),
    Method("GetSecrets", get_secrets),
    Method("SetSecretInfo", set_secret_info, writes=True),
    Method("DelSecret", del_secret, writes=True),
    Method("GetSecretValue", get_secret_value, writes=True),  # not a change, but who read a secret is audited
]
