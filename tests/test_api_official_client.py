"""Voximplant's own Python client (voximplant-apiclient), UNMODIFIED, against the box.

It reads a service-account JSON (made with `appliance apikey create --service-account FILE`), signs a
short-lived RS256 JWT for every request and speaks HTTPS only: it is pointed at the box with
endpoint="127.0.0.1:<https port>" and trusts the box's certificate through REQUESTS_CA_BUNDLE. Each
test drives one group of methods with the client and checks what they did (through the client, and
where it matters by effect: a session's answer, a recording's file, a registrar's 200).
"""

from __future__ import annotations

import datetime
import json
import re
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import (
    api_daemon,
    caller_scenario,
    order_scenario,
    registrar,
    room_scenario,
    unique,
)
from daemon_helpers import Daemon, run_appliance, wait_until
from sip_helpers import SIPP
from voximplant.apiclient.client import VoximplantAPI, VoximplantException  # type: ignore[import-untyped]

UTC = datetime.UTC


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("api-client")) as d:
        yield d


@pytest.fixture(scope="module")
def credentials(daemon: Daemon) -> Path:
    """A service account made on the box while it runs, as a user would."""
    path = daemon.data_dir.parent / "vox_ci_credentials.json"
    result = run_appliance(["apikey", "create", "--data-dir", str(daemon.data_dir), "--service-account", str(path)],
                           cwd=daemon.data_dir.parent)
    assert result.returncode == 0, result.stderr
    assert set(json.loads(path.read_text())) >= {"account_id", "key_id", "private_key"}
    return path


@pytest.fixture(scope="module")
def client(daemon: Daemon, credentials: Path) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(daemon.cert_path))
        patch.delenv("CURL_CA_BUNDLE", raising=False)
        yield VoximplantAPI(str(credentials), endpoint=f"127.0.0.1:{daemon.https_port}")


def https(daemon: Daemon) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=daemon.cert_path), timeout=10)


def ask(daemon: Daemon, url: str, content: str = "") -> Any:
    with https(daemon) as session:
        reply = session.post(url, content=content)
    assert reply.status_code == 200, reply.text
    return json.loads(reply.text)


def raises(code: int, call: Callable[[], object]) -> str:
    """The VoximplantException the call raises, with this code; its message."""
    with pytest.raises(VoximplantException) as caught:
        call()
    assert caught.value.code == code, (caught.value.code, caught.value.message)
    return str(caught.value.message)


def window() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(UTC)
    return now - datetime.timedelta(minutes=10), now + datetime.timedelta(minutes=1)


