"""The management API's front door and the account methods, against the real daemon: authentication for
every method, unknown methods, body limits, GetAccountInfo, CreateKey/GetKeys/DeleteKey (and the JWTs a
created key signs), GetAuditLog, GetHealth and GetLines.

The other methods are in tests/test_api_methods_*.py; the official Python client in
tests/test_api_official_client.py. One daemon serves this module; every test names its own objects.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from api_helpers import (
    DATE_RE,
    ERR_AUTH,
    ERR_EXISTS,
    ERR_METHOD,
    ERR_NOT_FOUND,
    ERR_PARAMETER,
    ERR_TOO_LARGE,
    ERR_UNSUPPORTED,
    Api,
    api_daemon,
    api_date,
    ask_session,
    post_url,
    reply_scenario,
    unique,
)
from cryptography.hazmat.primitives.asymmetric import rsa
from daemon_helpers import Daemon, create_api_key, wait_until

from appliance.web.platform import MAX_BODY_BYTES, METHODS

# Every method of the box, and the file whose tests cover it: a new method needs its tests.
COVERED = {
    **dict.fromkeys(["GetAccountInfo", "CreateKey", "GetKeys", "DeleteKey", "GetAuditLog", "GetHealth", "GetLines"],
                    "test_api_methods.py"),
    **dict.fromkeys(["AddApplication", "GetApplications", "SetApplicationInfo", "DelApplication", "AddRule",
                     "GetRules", "SetRuleInfo", "DelRule", "ReorderRules", "AddScenario", "GetScenarios",
                     "SetScenarioInfo", "DelScenario", "BindScenario", "ReorderScenarios", "StartScenarios"],
                    "test_api_methods_catalog.py"),
    **dict.fromkeys(["SetKeyValueItem", "GetKeyValueItem", "GetKeyValueItems", "GetKeyValueKeys", "DelKeyValueItem",
                     "AddSecret", "GetSecrets", "SetSecretInfo", "DelSecret", "GetSecretValue"],
                    "test_api_methods_data.py"),
    **dict.fromkeys(["AddUser", "GetUsers", "SetUserInfo", "DelUser", "CreateSipRegistration",
                     "UpdateSipRegistration", "BindSipRegistration", "DeleteSipRegistration", "GetSipRegistrations",
                     "AddOutboundRoute", "GetOutboundRoutes", "SetOutboundRouteInfo", "DelOutboundRoute",
                     "ReorderOutboundRoutes"], "test_api_methods_lines.py"),
    **dict.fromkeys(["GetCallHistory", "DeleteRecord", "GetSessionLog"], "test_api_methods_history.py"),
    **dict.fromkeys(["GetHealthHistory", "GetActiveCalls", "HangupCall"], "test_monitor.py"),
    **dict.fromkeys(["GetSystemLog", "GetSipTrace"], "test_diagnostics.py"),
    **dict.fromkeys(["GetBoxSettings", "SetBoxSettings", "GetClockStatus", "GetBackup", "RestoreBackup"],
                    "test_settings_backup.py"),
    **dict.fromkeys(["AddAdminUser", "GetAdminUsers", "SetAdminUserInfo", "DelAdminUser"], "test_panel_admins.py"),
}
WIDE = {"from_date": "2000-01-01 00:00:00", "to_date": "2100-01-01 00:00:00"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("api-front")) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


def audit_total(api: Api, **filters: object) -> int:
    return int(api.ok("GetAuditLog", **WIDE, count=1, **filters)["total_count"])


def own_key_id(api: Api) -> str:
    return str(api.ok("GetAccountInfo")["result"]["key_id"])


def token(credentials: dict[str, Any], *, iat: float | None = None, lifetime: float = 60, iss: str = "1",
          kid: str | None = None, private_key: Any = None, alg: str = "RS256") -> str:
    """A service-account JWT as the official clients sign it (or spoiled as told)."""
    now = time.time() if iat is None else iat
    key = credentials["private_key"] if private_key is None else private_key
    return jwt.encode({"iss": iss, "iat": int(now), "exp": int(now + lifetime)}, key, algorithm=alg,
                      headers={"kid": kid if kid is not None else credentials["key_id"]})


def bearer(api: Api, jwt_token: str, cmd: str = "GetAccountInfo", **params: str) -> httpx.Response:
    return api.http.post(f"{api.daemon.api_url}/{cmd}", data=params,
                         headers={"Authorization": f"Bearer {jwt_token}"})


def test_every_method_has_tests() -> None:
    assert set(METHODS) == set(COVERED), set(METHODS) ^ set(COVERED)


# Authentication, for every method

BAD_AUTH: list[tuple[str, dict[str, str], dict[str, str]]] = [
    ("no-credentials", {}, {}),
    ("wrong-key", {"account_id": "1", "api_key": "not-a-key"}, {}),
    ("wrong-account", {"account_id": "2", "api_key": "KEY"}, {}),
    ("key-without-account", {"api_key": "KEY"}, {}),
    ("wrong-bearer-key", {}, {"Authorization": "Bearer not-a-key"}),
    ("garbage-jwt", {}, {"Authorization": "Bearer a.b.c"}),
    ("basic-auth", {}, {"Authorization": "Basic dXNlcjpwYXNz"}),
]


@pytest.mark.parametrize("cmd", sorted(METHODS))
def test_every_method_refuses_bad_credentials_and_changes_nothing(api: Api, cmd: str) -> None:
    before = audit_total(api)
    apps_before = api.ok("GetApplications", count=1)["total_count"]
    # Parameters a method would accept: a refusal must come from the credentials alone.
    params = {"application_name": unique("noauth"), "rule_name": "r", "rule_pattern": ".*", "key": "k",
              "value": "v", "scenario_name": unique("noauth"), "scenario_script": "// x", **WIDE}
    for what, credentials, headers in BAD_AUTH:
        data = {**params, **{k: api.key if v == "KEY" else v for k, v in credentials.items()}}
        reply = api.raw("POST", f"/{cmd}", data=data, headers=headers)
        assert reply.status == 401, (what, reply.text)
        assert reply.error[0] == ERR_AUTH, (what, reply.text)
        assert api.key not in reply.text
    reply = api.raw("GET", f"/{cmd}", params={"account_id": "1", "api_key": "wrong"})
    assert reply.status == 401 and reply.error[0] == ERR_AUTH
    assert audit_total(api) == before, "a refused request was carried out (it is in the audit log)"
    assert api.ok("GetApplications", count=1)["total_count"] == apps_before


def test_the_three_ways_to_name_a_method_and_both_ways_to_give_a_key(api: Api) -> None:
    name = unique("ways")
    api.ok("AddApplication", application_name=name)
    auth = {"account_id": "1", "api_key": api.key}
    answers = [
        api.raw("POST", "/GetApplications", data={**auth, "application_name": name}),
        api.raw("POST", "", data={**auth, "cmd": "GetApplications", "application_name": name}),
        api.raw("GET", "/GetApplications", params={**auth, "application_name": name}),
        api.raw("GET", "", params={**auth, "cmd": "GetApplications", "application_name": name}),
        api.raw("POST", "/GetApplications", data={"application_name": name},
                headers={"Authorization": f"Bearer {api.key}"}),
        # Query parameters and form fields together.
        api.raw("POST", "/GetApplications", params=auth, data={"application_name": name}),
    ]
    for answer in answers:
        assert answer.status == 200, answer.text
        assert [a["application_name"] for a in answer.body["result"]] == [name]


def test_unknown_or_missing_method(api: Api) -> None:
    auth = {"account_id": "1", "api_key": api.key}
    for path, data in (("/NoSuchMethod", auth), ("", {**auth, "cmd": "NoSuchMethod"}),
                       ("/getaccountinfo", auth)):  # names are case-sensitive, as Voximplant's
        reply = api.raw("POST", path, data=data)
        assert reply.status == 404, reply.text
        assert reply.error[0] == ERR_METHOD
    reply = api.raw("POST", "", data=auth)
    assert reply.status == 400 and reply.error[0] == ERR_PARAMETER


@pytest.mark.parametrize("cmd", ["AddScenario", "SetKeyValueItem", "AddApplication", "GetApplications"])
def test_a_body_over_the_limit_is_413_and_does_nothing(api: Api, cmd: str) -> None:
    before = audit_total(api)
    name = unique("big")
    body = {"account_id": "1", "api_key": api.key, "scenario_name": name, "application_name": name,
            "key": "k", "value": "v", "scenario_script": "/" * (MAX_BODY_BYTES + 10)}
    reply = api.raw("POST", f"/{cmd}", data=body)
    assert reply.status == 413, reply.text[:300]
    assert reply.error[0] == ERR_TOO_LARGE
    assert api.ok("GetScenarios", scenario_name=name)["total_count"] == 0
    assert api.ok("GetApplications", application_name=name)["total_count"] == 0
    assert audit_total(api) == before


def test_a_body_just_under_the_limit_is_read(api: Api) -> None:
    """A 256 K-character script (the most a scenario may have) fits easily; so does a near-limit body."""
    reply = api.raw("POST", "/GetAccountInfo",
                    data={"account_id": "1", "api_key": api.key, "padding": "x" * (MAX_BODY_BYTES - 1000)})
    assert reply.status == 200, reply.text[:300]


# GetAccountInfo


def test_get_account_info(api: Api, daemon: Daemon) -> None:
    body = api.ok("GetAccountInfo")
    info = body["result"]
    assert info["account_id"] == 1
    assert info["account_name"] == "voxgate"
    assert info["active"] is True and info["frozen"] is False
    assert info["balance"] == 0
    assert isinstance(info["firmware_version"], str) and info["firmware_version"]
    assert re.fullmatch(DATE_RE, info["created"]), info
    # The key the request acted with, and where it reached the box.
    keys = {k["key_id"]: k for k in api.ok("GetKeys", count=1000)["result"]}
    assert info["key_id"] in keys and keys[info["key_id"]]["service_account"] is False
    assert body["api_address"] == daemon.api_url
    # Ignored Voximplant parameters do not matter.
    assert api.ok("GetAccountInfo", return_live_balance=True)["result"]["account_id"] == 1


def test_get_account_info_over_https_names_the_https_address(api: Api, daemon: Daemon) -> None:
    with httpx.Client(verify=ssl.create_default_context(cafile=daemon.cert_path), timeout=30) as client:
        reply = client.post(f"{daemon.https_url}/platform_api/GetAccountInfo",
                            data={"account_id": "1", "api_key": api.key})
    assert reply.status_code == 200, reply.text
    assert reply.json()["api_address"] == f"{daemon.https_url}/platform_api"


# CreateKey, GetKeys, DeleteKey


def test_create_key_signs_tokens_until_deleted(api: Api) -> None:
    description = unique("ci key")
    credentials = api.ok("CreateKey", description=description)["result"]
    assert set(credentials) == {"account_id", "key_id", "private_key"}
    assert credentials["account_id"] == 1
    assert credentials["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    key_id = credentials["key_id"]

    listed = api.ok("GetKeys", key_id=key_id)
    assert listed["total_count"] == 1
    entry = listed["result"][0]
    assert entry["description"] == description and entry["service_account"] is True
    assert re.fullmatch(DATE_RE, entry["created"]) and entry["last_used"] == ""
    assert "private_key" not in listed["result"][0]

    reply = bearer(api, token(credentials))
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["key_id"] == key_id
    assert api.ok("GetKeys", key_id=key_id)["result"][0]["last_used"] != ""
    # The new key may change things too.
    name = unique("by-jwt")
    assert bearer(api, token(credentials), "AddApplication", application_name=name).status_code == 200
    entry = api.ok("GetAuditLog", **WIDE, filtered_key_id=key_id, filtered_cmd="AddApplication")["result"][0]
    assert entry["parameters"] == {"application_name": name}

    assert api.ok("DeleteKey", key_id=key_id)["result"] == 1
    reply = bearer(api, token(credentials))
    assert reply.status_code == 401 and reply.json()["error"]["code"] == ERR_AUTH
    assert api.ok("GetKeys", key_id=key_id)["total_count"] == 0
    api.fails("DeleteKey", 404, ERR_NOT_FOUND, key_id=key_id)


def test_create_key_takes_key_name_and_refuses_roles(api: Api) -> None:
    name = unique("named")
    key_id = api.ok("CreateKey", key_name=name)["result"]["key_id"]
    assert api.ok("GetKeys", key_id=key_id)["result"][0]["description"] == name
    for role in ({"role_id": "1"}, {"role_name": "Owner"}):
        api.fails("CreateKey", 400, ERR_UNSUPPORTED, **role)
    api.fails("CreateKey", 400, ERR_PARAMETER, description="d" * 201)
    api.ok("DeleteKey", key_id=key_id)


def test_a_key_cannot_delete_itself(api: Api, daemon: Daemon) -> None:
    credentials = api.ok("CreateKey")["result"]
    reply = bearer(api, token(credentials), "DeleteKey", key_id=credentials["key_id"])
    assert reply.status_code == 400 and reply.json()["error"]["code"] == ERR_PARAMETER, reply.text
    assert bearer(api, token(credentials)).status_code == 200
    # The same for a secret key.
    other = Api(daemon, create_api_key(daemon.data_dir))
    try:
        own = own_key_id(other)
        other.fails("DeleteKey", 400, ERR_PARAMETER, key_id=own)
        assert other.ok("GetKeys", key_id=own)["total_count"] == 1
        # Another key may delete it: then it no longer works.
        api.ok("DeleteKey", key_id=own)
        assert other.call("GetAccountInfo").status == 401
    finally:
        other.close()
    api.ok("DeleteKey", key_id=credentials["key_id"])


def test_delete_key_and_get_keys_parameters(api: Api) -> None:
    api.fails("DeleteKey", 400, ERR_PARAMETER)
    api.fails("DeleteKey", 404, ERR_NOT_FOUND, key_id="00000000-0000-0000-0000-000000000000")
    created = [api.ok("CreateKey", description=unique("page"))["result"]["key_id"] for _ in range(3)]
    everything = api.ok("GetKeys", count=1000)
    total = everything["total_count"]
    assert total == len(everything["result"]) >= 4
    ids = [k["key_id"] for k in everything["result"]]
    assert ids[-3:] == created  # in creation order
    pages = [api.ok("GetKeys", count=2, offset=offset) for offset in range(0, total, 2)]
    assert [k["key_id"] for page in pages for k in page["result"]] == ids
    assert all(page["total_count"] == total and page["count"] == len(page["result"]) for page in pages)
    assert api.ok("GetKeys", offset=total)["result"] == []
    assert api.ok("GetKeys", key_id="nope")["total_count"] == 0
    for bad in ({"count": "0"}, {"count": "1001"}, {"count": "x"}, {"offset": "-1"}):
        api.fails("GetKeys", 400, ERR_PARAMETER, **bad)
    for key_id in created:
        api.ok("DeleteKey", key_id=key_id)


def test_spoiled_tokens_are_refused(api: Api) -> None:
    credentials = api.ok("CreateKey")["result"]
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = time.time()
    spoiled = {
        "expired": token(credentials, iat=now - 4000, lifetime=3600),
        "lives-too-long": token(credentials, lifetime=3601),
        "issued-in-the-future": token(credentials, iat=now + 600),
        "other-account": token(credentials, iss="2"),
        "unknown-kid": token(credentials, kid="00000000-0000-0000-0000-000000000000"),
        "signed-by-a-stranger": token(credentials, private_key=stranger),
        "hs256": token(credentials, private_key="a shared secret of at least thirty-two bytes", alg="HS256"),
    }
    for what, bad in spoiled.items():
        reply = bearer(api, bad)
        assert reply.status_code == 401, (what, reply.text)
        assert reply.json()["error"]["code"] == ERR_AUTH, what
    # A little clock difference is tolerated, as the official client's own iat-5.
    assert bearer(api, token(credentials, iat=now - 60)).status_code == 200
    api.ok("DeleteKey", key_id=credentials["key_id"])


# GetAuditLog


def test_audit_log_records_changes_done_and_refused_with_who_and_what(daemon: Daemon, api: Api) -> None:
    mine = Api(daemon, create_api_key(daemon.data_dir))
    try:
        key_id = own_key_id(mine)
        start = time.time()
        name = unique("audited")
        mine.ok("AddApplication", application_name=name)
        mine.fails("AddApplication", 409, ERR_EXISTS, application_name=name)
        mine.ok("GetApplications", application_name=name)  # reads are not audited
        app_id = mine.ok("GetApplications", application_name=name)["result"][0]["application_id"]
        mine.ok("AddUser", application_id=app_id, user_name=unique("u"), user_password="secret-pw",
                user_display_name="U")
        mine.ok("AddScenario", scenario_name=unique("long"), scenario_script="// " + "y" * 1000)
        mine.ok("DelApplication", application_name=name)
    finally:
        mine.close()
    body = api.ok("GetAuditLog", **WIDE, filtered_key_id=key_id)
    created, *entries = body["result"]
    # `appliance apikey create` is audited too, as done on the box itself.
    assert (created["cmd"], created["ip"], created["error_code"]) == ("apikey create", "local", 0)
    assert body["total_count"] == len(entries) + 1 == 6
    assert [(e["cmd"], e["error_code"]) for e in entries] == [
        ("AddApplication", 0), ("AddApplication", ERR_EXISTS), ("AddUser", 0), ("AddScenario", 0),
        ("DelApplication", 0)]
    for e in entries:
        assert e["key_id"] == key_id and e["ip"] == "127.0.0.1" and e["account_id"] == 1
        assert re.fullmatch(DATE_RE, e["requested"])
        assert start - 1 <= e["requested_unix"] <= time.time() + 1
        assert "api_key" not in e["parameters"] and "account_id" not in e["parameters"]
    assert entries[0]["parameters"] == {"application_name": name} and entries[0]["error_msg"] == ""
    assert name in entries[1]["error_msg"]
    assert entries[2]["parameters"]["user_password"] == "***"
    script = entries[3]["parameters"]["scenario_script"]
    assert len(script) < 400 and script.endswith("(1003 characters)")
    assert [e["audit_log_id"] for e in entries] == sorted(e["audit_log_id"] for e in entries)


def test_audit_log_filters_order_and_paging(daemon: Daemon, api: Api) -> None:
    mine = Api(daemon, create_api_key(daemon.data_dir))
    try:
        key_id = own_key_id(mine)
        names = [unique("page") for _ in range(5)]
        for name in names:
            mine.ok("AddApplication", application_name=name)
        mine.ok("DelApplication", application_name=names[0])
        mine.ok("SetKeyValueItem", application_name=names[1], key="k", value="v")
    finally:
        mine.close()
    mine_only = {"filtered_key_id": key_id, "filtered_ip": "127.0.0.1", **WIDE}  # not the CLI's entry
    all_mine = api.ok("GetAuditLog", **mine_only)["result"]
    assert [e["cmd"] for e in all_mine] == ["AddApplication"] * 5 + ["DelApplication", "SetKeyValueItem"]
    # filtered_admin_user_id is Voximplant's name of the same filter.
    assert api.ok("GetAuditLog", **WIDE, filtered_admin_user_id=key_id, filtered_ip="127.0.0.1")["result"] == all_mine

    chosen = api.ok("GetAuditLog", **mine_only, filtered_cmd="DelApplication;SetKeyValueItem")["result"]
    assert [e["cmd"] for e in chosen] == ["DelApplication", "SetKeyValueItem"]
    assert api.ok("GetAuditLog", **mine_only, filtered_cmd="GetApplications")["total_count"] == 0
    assert api.ok("GetAuditLog", **WIDE, filtered_key_id=key_id)["total_count"] == 8  # with the CLI's
    assert api.ok("GetAuditLog", **WIDE, filtered_key_id=key_id, filtered_ip="local")["total_count"] == 1
    assert api.ok("GetAuditLog", **WIDE, filtered_key_id=key_id, filtered_ip="10.9.8.7")["total_count"] == 0

    backwards = api.ok("GetAuditLog", **mine_only, desc_order=True)["result"]
    assert backwards == list(reversed(all_mine))
    page = api.ok("GetAuditLog", **mine_only, count=2, offset=3)
    assert page["result"] == all_mine[3:5] and page["total_count"] == 7 and page["count"] == 2
    assert page["offset"] == 3
    assert "total_count" not in api.ok("GetAuditLog", **mine_only, with_total_count=False)

    # The dates bound the entries (to_date to the second, included).
    first = all_mine[0]["requested_unix"]
    last = all_mine[-1]["requested_unix"]
    mine_only = {"filtered_key_id": key_id, "filtered_ip": "127.0.0.1"}
    assert api.ok("GetAuditLog", **mine_only, from_date=api_date(first - 3600),
                  to_date=api_date(first - 1))["total_count"] == 0
    assert api.ok("GetAuditLog", **mine_only, from_date=api_date(first),
                  to_date=api_date(last))["total_count"] == 7
    assert api.ok("GetAuditLog", **mine_only, from_date=api_date(last + 2),
                  to_date=api_date(last + 3600))["total_count"] == 0


@pytest.mark.parametrize("params", [
    {"to_date": WIDE["to_date"]},
    {"from_date": WIDE["from_date"]},
    {"from_date": "yesterday", "to_date": WIDE["to_date"]},
    {"from_date": "2024-13-01 00:00:00", "to_date": WIDE["to_date"]},
    {**WIDE, "count": "0"},
    {**WIDE, "count": "1001"},
    {**WIDE, "offset": "-1"},
    {**WIDE, "desc_order": "perhaps"},
    {**WIDE, "filtered_cmd": "A;;B"},
], ids=["no-from", "no-to", "bad-date", "bad-month", "count-0", "count-1001", "offset-negative", "bad-bool",
        "empty-cmd-item"])
def test_audit_log_bad_parameters(api: Api, params: dict[str, str]) -> None:
    api.fails("GetAuditLog", 400, ERR_PARAMETER, **params)


def test_audit_log_takes_plain_dates(api: Api) -> None:
    """A date alone is that day's midnight (UTC)."""
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    assert api.ok("GetAuditLog", from_date="2000-01-01", to_date=tomorrow)["total_count"] >= 1
    assert api.ok("GetAuditLog", from_date="2000-01-01", to_date=api_date(time.time() - 86400))["total_count"] == 0
    assert api.ok("GetAuditLog", from_date=tomorrow, to_date="2100-01-01")["total_count"] == 0


