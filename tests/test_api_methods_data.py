"""Management API, an application's data: key-value storage (SetKeyValueItem, GetKeyValueItem,
GetKeyValueItems, GetKeyValueKeys, DelKeyValueItem) and secrets (AddSecret, GetSecrets, SetSecretInfo,
DelSecret, GetSecretValue), against the real daemon; what the API writes is what scenarios read
(ApplicationStorage, VoxEngine.getSecretValue) and the other way round.

One daemon serves this module; every test names its own application.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from api_helpers import (
    ERR_EXISTS,
    ERR_NOT_FOUND,
    ERR_PARAMETER,
    Api,
    api_daemon,
    ask_session,
    post_url,
    unique,
)
from daemon_helpers import Daemon, wait_until

MISSING_ID = 987654
TTL_MAX = 7_776_000  # 90 days
WIDE = {"from_date": "2000-01-01 00:00:00", "to_date": "2100-01-01 00:00:00"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("api-data")) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


# Key-value storage


def test_set_get_overwrite_delete_item(api: Api) -> None:
    app_id, app_name = api.application()
    before = int(time.time())
    item = api.ok("SetKeyValueItem", application_id=app_id, key="color", value="blue", ttl=3600)["result"]
    assert set(item) == {"key", "value", "expires_at"}
    assert (item["key"], item["value"]) == ("color", "blue")
    assert before + 3600 <= item["expires_at"] <= int(time.time()) + 3600
    assert api.ok("GetKeyValueItem", application_id=app_id, key="color")["result"] == item
    assert api.ok("GetKeyValueItem", application_name=app_name, key="color")["result"] == item

    api.ok("SetKeyValueItem", application_name=app_name, key="color", value="green ü & = ;", ttl=60)
    again = api.ok("GetKeyValueItem", application_id=app_id, key="color")["result"]
    assert again["value"] == "green ü & = ;" and again["expires_at"] <= int(time.time()) + 60

    assert api.ok("DelKeyValueItem", application_id=app_id, key="color")["result"] == 1
    api.fails("GetKeyValueItem", 404, ERR_NOT_FOUND, application_id=app_id, key="color")
    assert api.ok("GetKeyValueItems", application_id=app_id, key="color")["total_count"] == 0


def test_expires_at_and_the_default_lifetime(api: Api) -> None:
    app_id, _ = api.application()
    at = int(time.time()) + 7200
    item = api.ok("SetKeyValueItem", application_id=app_id, key="until", value="v", expires_at=at)["result"]
    assert abs(item["expires_at"] - at) <= 1
    now = int(time.time())
    lasting = api.ok("SetKeyValueItem", application_id=app_id, key="default", value="v")["result"]
    assert now + 86400 <= lasting["expires_at"] <= now + TTL_MAX + 1
    longest = api.ok("SetKeyValueItem", application_id=app_id, key="max", value="v", ttl=TTL_MAX)["result"]
    assert now + TTL_MAX <= longest["expires_at"] <= int(time.time()) + TTL_MAX


def test_an_expired_item_is_gone(api: Api) -> None:
    app_id, _ = api.application()
    api.ok("SetKeyValueItem", application_id=app_id, key="brief", value="v", ttl=1)
    api.ok("SetKeyValueItem", application_id=app_id, key="brief2", value="v", expires_at=int(time.time()) + 2)
    api.ok("SetKeyValueItem", application_id=app_id, key="lasting", value="v", ttl=600)
    assert api.ok("GetKeyValueItems", application_id=app_id, key="brief")["total_count"] == 2

    def expired() -> bool:
        return api.call("GetKeyValueItem", application_id=app_id, key="brief2").status == 404

    assert wait_until(expired, 5.0, 0.2)
    api.fails("GetKeyValueItem", 404, ERR_NOT_FOUND, application_id=app_id, key="brief")
    assert api.ok("GetKeyValueItems", application_id=app_id)["total_count"] == 1
    assert [k["key"] for k in api.ok("GetKeyValueKeys", application_id=app_id)["result"]] == ["lasting"]


def test_items_and_keys_by_prefix_with_paging(api: Api) -> None:
    app_id, app_name = api.application()
    other_app, _ = api.application()
    keys = ["user:3", "user:1", "user:2", "users", "order:1", "u"]
    for n, key in enumerate(keys):
        api.ok("SetKeyValueItem", application_id=app_id, key=key, value=f"v{n}", ttl=600)
    api.ok("SetKeyValueItem", application_id=other_app, key="user:9", value="elsewhere", ttl=600)

    items = api.ok("GetKeyValueItems", application_id=app_id, key="user:")
    assert [(i["key"], i["value"]) for i in items["result"]] == [("user:1", "v1"), ("user:2", "v2"), ("user:3", "v0")]
    assert items["total_count"] == 3
    assert [i["key"] for i in api.ok("GetKeyValueItems", application_id=app_id, key="user")["result"]] == [
        "user:1", "user:2", "user:3", "users"]
    everything = api.ok("GetKeyValueItems", application_name=app_name, key="")
    assert [i["key"] for i in everything["result"]] == sorted(keys)
    page = api.ok("GetKeyValueItems", application_id=app_id, key="user", count=2, offset=1)
    assert [i["key"] for i in page["result"]] == ["user:2", "user:3"]
    assert (page["total_count"], page["count"], page["offset"]) == (4, 2, 1)

    listed = api.ok("GetKeyValueKeys", application_id=app_id, key="user:")
    assert listed["result"] == [{"key": i["key"], "expires_at": i["expires_at"]} for i in items["result"]]
    assert [k["key"] for k in api.ok("GetKeyValueKeys", application_id=app_id)["result"]] == sorted(keys)
    page = api.ok("GetKeyValueKeys", application_id=app_id, count=2, offset=4)
    assert [k["key"] for k in page["result"]] == sorted(keys)[4:] and page["total_count"] == len(keys)
    assert api.ok("GetKeyValueKeys", application_id=app_id, key="zzz")["result"] == []
    assert api.ok("GetKeyValueItems", application_id=other_app, key="user:")["total_count"] == 1


def test_key_and_value_limits(api: Api) -> None:
    app_id, _ = api.application()
    long_key, long_value = "k" * 200, "v" * 2000
    api.ok("SetKeyValueItem", application_id=app_id, key=long_key, value=long_value)
    assert api.ok("GetKeyValueItem", application_id=app_id, key=long_key)["result"]["value"] == long_value
    api.ok("SetKeyValueItem", application_id=app_id, key="empty", value="")
    assert api.ok("GetKeyValueItem", application_id=app_id, key="empty")["result"]["value"] == ""
    api.fails("SetKeyValueItem", 400, ERR_PARAMETER, application_id=app_id, key=long_key + "k", value="v")
    api.fails("SetKeyValueItem", 400, ERR_PARAMETER, application_id=app_id, key="k", value=long_value + "v")
    for method in ("GetKeyValueItem", "DelKeyValueItem", "GetKeyValueItems", "GetKeyValueKeys"):
        api.fails(method, 400, ERR_PARAMETER, application_id=app_id, key=long_key + "k")
    assert api.call("GetKeyValueItem", application_id=app_id, key="k").status == 404


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"key": "k", "value": "v"}, 400, ERR_PARAMETER),  # no application
    ({"application_id": "APP", "application_name": "NAME", "key": "k", "value": "v"}, 400, ERR_PARAMETER),
    ({"application_id": MISSING_ID, "key": "k", "value": "v"}, 404, ERR_NOT_FOUND),
    ({"application_name": "no-such-application", "key": "k", "value": "v"}, 404, ERR_NOT_FOUND),
    ({"application_id": "APP", "value": "v"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "", "value": "v"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "ttl": "-1"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "ttl": str(TTL_MAX + 1)}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "ttl": "1h"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "ttl": "60", "expires_at": "EXPIRES"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "expires_at": "1000"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "expires_at": "2030-01-01"}, 400, ERR_PARAMETER),
    ({"application_id": "APP", "key": "k", "value": "v", "expires_at": "FAR"}, 400, ERR_PARAMETER),
], ids=["no-app", "both-app", "unknown-app-id", "unknown-app-name", "no-key", "empty-key", "no-value",
        "negative-ttl", "ttl-over-90-days", "ttl-not-a-number", "ttl-and-expires_at", "expired-expires_at",
        "expires_at-not-a-number", "expires_at-too-far"])
def test_set_key_value_item_refusals(api: Api, params: dict[str, object], status: int, code: int) -> None:
    app_id, app_name = api.application()
    values = {"APP": app_id, "NAME": app_name, "EXPIRES": int(time.time()) + 600,
              "FAR": int(time.time()) + TTL_MAX + 3600}
    filled = {k: values.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    api.fails("SetKeyValueItem", status, code, **filled)
    assert api.ok("GetKeyValueKeys", application_id=app_id)["total_count"] == 0


@pytest.mark.parametrize("method", ["GetKeyValueItem", "GetKeyValueItems", "GetKeyValueKeys", "DelKeyValueItem"])
def test_other_storage_methods_refusals(api: Api, method: str) -> None:
    app_id, app_name = api.application()
    api.fails(method, 400, ERR_PARAMETER, key="k")
    api.fails(method, 400, ERR_PARAMETER, application_id=app_id, application_name=app_name, key="k")
    api.fails(method, 404, ERR_NOT_FOUND, application_id=MISSING_ID, key="k")
    api.fails(method, 400, ERR_PARAMETER, application_id="first", key="k")
    if method in ("GetKeyValueItem", "DelKeyValueItem"):
        api.fails(method, 400, ERR_PARAMETER, application_id=app_id)
    else:
        for bad in ({"count": "0"}, {"count": "1001"}, {"offset": "-1"}):
            api.fails(method, 400, ERR_PARAMETER, application_id=app_id, **bad)


def test_storage_is_shared_with_scenarios(api: Api) -> None:
    """An item set through the API is what ApplicationStorage reads, and one a scenario puts, the API reads."""
    app_id, _ = api.application()
    api.ok("SetKeyValueItem", application_id=app_id, key="greeting", value="from the API", ttl=600)
    scenario_id, _ = api.scenario("""\