def test_account_info_and_keys(client: Any, daemon: Daemon, credentials: Path, tmp_path: Path) -> None:
    own_key = json.loads(credentials.read_text())["key_id"]
    body = client.get_account_info()
    info = body["result"]
    assert info["account_id"] == 1 and info["key_id"] == own_key
    assert isinstance(info["created"], datetime.datetime)  # the client parsed the box's date
    assert body["api_address"] == f"{daemon.https_url}/platform_api"

    created = client.create_key(description="made by the official client")["result"]
    assert created["account_id"] == 1 and created["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    listed = client.get_keys(key_id=created["key_id"])
    assert listed["total_count"] == 1 and listed["result"][0]["description"] == "made by the official client"
    assert own_key in [k["key_id"] for k in client.get_keys(count=1000)["result"]]

    # The new key's credentials file works with another client.
    other_file = tmp_path / "other.json"
    other_file.write_text(json.dumps(created))
    other = VoximplantAPI(str(other_file), endpoint=f"127.0.0.1:{daemon.https_port}")
    assert other.get_account_info()["result"]["key_id"] == created["key_id"]
    raises(101, lambda: other.delete_key(created["key_id"]))  # not itself
    assert client.delete_key(created["key_id"])["result"] == 1
    raises(100, other.get_account_info)
    raises(102, lambda: client.delete_key(created["key_id"]))


def test_applications(client: Any) -> None:
    name = unique("client-app")
    added = client.add_application(name, secure_record_storage=True)
    app_id = added["application_id"]
    assert added["application_name"] == name and added["secure_record_storage"] is True
    [info] = client.get_applications(application_name=name)["result"]
    assert info["application_id"] == app_id and isinstance(info["modified"], datetime.datetime)
    renamed = unique("client-app")
    assert client.set_application_info(application_id=app_id, application_name=renamed,
                                       secure_record_storage=False)["result"] == 1
    [info] = client.get_applications(application_id=app_id)["result"]
    assert (info["application_name"], info["secure_record_storage"]) == (renamed, False)
    raises(104, lambda: client.add_application(renamed))
    assert client.del_application(application_name=renamed)["result"] == 1
    assert client.get_applications(application_id=app_id)["result"] == []
    raises(102, lambda: client.del_application(application_id=app_id))


def test_scenarios_rules_and_sessions(client: Any, daemon: Daemon) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    first = client.add_scenario(unique("client-a"), order_scenario("a"))["scenario_id"]
    second_name = unique("client-b")
    second = client.add_scenario(second_name, order_scenario("b"), application_id=app_id)["scenario_id"]
    rule_name = unique("client-rule")
    rule_id = client.add_rule(rule_name, ".*", application_id=app_id, scenario_id=first)["rule_id"]
    assert client.bind_scenario(scenario_name=second_name, rule_id=rule_id, application_id=app_id,
                                bind=True)["result"] == 1
    [rule] = client.get_rules(application_id=app_id, with_scenarios=True)["result"]
    assert [s["scenario_id"] for s in rule["scenarios"]] == [first, second]
    assert isinstance(rule["modified"], datetime.datetime)

    def run() -> Any:
        started = client.start_scenarios(rule_id=rule_id, script_custom_data="from the client")
        assert started["media_session_access_secure_url"] == started["media_session_access_url"]
        assert started["media_session_access_url"].startswith(f"{daemon.https_url}/request/")
        try:
            return ask(daemon, started["media_session_access_url"])
        finally:
            ask(daemon, started["media_session_access_url"], "stop")

    assert run() == ["a", "b"]
    assert client.reorder_scenarios([second, first], rule_id=rule_id)["result"] == 1
    assert run() == ["b", "a"]

    assert client.set_scenario_info(scenario_id=first, scenario_script=order_scenario("A"))["result"] == 1
    [info] = client.get_scenarios(scenario_id=first, with_script=True)["result"]
    assert info["scenario_script"] == order_scenario("A") and isinstance(info["modified"], datetime.datetime)
    assert run() == ["b", "A"]
    assert [s["scenario_id"] for s in client.get_scenarios(application_id=app_id)["result"]] == [first, second]

    other_rule = client.add_rule(unique("client-rule"), "9.*", application_id=app_id)["rule_id"]
    assert client.reorder_rules([other_rule, rule_id])["result"] == 1
    assert [r["rule_id"] for r in client.get_rules(application_id=app_id)["result"]] == [other_rule, rule_id]
    assert client.set_rule_info(other_rule, rule_pattern="8.*")["result"] == 1
    assert client.get_rules(rule_id=other_rule)["result"][0]["rule_pattern"] == "8.*"
    assert client.bind_scenario(scenario_id=first, rule_id=rule_id, bind=False)["result"] == 1
    assert run() == ["b"]
    assert client.del_rule(rule_id=other_rule)["result"] == 1
    assert client.del_scenario(scenario_id=[first, second])["result"] == 1
    assert client.get_scenarios(scenario_id=first)["total_count"] == 0
    assert client.get_rules(rule_id=rule_id, with_scenarios=True)["result"][0]["scenarios"] == []
    raises(102, lambda: client.start_scenarios(rule_id=other_rule))
    client.del_application(application_id=app_id)


def test_a_refused_scenario_raises_105_with_file_and_line(client: Any) -> None:
    name = unique("client-broken")
    message = raises(105, lambda: client.add_scenario(name, "// line one\nVoxEngine.addEventListener(;\n"))
    assert re.search(rf"{re.escape(name)}\.js:2\b", message), message
    assert client.get_scenarios(scenario_name=name)["total_count"] == 0


def test_users(client: Any) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    name = unique("client-user")
    user_id = client.add_user(name, "Client User", "pw-123456", application_id=app_id,
                              user_custom_data="cd")["user_id"]
    [info] = client.get_users(application_id=app_id)["result"]
    assert (info["user_id"], info["user_name"], info["user_active"], info["user_custom_data"]) == (
        user_id, name, True, "cd")
    assert isinstance(info["created"], datetime.datetime)
    assert client.set_user_info(user_id=user_id, user_active=False, user_display_name="Renamed")["result"] == 1
    assert client.get_users(application_id=app_id, user_active=True)["result"] == []
    [info] = client.get_users(application_id=app_id, user_active=False)["result"]
    assert info["user_display_name"] == "Renamed"
    raises(104, lambda: client.add_user(name, "Again", "pw-123456", application_id=app_id))
    assert client.del_user(user_id=user_id)["result"] == 1
    assert client.get_users(application_id=app_id)["total_count"] == 0


@pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")
def test_sip_registrations(client: Any, tmp_path: Path) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    rule_id = client.add_rule(unique("client-rule"), ".*", application_id=app_id)["rule_id"]
    username = unique("client-acct")
    with registrar(tmp_path) as port:
        registration_id = client.create_sip_registration(username, f"127.0.0.1:{port}", password="trunk-pw",
                                                         application_id=app_id)["sip_registration_id"]

        def registered() -> bool:
            [info] = client.get_sip_registrations(sip_registration_id=registration_id)["result"]
            return bool(info["successful"])

        assert wait_until(registered, 10, 0.1)
        [info] = client.get_sip_registrations(sip_username=username, successful=True)["result"]
        assert (info["sip_registration_id"], info["status_code"], info["application_id"]) == (
            registration_id, 200, app_id)
        assert client.update_sip_registration(registration_id, auth_user="auth-user")["result"] == 1
        assert client.bind_sip_registration(sip_registration_id=registration_id, rule_id=rule_id,
                                            bind=True)["result"] == 1
        [info] = client.get_sip_registrations(sip_registration_id=registration_id)["result"]
        assert (info["auth_user"], info["rule_id"]) == ("auth-user", rule_id)
        assert wait_until(registered, 10, 0.1)  # registered again with the new settings
        assert client.bind_sip_registration(sip_registration_id=registration_id, bind=False)["result"] == 1
        assert client.get_sip_registrations(sip_registration_id=registration_id)["result"][0]["rule_id"] is None
        raises(107, lambda: client.create_sip_registration(username, "127.0.0.1", outbound_proxy="10.0.0.1"))
        assert client.delete_sip_registration(registration_id)["result"] == 1
    assert client.get_sip_registrations(sip_registration_id=registration_id)["total_count"] == 0


def test_call_history_and_delete_record(client: Any, daemon: Daemon) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    room = unique("room")
    caller = client.add_scenario(unique("client-caller"), caller_scenario(room, record=True))["scenario_id"]
    answering = client.add_scenario(unique("client-room"), room_scenario())["scenario_id"]
    client.add_rule(unique("client-room"), room, application_id=app_id, scenario_id=answering)
    rule_id = client.add_rule(unique("client-caller"), "^never$", application_id=app_id,
                              scenario_id=caller)["rule_id"]
    session_id = client.start_scenarios(rule_id=rule_id, script_custom_data="cdr")["call_session_history_id"]
    since, until = window()
    entry: dict[str, Any] = {}

    def ended() -> bool:
        nonlocal entry
        [entry] = client.get_call_history(since, until, call_session_history_id=session_id, with_calls=True,
                                          with_records=True)["result"]
        return entry["duration"] is not None

    assert wait_until(ended, 10, 0.1), entry
    assert isinstance(entry["start_date"], datetime.datetime) and entry["custom_data"] == "cdr"
    [call] = entry["calls"]
    assert call["remote_number"] == room and call["successful"] is True
    assert isinstance(call["start_time"], datetime.datetime)
    [record] = entry["records"]
    assert isinstance(record["start_time"], datetime.datetime) and record["file_size"] > 0
    with https(daemon) as session:
        assert session.get(entry["log_file_url"]).text.rstrip().endswith("session ended: Normal termination")
        assert session.get(record["record_url"]).status_code == 200
        assert client.delete_record(record_id=record["record_id"])["result"] == 1
        assert session.get(record["record_url"]).status_code == 404
    [entry] = client.get_call_history(since, until, call_session_history_id=session_id, with_records=True)["result"]
    assert entry["records"] == []
    listed = client.get_call_history(since, until, application_id=app_id, desc_order=True, count=1)
    assert listed["total_count"] == 2 and len(listed["result"]) == 1  # the caller's session and the room's
    raises(102, lambda: client.delete_record(record_id=record["record_id"]))


def test_key_value_storage(client: Any) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    item = client.set_key_value_item("client:1", "one", app_id, ttl=600)["result"]
    assert (item["key"], item["value"]) == ("client:1", "one")
    client.set_key_value_item("client:2", "two", app_id, ttl=600)
    client.set_key_value_item("other", "x", app_id, ttl=600)
    assert client.get_key_value_item("client:1", app_id)["result"]["value"] == "one"
    items = client.get_key_value_items("client:", app_id)
    assert [(i["key"], i["value"]) for i in items["result"]] == [("client:1", "one"), ("client:2", "two")]
    assert [k["key"] for k in client.get_key_value_keys(app_id)["result"]] == ["client:1", "client:2", "other"]
    assert client.del_key_value_item("client:1", app_id)["result"] == 1
    raises(102, lambda: client.get_key_value_item("client:1", app_id))
    raises(101, lambda: client.set_key_value_item("k", "v" * 2001, app_id))


def test_secrets(client: Any) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    secret_id = client.add_secret("Token", "s3cret", application_id=app_id, description="d")["result"]["secret_id"]
    listed = client.get_secrets(application_id=app_id)
    assert [s["secret_name"] for s in listed["result"]] == ["Token"] and "s3cret" not in json.dumps(
        listed, default=str)
    assert client.set_secret_info(application_id=app_id, secret_id=secret_id, new_secret_name="Token2",
                                  secret_value="changed")["result"] == 1
    value = client.get_secret_value(application_id=app_id, secret_name="Token2")["result"]
    assert (value["secret_id"], value["secret_value"]) == (secret_id, "changed")
    raises(101, lambda: client.add_secret("9bad", "v", application_id=app_id))
    assert client.del_secret(application_id=app_id, secret_id=secret_id)["result"] == 1
    raises(102, lambda: client.get_secret_value(application_id=app_id, secret_id=secret_id))


def test_audit_log(client: Any, credentials: Path) -> None:
    key_id = json.loads(credentials.read_text())["key_id"]
    name = unique("client-audited")
    client.add_application(name)
    since, until = window()
    body = client.get_audit_log(since, until, filtered_cmd=["AddApplication"], filtered_admin_user_id=key_id,
                                desc_order=True, count=1)
    [entry] = body["result"]
    assert (entry["cmd"], entry["key_id"], entry["parameters"]) == ("AddApplication", key_id,
                                                                    {"application_name": name})
    assert isinstance(entry["requested"], datetime.datetime)
    assert body["total_count"] >= 1
    everything = client.get_audit_log(since, until, filtered_ip="127.0.0.1", count=1000)["result"]
    assert entry["audit_log_id"] in [e["audit_log_id"] for e in everything]
    assert client.get_audit_log(since, until, filtered_ip="10.1.2.3")["result"] == []


def test_set_rule_info_renames(client: Any) -> None:
    app_id = client.add_application(unique("client-app"))["application_id"]
    rule_id = client.add_rule(unique("client-rule"), ".*", application_id=app_id)["rule_id"]
    new_name = unique("client-renamed")
    client.set_rule_info(rule_id, rule_name=new_name)
    assert client.get_rules(rule_id=rule_id)["result"][0]["rule_name"] == new_name