# GetHealth, GetLines


def test_get_health_counts_sessions(api: Api) -> None:
    app_id, _ = api.application()
    scenario_id, _ = api.scenario(reply_scenario("up"))
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)
    before = api.ok("GetHealth")["result"]
    assert set(before) >= {"sessions", "session_calls", "sip_calls", "media"}
    assert isinstance(before["media"], dict)
    _, url = api.start(rule_id)
    assert ask_session(url) == "up"
    assert api.ok("GetHealth")["result"]["sessions"] == before["sessions"] + 1
    post_url(url, "stop")
    assert wait_until(lambda: api.ok("GetHealth")["result"]["sessions"] == before["sessions"], 10)


def test_get_lines_lists_users_and_trunks_live(api: Api) -> None:
    app_id, _ = api.application()
    user = unique("line")
    lines = api.ok("GetLines")
    assert lines["total_count"] == len(lines["result"])
    assert any(line["name"] == "100" and line["kind"] == "sip-user" for line in lines["result"])  # the sim phone
    user_id = api.ok("AddUser", application_id=app_id, user_name=user, user_password="pw-123",
                     user_display_name="Line")["user_id"]
    mine = [line for line in api.ok("GetLines")["result"] if line["name"] == user]
    assert mine == [{"name": user, "kind": "sip-user", "registered": False, "contacts": []}]
    trunk = unique("trunk")
    registration = api.ok("CreateSipRegistration", sip_username="acct", proxy="127.0.0.1:9", trunk_name=trunk)
    users_only = api.ok("GetLines", kind="sip-user")["result"]
    trunks_only = api.ok("GetLines", kind="sip-trunk")["result"]
    assert {line["kind"] for line in users_only} == {"sip-user"}
    assert {line["kind"] for line in trunks_only} == {"sip-trunk"}
    assert [line["host"] for line in trunks_only if line["name"] == trunk] == ["127.0.0.1"]
    assert api.ok("GetLines", kind="fxo")["result"] == []
    api.ok("DelUser", user_id=user_id)
    api.ok("DeleteSipRegistration", sip_registration_id=registration["sip_registration_id"])
    names = {line["name"] for line in api.ok("GetLines")["result"]}
    assert user not in names and trunk not in names