require(Modules.ApplicationStorage);
let got = null;
VoxEngine.addEventListener(AppEvents.Started, async () => {
  const item = await ApplicationStorage.get("greeting");
  got = item ? item.value : null;
  await ApplicationStorage.put("reply", "from the scenario", 600);
  got = got + " / stored";
});
VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  if (e.content === "stop") { VoxEngine.terminate(); return "{}"; }
  return JSON.stringify(got);
});
""")
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)
    _, url = api.start(rule_id)
    try:
        assert wait_until(lambda: ask_session(url) == "from the API / stored", 5.0), ask_session(url)
    finally:
        post_url(url, "stop")
    item = api.ok("GetKeyValueItem", application_id=app_id, key="reply")["result"]
    assert item["value"] == "from the scenario" and item["expires_at"] <= int(time.time()) + 600


# Secrets


def test_add_get_set_del_secret(api: Api) -> None:
    app_id, app_name = api.application()
    value = "s3cr3t value ü"
    added = api.ok("AddSecret", application_id=app_id, secret_name="Api_Token", secret_value=value,
                   description="the token")
    secret_id = added["result"]["secret_id"]
    assert isinstance(secret_id, int)
    listed = api.call("GetSecrets", application_name=app_name)
    assert listed.status == 200 and value not in listed.text and "secret_value" not in listed.text
    assert listed.body["total_count"] == 1
    info = listed.body["result"][0]
    assert (info["secret_id"], info["secret_name"], info["description"]) == (secret_id, "Api_Token", "the token")
    assert set(info) == {"secret_id", "secret_name", "description", "created", "modified"}

    got = api.ok("GetSecretValue", application_id=app_id, secret_name="Api_Token")["result"]
    assert got == {"secret_id": secret_id, "secret_name": "Api_Token", "secret_value": value}
    assert api.ok("GetSecretValue", application_id=app_id, secret_id=secret_id)["result"] == got

    api.ok("SetSecretInfo", application_id=app_id, secret_id=secret_id, new_secret_name="Renamed",
           secret_value="new value", description="changed")
    info = api.ok("GetSecrets", application_id=app_id)["result"][0]
    assert (info["secret_name"], info["description"]) == ("Renamed", "changed")
    assert api.ok("GetSecretValue", application_id=app_id, secret_name="Renamed")["result"]["secret_value"] == (
        "new value")
    api.ok("SetSecretInfo", application_name=app_name, secret_name="Renamed", description="")
    info = api.ok("GetSecrets", application_id=app_id)["result"][0]
    assert (info["secret_name"], info["description"]) == ("Renamed", "")
    assert api.ok("GetSecretValue", application_id=app_id, secret_id=secret_id)["result"]["secret_value"] == (
        "new value")  # not given: unchanged

    assert api.ok("DelSecret", application_id=app_id, secret_name="Renamed")["result"] == 1
    assert api.ok("GetSecrets", application_id=app_id)["total_count"] == 0
    api.fails("GetSecretValue", 404, ERR_NOT_FOUND, application_id=app_id, secret_id=secret_id)
    api.fails("DelSecret", 404, ERR_NOT_FOUND, application_id=app_id, secret_id=secret_id)


def test_secret_values_are_audited_when_read_and_never_logged(api: Api) -> None:
    app_id, _ = api.application()
    value = unique("never-in-the-log")
    api.ok("AddSecret", application_id=app_id, secret_name="Token", secret_value=value)
    api.ok("SetSecretInfo", application_id=app_id, secret_name="Token", secret_value=value + "2")
    api.ok("GetSecretValue", application_id=app_id, secret_name="Token")
    api.ok("GetSecrets", application_id=app_id)  # a listing is not audited
    log = api.call("GetAuditLog", **WIDE, filtered_cmd="AddSecret;SetSecretInfo;GetSecretValue;GetSecrets",
                   desc_order=True, count=3)
    assert value not in log.text
    entries = list(reversed(log.body["result"]))
    assert [e["cmd"] for e in entries] == ["AddSecret", "SetSecretInfo", "GetSecretValue"]
    assert entries[0]["parameters"] == {"application_id": str(app_id), "secret_name": "Token", "secret_value": "***"}
    assert entries[2]["parameters"] == {"application_id": str(app_id), "secret_name": "Token"}


def test_secret_names_and_limits(api: Api) -> None:
    app_id, _ = api.application()
    other_app, _ = api.application()
    for good in ("a", "Z9_x", "x" * 64):
        api.ok("AddSecret", application_id=app_id, secret_name=good, secret_value="v")
    for bad in ("", "1abc", "_abc", "with-dash", "with space", "ünï", "x" * 65):
        api.fails("AddSecret", 400, ERR_PARAMETER, application_id=app_id, secret_name=bad, secret_value="v")
    api.ok("AddSecret", application_id=app_id, secret_name="long", secret_value="v" * 8192)
    api.fails("AddSecret", 400, ERR_PARAMETER, application_id=app_id, secret_name="longer", secret_value="v" * 8193)
    api.fails("AddSecret", 400, ERR_PARAMETER, application_id=app_id, secret_name="empty", secret_value="")
    api.fails("AddSecret", 400, ERR_PARAMETER, application_id=app_id, secret_name="nothing")
    api.fails("AddSecret", 400, ERR_PARAMETER, application_id=app_id, secret_name="wordy", secret_value="v",
              description="d" * 1001)
    api.fails("AddSecret", 409, ERR_EXISTS, application_id=app_id, secret_name="a", secret_value="again")
    api.ok("AddSecret", application_id=other_app, secret_name="a", secret_value="its own")  # per application
    assert api.ok("GetSecretValue", application_id=app_id, secret_name="a")["result"]["secret_value"] == "v"
    api.fails("SetSecretInfo", 409, ERR_EXISTS, application_id=app_id, secret_name="a", new_secret_name="long")
    api.fails("SetSecretInfo", 400, ERR_PARAMETER, application_id=app_id, secret_name="a", new_secret_name="1x")
    api.fails("SetSecretInfo", 400, ERR_PARAMETER, application_id=app_id, secret_name="a",
              secret_value="v" * 8193)
    assert api.ok("GetSecretValue", application_id=app_id, secret_name="a")["result"]["secret_value"] == "v"


def test_get_secrets_filter_and_paging(api: Api) -> None:
    app_id, _ = api.application()
    for name in ("Bravo", "alpha", "Charlie_Token", "delta_token"):
        api.ok("AddSecret", application_id=app_id, secret_name=name, secret_value="v")
    listed = api.ok("GetSecrets", application_id=app_id)
    assert [s["secret_name"] for s in listed["result"]] == ["Bravo", "Charlie_Token", "alpha", "delta_token"]
    assert [s["secret_name"] for s in api.ok("GetSecrets", application_id=app_id, secret_name_part="TOKEN")[
        "result"]] == ["Charlie_Token", "delta_token"]
    page = api.ok("GetSecrets", application_id=app_id, count=2, offset=2)
    assert [s["secret_name"] for s in page["result"]] == ["alpha", "delta_token"] and page["total_count"] == 4
    for bad in ({"count": "0"}, {"offset": "-1"}):
        api.fails("GetSecrets", 400, ERR_PARAMETER, application_id=app_id, **bad)


@pytest.mark.parametrize("method", ["AddSecret", "GetSecrets", "SetSecretInfo", "DelSecret", "GetSecretValue"])
def test_secret_methods_refusals(api: Api, method: str) -> None:
    app_id, app_name = api.application()
    secret_id = api.ok("AddSecret", application_id=app_id, secret_name="Known", secret_value="v")["result"][
        "secret_id"]
    base = {"secret_name": "Known", "secret_value": "v"}
    api.fails(method, 400, ERR_PARAMETER, **base)  # no application
    api.fails(method, 400, ERR_PARAMETER, application_id=app_id, application_name=app_name, **base)
    api.fails(method, 404, ERR_NOT_FOUND, application_id=MISSING_ID, **base)
    if method in ("SetSecretInfo", "DelSecret", "GetSecretValue"):
        api.fails(method, 400, ERR_PARAMETER, application_id=app_id)  # which secret?
        api.fails(method, 400, ERR_PARAMETER, application_id=app_id, secret_id=secret_id, secret_name="Known")
        api.fails(method, 404, ERR_NOT_FOUND, application_id=app_id, secret_name="Unknown")
        api.fails(method, 404, ERR_NOT_FOUND, application_id=app_id, secret_id=MISSING_ID)
        other_app, _ = api.application()
        api.fails(method, 404, ERR_NOT_FOUND, application_id=other_app, secret_id=secret_id)  # not its secret
    assert api.ok("GetSecretValue", application_id=app_id, secret_id=secret_id)["result"]["secret_value"] == "v"


def test_scenarios_read_the_secrets_of_their_application(api: Api) -> None:
    app_id, _ = api.application()
    other_app, _ = api.application()
    api.ok("AddSecret", application_id=app_id, secret_name="PIN", secret_value="4321")
    api.ok("AddSecret", application_id=other_app, secret_name="PIN", secret_value="9999")
    scenario_id, _ = api.scenario("""\
VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  if (e.content === "stop") { VoxEngine.terminate(); return "{}"; }
  return JSON.stringify({pin: VoxEngine.getSecretValue("PIN") || null, none: VoxEngine.getSecretValue("NONE") || null});
});
""")
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)

    def pin() -> object:
        _, url = api.start(rule_id)
        try:
            return ask_session(url)
        finally:
            post_url(url, "stop")

    assert pin() == {"pin": "4321", "none": None}
    api.ok("SetSecretInfo", application_id=app_id, secret_name="PIN", secret_value="1111")
    assert pin() == {"pin": "1111", "none": None}  # new sessions see the new value
    api.ok("DelSecret", application_id=app_id, secret_name="PIN")
    assert json.dumps(pin()) == json.dumps({"pin": None, "none": None})


def test_set_secret_info_changes_modified(api: Api) -> None:
    app_id, _ = api.application()
    secret_id = api.ok("AddSecret", application_id=app_id, secret_name="S", secret_value="v")["result"]["secret_id"]
    before = api.ok("GetSecrets", application_id=app_id)["result"][0]["modified"]
    time.sleep(1.1)  # dates are to the second
    api.ok("SetSecretInfo", application_id=app_id, secret_id=secret_id, secret_value="w")
    assert api.ok("GetSecrets", application_id=app_id)["result"][0]["modified"] > before