# Malformed input never makes the box fail

INTEGER_PARAMETERS = (
    "application_id", "rule_id", "scenario_id", "user_id", "sip_registration_id", "route_id", "record_id",
    "secret_id", "call_session_history_id", "count", "offset", "ttl", "expires_at", "strip_digits",
    "max_concurrent", "min_duration", "max_duration",
)
@pytest.mark.parametrize("cmd", sorted(METHODS))
def test_whole_numbers_out_of_range_or_malformed_are_refused_not_500(api: Api, cmd: str) -> None:
    failures = []
    for name in INTEGER_PARAMETERS:
        for value in (str(2**63), str(-(2**63) - 1), "1.5"):
            answer = api.call(cmd, **WIDE, **{name: value})
            if answer.status >= 500 or not isinstance(answer.body, dict):
                failures.append((name, value, answer.status, answer.text[:100]))
            elif "error" in answer.body:
                assert answer.error[0] in (ERR_PARAMETER, ERR_NOT_FOUND, ERR_UNSUPPORTED), (name, value, answer.text)
    assert not failures, failures


@pytest.mark.parametrize("cmd", ["DelScenario", "BindScenario", "AddRule"])
def test_scenario_id_lists_out_of_range_are_refused_not_500(api: Api, cmd: str) -> None:
    app_id, _ = api.application()
    scenario_id, _ = api.scenario("// kept")
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)
    contexts: dict[str, dict[str, object]] = {
        "DelScenario": {}, "BindScenario": {"rule_id": rule_id},
        "AddRule": {"application_id": app_id, "rule_name": unique("r"), "rule_pattern": ".*"}}
    context = contexts[cmd]
    for ids in (str(2**63), f"{scenario_id};{2**63}"):
        answer = api.call(cmd, scenario_id=ids, **context)
        assert answer.status in (400, 404), (ids, answer.text)
        assert answer.error[0] in (ERR_PARAMETER, ERR_NOT_FOUND)
    assert api.ok("GetScenarios", scenario_id=scenario_id)["total_count"] == 1


def test_a_form_that_is_not_utf8_is_a_json_400(api: Api) -> None:
    body = b"account_id=1&api_key=" + api.key.encode() + b"&application_name=\xff\xfe"
    reply = api.http.post(f"{api.daemon.api_url}/AddApplication", content=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == ERR_PARAMETER


def test_a_json_body_is_not_read_as_parameters(api: Api) -> None:
    """Voximplant's API takes forms (and query strings): a JSON body gives no parameters."""
    reply = api.http.post(f"{api.daemon.api_url}/GetAccountInfo", json={"account_id": "1", "api_key": api.key})
    assert reply.status_code == 401 and reply.json()["error"]["code"] == ERR_AUTH
    name = unique("json")
    reply = api.http.post(f"{api.daemon.api_url}/AddApplication", params={"account_id": "1", "api_key": api.key},
                          json={"application_name": name})
    assert reply.status_code == 400 and reply.json()["error"]["code"] == ERR_PARAMETER
    assert api.ok("GetApplications", application_name=name)["total_count"] == 0
