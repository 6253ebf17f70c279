"""Management API, the box's lines: users (AddUser, GetUsers, SetUserInfo, DelUser), SIP registrations
(CreateSipRegistration, UpdateSipRegistration, BindSipRegistration, DeleteSipRegistration,
GetSipRegistrations) and outbound routes (AddOutboundRoute, GetOutboundRoutes, SetOutboundRouteInfo,
DelOutboundRoute, ReorderOutboundRoutes), against the real daemon.

A registration is proven to work against sipp playing a registrar (200 to every REGISTER and OPTIONS);
outbound routes by what a scenario's callPSTN meets (no route: 404; a route to a line that is not
there: 503). One daemon serves this module; every test names its own objects. Registrations and routes
are box-wide: tests filter listings down to their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import (
    ERR_EXISTS,
    ERR_NOT_FOUND,
    ERR_PARAMETER,
    ERR_UNSUPPORTED,
    Api,
    api_daemon,
    registrar,
    unique,
)
from daemon_helpers import Daemon, free_port, wait_until
from sip_helpers import SIPP

MISSING_ID = 987654

@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("api-lines")) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


# Users


def add_user(api: Api, app_id: int, **params: object) -> tuple[int, str]:
    name = unique("u")
    fields: dict[str, object] = {"user_password": "pw-123456", "user_display_name": f"Display {name}", **params}
    return int(api.ok("AddUser", application_id=app_id, user_name=name, **fields)["user_id"]), name


def user(api: Api, user_id: int) -> dict[str, Any]:
    listed = api.ok("GetUsers", user_id=user_id)
    assert listed["total_count"] == 1, listed
    info = listed["result"][0]
    assert isinstance(info, dict)
    return info


def test_add_get_set_del_user(api: Api) -> None:
    app_id, app_name = api.application()
    name = unique("alice")
    user_id = api.ok("AddUser", application_name=app_name, user_name=name, user_password="first-pw",
                     user_display_name="Alice A.", user_custom_data="dept=7", user_active=True)["user_id"]
    info = user(api, user_id)
    assert {k: info[k] for k in ("user_id", "user_name", "user_display_name", "user_active", "user_custom_data",
                                 "registered")} == {
        "user_id": user_id, "user_name": name, "user_display_name": "Alice A.", "user_active": True,
        "user_custom_data": "dept=7", "registered": False}
    assert [a["application_id"] for a in info["applications"]] == [app_id]
    assert "first-pw" not in str(info)

    new_name = unique("alicia")
    api.ok("SetUserInfo", user_id=user_id, new_user_name=new_name, user_display_name="Alicia",
           user_password="second-pw", user_active=False, user_custom_data="")
    info = user(api, user_id)
    assert (info["user_name"], info["user_display_name"], info["user_active"], info["user_custom_data"]) == (
        new_name, "Alicia", False, "")
    api.ok("SetUserInfo", user_name=new_name, application_id=app_id, user_active=True)
    assert user(api, user_id)["user_active"] is True
    assert user(api, user_id)["user_display_name"] == "Alicia"  # untouched fields keep their value

    assert api.ok("DelUser", user_name=new_name, application_name=app_name)["result"] == 1
    assert api.ok("GetUsers", user_id=user_id)["total_count"] == 0
    api.fails("DelUser", 404, ERR_NOT_FOUND, user_id=user_id)
    api.fails("SetUserInfo", 404, ERR_NOT_FOUND, user_id=user_id, user_active=False)


def test_users_are_lines_of_the_running_box(api: Api) -> None:
    app_id, _ = api.application()
    user_id, name = add_user(api, app_id)
    assert [line["kind"] for line in api.ok("GetLines")["result"] if line["name"] == name] == ["sip-user"]
    renamed = unique("renamed")
    api.ok("SetUserInfo", user_id=user_id, new_user_name=renamed)
    names = {line["name"] for line in api.ok("GetLines")["result"]}
    assert renamed in names and name not in names
    api.ok("DelUser", user_id=user_id)
    assert renamed not in {line["name"] for line in api.ok("GetLines")["result"]}


def test_get_users_filters_order_and_paging(api: Api) -> None:
    app_id, app_name = api.application()
    other_app, _ = api.application()
    zed, zed_name = add_user(api, app_id, user_display_name="Zed Zulu")
    amy, amy_name = add_user(api, app_id, user_display_name="Amy Alpha", user_active=False)
    bob, bob_name = add_user(api, app_id, user_display_name="Bob Bravo")
    add_user(api, other_app, user_display_name="Amy Elsewhere")

    def ids(**params: object) -> list[int]:
        return [u["user_id"] for u in api.ok("GetUsers", **params)["result"]]

    assert ids(application_id=app_id) == [zed, amy, bob]
    assert ids(application_name=app_name, order_by="user_display_name") == [amy, bob, zed]
    assert ids(application_id=app_id, order_by="user_name") == sorted(
        [zed, amy, bob], key=lambda i: {zed: zed_name, amy: amy_name, bob: bob_name}[i])
    assert ids(application_id=app_id, user_active=False) == [amy]
    assert ids(application_id=app_id, user_active=True) == [zed, bob]
    assert ids(application_id=app_id, user_display_name="Bravo") == [bob]
    assert ids(application_id=app_id, user_name=amy_name) == [amy]
    assert ids(application_id=app_id, user_name=amy_name[:-1] + "x") == []  # a part of the name
    assert ids(user_display_name="Amy") == [amy, *ids(application_id=other_app)]
    assert ids(application_id=app_id, user_id=bob) == [bob]
    assert ids(application_id=other_app, user_id=bob) == []
    assert ids(application_id=MISSING_ID) == []
    page = api.ok("GetUsers", application_id=app_id, count=1, offset=1)
    assert [u["user_id"] for u in page["result"]] == [amy]
    assert (page["total_count"], page["count"], page["offset"]) == (3, 1, 1)
    for bad in ({"order_by": "password"}, {"user_active": "2"}, {"count": "0"}, {"offset": "-1"},
                {"user_id": "x"}):
        api.fails("GetUsers", 400, ERR_PARAMETER, application_id=app_id, **bad)


def test_user_errors(api: Api) -> None:
    app_id, app_name = api.application()
    user_id, name = add_user(api, app_id)
    _, other = add_user(api, app_id)
    base = {"application_id": app_id, "user_password": "pw", "user_display_name": "D"}
    api.fails("AddUser", 400, ERR_PARAMETER, user_name=unique("u"), user_password="pw", user_display_name="D")
    api.fails("AddUser", 404, ERR_NOT_FOUND, user_name=unique("u"), user_password="pw", user_display_name="D",
              application_id=MISSING_ID)
    api.fails("AddUser", 400, ERR_PARAMETER, **base, application_name=app_name, user_name=unique("u"))
    api.fails("AddUser", 400, ERR_PARAMETER, **base)
    for bad in ("", "-starts-with-a-sign", "has space", "x" * 65, "a@b"):
        api.fails("AddUser", 400, ERR_PARAMETER, **base, user_name=bad)
    api.fails("AddUser", 400, ERR_PARAMETER, application_id=app_id, user_name=unique("u"), user_display_name="D")
    api.fails("AddUser", 400, ERR_PARAMETER, application_id=app_id, user_name=unique("u"), user_password="pw")
    api.fails("AddUser", 400, ERR_PARAMETER, **{**base, "user_password": "p" * 129}, user_name=unique("u"))
    api.fails("AddUser", 400, ERR_PARAMETER, **{**base, "user_display_name": "d" * 257}, user_name=unique("u"))
    api.fails("AddUser", 400, ERR_PARAMETER, **base, user_name=unique("u"), user_custom_data="c" * 201)
    api.fails("AddUser", 400, ERR_PARAMETER, **base, user_name=unique("u"), user_active="sometimes")
    api.fails("AddUser", 409, ERR_EXISTS, **base, user_name=name)
    other_app, _ = api.application()
    api.fails("AddUser", 409, ERR_EXISTS, **{**base, "application_id": other_app}, user_name=name)  # box-wide

    api.fails("SetUserInfo", 400, ERR_PARAMETER, user_active=False)
    api.fails("SetUserInfo", 400, ERR_PARAMETER, user_id=user_id, user_name=name, user_active=False)
    api.fails("SetUserInfo", 404, ERR_NOT_FOUND, user_id=MISSING_ID, user_active=False)
    api.fails("SetUserInfo", 404, ERR_NOT_FOUND, user_name=unique("nope"), user_active=False)
    api.fails("SetUserInfo", 404, ERR_NOT_FOUND, user_id=user_id, application_id=other_app, user_active=False)
    api.fails("SetUserInfo", 409, ERR_EXISTS, user_id=user_id, new_user_name=other)
    api.fails("SetUserInfo", 400, ERR_PARAMETER, user_id=user_id, new_user_name="bad name")
    api.fails("SetUserInfo", 400, ERR_PARAMETER, user_id=user_id, user_active="2")
    api.fails("SetUserInfo", 400, ERR_PARAMETER, user_id=user_id, user_password="")
    api.fails("SetUserInfo", 400, ERR_PARAMETER, user_id=user_id, user_custom_data="c" * 201)
    info = user(api, user_id)
    assert (info["user_name"], info["user_active"]) == (name, True)

    api.fails("DelUser", 400, ERR_PARAMETER)
    api.fails("DelUser", 404, ERR_NOT_FOUND, user_id=MISSING_ID)
    api.fails("DelUser", 404, ERR_NOT_FOUND, user_name=unique("nope"))
    api.fails("DelUser", 400, ERR_PARAMETER, user_id=user_id, user_name=name)
    api.fails("DelUser", 404, ERR_NOT_FOUND, user_id=user_id, application_id=other_app)
    api.fails("DelUser", 404, ERR_NOT_FOUND, user_id=[user_id, MISSING_ID])
    assert user(api, user_id)["user_name"] == name


def test_del_user_lists(api: Api) -> None:
    app_id, _ = api.application()
    ids = [add_user(api, app_id)[0] for _ in range(2)]
    names = [add_user(api, app_id)[1] for _ in range(2)]
    kept, _ = add_user(api, app_id)
    api.ok("DelUser", user_id=ids)
    api.ok("DelUser", user_name=names, application_id=app_id)
    assert [u["user_id"] for u in api.ok("GetUsers", application_id=app_id)["result"]] == [kept]


# SIP registrations


def registration(api: Api, registration_id: int) -> dict[str, Any]:
    listed = api.ok("GetSipRegistrations", sip_registration_id=registration_id)
    assert listed["total_count"] == 1, listed
    info = listed["result"][0]
    assert isinstance(info, dict)
    return info


@pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) is installed by `make test`")
def test_a_registration_registers_with_the_registrar(api: Api, tmp_path: Path) -> None:
    app_id, app_name = api.application()
    rule_id, rule_name = api.rule(app_id)
    username = unique("acct")
    with registrar(tmp_path) as port:
        created = api.ok("CreateSipRegistration", sip_username=username, proxy=f"127.0.0.1:{port}",
                         password="trunk-pw", auth_user="auth-" + username, application_name=app_name,
                         rule_name=rule_name)
        registration_id = created["sip_registration_id"]

        def registered() -> bool:
            return bool(registration(api, registration_id)["successful"])

        assert wait_until(registered, 10, 0.1), registration(api, registration_id)
        info = registration(api, registration_id)
        assert {k: info[k] for k in ("sip_username", "proxy", "auth_user", "status_code", "error_message",
                                     "in_progress", "application_id", "application_name", "rule_id",
                                     "rule_name", "transport")} == {
            "sip_username": username, "proxy": f"127.0.0.1:{port}", "auth_user": "auth-" + username,
            "status_code": 200, "error_message": "", "in_progress": False, "application_id": app_id,
            "application_name": app_name, "rule_id": rule_id, "rule_name": rule_name, "transport": "udp"}
        assert "trunk-pw" not in str(info)
        mine = api.ok("GetSipRegistrations", sip_username=username, successful=True)
        assert [r["sip_registration_id"] for r in mine["result"]] == [registration_id]
        assert api.ok("GetSipRegistrations", sip_username=username, successful=False)["total_count"] == 0
        trunk = [line for line in api.ok("GetLines", kind="sip-trunk")["result"] if line["name"] == info["trunk_name"]]
        assert [line["registration"] for line in trunk] == ["registered"]
        api.ok("DeleteSipRegistration", sip_registration_id=registration_id)
    assert api.ok("GetSipRegistrations", sip_registration_id=registration_id)["total_count"] == 0


def test_a_registration_without_a_registrar_is_not_successful(api: Api) -> None:
    username = unique("lonely")
    port = free_port()  # nothing answers there
    registration_id = api.ok("CreateSipRegistration", sip_username=username,
                             proxy=f"127.0.0.1:{port}")["sip_registration_id"]
    info = registration(api, registration_id)
    assert info["successful"] is False
    assert api.ok("GetSipRegistrations", sip_username=username, successful=True)["total_count"] == 0
    api.ok("DeleteSipRegistration", sip_registration_id=registration_id)


def test_update_bind_and_filter_registrations(api: Api) -> None:
    app_id, app_name = api.application()
    rule_id, rule_name = api.rule(app_id)
    other_app, _ = api.application()
    other_rule, other_rule_name = api.rule(other_app)
    username = unique("acct")
    trunk_name = unique("itsp")
    registration_id = api.ok("CreateSipRegistration", sip_username=username, proxy="sip:127.0.0.1:9",
                             trunk_name=trunk_name, transport="tcp")["sip_registration_id"]
    info = registration(api, registration_id)
    assert (info["proxy"], info["trunk_name"], info["transport"]) == ("127.0.0.1:9", trunk_name, "tcp")
    assert (info["application_id"], info["rule_id"], info["application_name"], info["rule_name"]) == (
        None, None, "", "")
    assert registration_id not in [r["sip_registration_id"] for r in api.ok(
        "GetSipRegistrations", is_bound_to_application=True, count=1000)["result"]]

    new_user = unique("acct")
    api.ok("UpdateSipRegistration", sip_registration_id=registration_id, sip_username=new_user,
           proxy="127.0.0.2", auth_user="someone", password="new-pw", transport="udp", application_id=app_id)
    info = registration(api, registration_id)
    assert (info["sip_username"], info["proxy"], info["auth_user"], info["transport"], info["application_id"]) == (
        new_user, "127.0.0.2", "someone", "udp", app_id)
    assert api.ok("GetSipRegistrations", sip_username=username)["total_count"] == 0

    api.ok("BindSipRegistration", sip_registration_id=registration_id, rule_id=other_rule)
    info = registration(api, registration_id)
    assert (info["application_id"], info["rule_id"], info["rule_name"]) == (other_app, other_rule, other_rule_name)
    api.ok("BindSipRegistration", sip_registration_id=registration_id, application_name=app_name,
           rule_name=rule_name, bind=True)
    info = registration(api, registration_id)
    assert (info["application_id"], info["rule_id"]) == (app_id, rule_id)

    def found(**params: object) -> bool:
        listed = api.ok("GetSipRegistrations", count=1000, **params)["result"]
        return registration_id in [r["sip_registration_id"] for r in listed]

    assert found(application_id=app_id) and found(application_name=app_name)
    assert found(rule_id=rule_id) and found(rule_name=rule_name, application_id=app_id)
    assert found(is_bound_to_application=True) and not found(is_bound_to_application=False)
    assert found(proxy="127.0.0.2") and not found(proxy="10.1.1.1")
    assert found(sip_username=new_user) and found(successful=False)
    assert not found(application_id=other_app) and not found(rule_id=other_rule)
    assert not found(application_id=MISSING_ID)

    api.ok("BindSipRegistration", sip_registration_id=registration_id, bind=False)
    info = registration(api, registration_id)
    assert (info["application_id"], info["rule_id"]) == (None, None)
    assert found(is_bound_to_application=False)

    # Deleting the rule a registration is bound to unbinds it.
    api.ok("BindSipRegistration", sip_registration_id=registration_id, rule_id=rule_id)
    api.ok("DelRule", rule_id=rule_id)
    assert registration(api, registration_id)["rule_id"] is None
    api.ok("DeleteSipRegistration", sip_registration_id=registration_id)
    api.fails("DeleteSipRegistration", 404, ERR_NOT_FOUND, sip_registration_id=registration_id)


def test_registration_names_its_trunk_after_the_proxy(api: Api) -> None:
    first = api.ok("CreateSipRegistration", sip_username=unique("a"), proxy="trunk.example.invalid")
    second = api.ok("CreateSipRegistration", sip_username=unique("a"), proxy="trunk.example.invalid:5070")
    names = [registration(api, r["sip_registration_id"])["trunk_name"] for r in (first, second)]
    assert names[0].startswith("trunk.example.invalid") and names[1].startswith("trunk.example.invalid")
    assert names[0] != names[1]
    api.fails("CreateSipRegistration", 409, ERR_EXISTS, sip_username=unique("a"), proxy="127.0.0.1",
              trunk_name=names[0])
    for created in (first, second):
        api.ok("DeleteSipRegistration", sip_registration_id=created["sip_registration_id"])


def test_registration_errors(api: Api) -> None:
    app_id, app_name = api.application()
    rule_id, _ = api.rule(app_id)
    base = {"sip_username": "acct", "proxy": "127.0.0.1:9"}
    for bad_proxy in ("", "has space:5060", "host:0", "host:65536", "host:port", "user@host", "sip:"):
        api.fails("CreateSipRegistration", 400, ERR_PARAMETER, sip_username="acct", proxy=bad_proxy)
    api.fails("CreateSipRegistration", 400, ERR_PARAMETER, sip_username="acct")
    api.fails("CreateSipRegistration", 400, ERR_PARAMETER, proxy="127.0.0.1")
    api.fails("CreateSipRegistration", 400, ERR_UNSUPPORTED, **base, outbound_proxy="10.0.0.1")
    api.fails("CreateSipRegistration", 400, ERR_UNSUPPORTED, **base, user_id="1")
    api.fails("CreateSipRegistration", 400, ERR_UNSUPPORTED, **base, user_name="100")
    api.fails("CreateSipRegistration", 400, ERR_PARAMETER, **base, transport="sctp")
    api.fails("CreateSipRegistration", 400, ERR_PARAMETER, **base, trunk_name="bad name")
    api.fails("CreateSipRegistration", 400, ERR_PARAMETER, **base, password="p" * 129)
    api.fails("CreateSipRegistration", 404, ERR_NOT_FOUND, **base, application_id=MISSING_ID)
    api.fails("CreateSipRegistration", 404, ERR_NOT_FOUND, **base, rule_id=MISSING_ID)
    api.fails("CreateSipRegistration", 400, ERR_PARAMETER, **base, application_id=app_id, application_name=app_name)
    other_app, _ = api.application()
    api.fails("CreateSipRegistration", 404, ERR_NOT_FOUND, **base, application_id=other_app, rule_id=rule_id)

    registration_id = api.ok("CreateSipRegistration", **{**base, "sip_username": unique("e")})[
        "sip_registration_id"]
    for method in ("UpdateSipRegistration", "BindSipRegistration", "DeleteSipRegistration"):
        api.fails(method, 400, ERR_PARAMETER)
        api.fails(method, 400, ERR_PARAMETER, sip_registration_id="first")
        api.fails(method, 404, ERR_NOT_FOUND, sip_registration_id=MISSING_ID, application_id=app_id)
    api.fails("UpdateSipRegistration", 400, ERR_UNSUPPORTED, sip_registration_id=registration_id,
              outbound_proxy="10.0.0.1")
    api.fails("UpdateSipRegistration", 400, ERR_PARAMETER, sip_registration_id=registration_id, proxy="a b")
    api.fails("UpdateSipRegistration", 400, ERR_PARAMETER, sip_registration_id=registration_id, transport="x")
    api.fails("UpdateSipRegistration", 400, ERR_PARAMETER, sip_registration_id=registration_id, sip_username="")
    api.fails("UpdateSipRegistration", 404, ERR_NOT_FOUND, sip_registration_id=registration_id,
              application_id=MISSING_ID)
    api.fails("BindSipRegistration", 400, ERR_PARAMETER, sip_registration_id=registration_id)  # bind to what?
    api.fails("BindSipRegistration", 400, ERR_PARAMETER, sip_registration_id=registration_id, bind="2",
              application_id=app_id)
    api.fails("BindSipRegistration", 400, ERR_UNSUPPORTED, sip_registration_id=registration_id, user_id="1")
    api.fails("BindSipRegistration", 404, ERR_NOT_FOUND, sip_registration_id=registration_id, rule_id=MISSING_ID)
    for bad in ({"successful": "2"}, {"is_bound_to_application": "x"}, {"count": "0"}, {"offset": "-1"},
                {"sip_registration_id": "x"}):
        api.fails("GetSipRegistrations", 400, ERR_PARAMETER, **bad)
    info = registration(api, registration_id)
    assert (info["proxy"], info["application_id"], info["transport"]) == ("127.0.0.1:9", None, "udp")
    api.ok("DeleteSipRegistration", sip_registration_id=registration_id)


# Outbound routes


def routes(api: Api) -> dict[str, dict[str, Any]]:
    return {r["route_name"] if "route_name" in r else r["name"]: r for r in api.ok("GetOutboundRoutes")["result"]}


def test_add_get_set_del_outbound_route(api: Api) -> None:
    name = unique("route")
    route_id = api.ok("AddOutboundRoute", route_name=name, pattern=r"9\d+", line="itsp", strip_digits=1,
                      prepend="+44", callerid_policy="fixed", callerid_value="+441234", international=True,
                      max_concurrent=2, enabled=True)["route_id"]
    route = routes(api)[name]
    assert {k: route[k] for k in ("route_id", "pattern", "line", "strip_digits", "prepend", "callerid_policy",
                                  "callerid_value", "international", "max_concurrent", "enabled")} == {
        "route_id": route_id, "pattern": r"9\d+", "line": "itsp", "strip_digits": 1, "prepend": "+44",
        "callerid_policy": "fixed", "callerid_value": "+441234", "international": True, "max_concurrent": 2,
        "enabled": True}
    defaults = unique("route")
    api.ok("AddOutboundRoute", route_name=defaults, pattern=r"9\d+", line="itsp")
    route = routes(api)[defaults]
    assert (route["strip_digits"], route["prepend"], route["callerid_policy"], route["international"],
            route["max_concurrent"], route["enabled"]) == (0, "", "pass", False, 0, True)

    renamed = unique("renamed")
    api.ok("SetOutboundRouteInfo", route_id=route_id, new_route_name=renamed, callerid_policy="anonymous",
           enabled=False, max_concurrent=0, line="gsm1")
    route = routes(api)[renamed]
    assert (route["route_id"], route["callerid_policy"], route["enabled"], route["max_concurrent"], route["line"]) == (
        route_id, "anonymous", False, 0, "gsm1")
    assert name not in routes(api)
    api.ok("SetOutboundRouteInfo", route_name=renamed, pattern="8.*")
    assert routes(api)[renamed]["pattern"] == "8.*"

    api.ok("DelOutboundRoute", route_name=renamed)
    api.ok("DelOutboundRoute", route_name=defaults)
    assert renamed not in routes(api) and defaults not in routes(api)
    api.fails("DelOutboundRoute", 404, ERR_NOT_FOUND, route_id=route_id)


def test_reorder_outbound_routes(api: Api) -> None:
    made = [api.ok("AddOutboundRoute", route_name=unique("order"), pattern=r"9\d+", line="itsp")["route_id"]
            for _ in range(3)]
    try:
        everything = [r["route_id"] for r in api.ok("GetOutboundRoutes")["result"]]
        others = [i for i in everything if i not in made]
        wanted = [made[2], *others, made[0], made[1]]
        api.ok("ReorderOutboundRoutes", route_id=wanted)
        assert [r["route_id"] for r in api.ok("GetOutboundRoutes")["result"]] == wanted
    finally:
        for route_id in made:
            api.ok("DelOutboundRoute", route_id=route_id)


def test_reorder_outbound_routes_errors(api: Api) -> None:
    made = [api.ok("AddOutboundRoute", route_name=unique("order"), pattern=r"9\d+", line="itsp")["route_id"]
            for _ in range(2)]
    everything = [r["route_id"] for r in api.ok("GetOutboundRoutes")["result"]]
    api.fails("ReorderOutboundRoutes", 400, ERR_PARAMETER)
    api.fails("ReorderOutboundRoutes", 400, ERR_PARAMETER, route_id=everything[:-1])  # every route
    api.fails("ReorderOutboundRoutes", 400, ERR_PARAMETER, route_id=[*everything, everything[0]])
    api.fails("ReorderOutboundRoutes", 400, ERR_PARAMETER, route_id=[*everything, MISSING_ID])
    api.fails("ReorderOutboundRoutes", 400, ERR_PARAMETER, route_id="1;x")
    assert [r["route_id"] for r in api.ok("GetOutboundRoutes")["result"]] == everything
    for route_id in made:
        api.ok("DelOutboundRoute", route_id=route_id)


def test_outbound_route_errors(api: Api) -> None:
    name = unique("route")
    route_id = api.ok("AddOutboundRoute", route_name=name, pattern=r"9\d+", line="itsp")["route_id"]
    base = {"route_name": unique("r"), "pattern": r"9\d+", "line": "itsp"}
    for missing in ("route_name", "pattern", "line"):
        api.fails("AddOutboundRoute", 400, ERR_PARAMETER, **{k: v for k, v in base.items() if k != missing})
    refused: list[dict[str, object]] = [
        {"route_name": "bad name"}, {"route_name": "-dash"}, {"pattern": "("}, {"line": "bad line"},
        {"strip_digits": "-1"}, {"strip_digits": "x"}, {"max_concurrent": "-1"}, {"max_concurrent": "1001"},
        {"prepend": "0a"}, {"callerid_policy": "random"}, {"callerid_policy": "fixed"},
        {"international": "2"}, {"enabled": "maybe"},
    ]
    for change in refused:
        api.fails("AddOutboundRoute", 400, ERR_PARAMETER, **{**base, **change})
    api.fails("AddOutboundRoute", 409, ERR_EXISTS, **{**base, "route_name": name})

    api.fails("SetOutboundRouteInfo", 400, ERR_PARAMETER, pattern="1")
    api.fails("SetOutboundRouteInfo", 400, ERR_PARAMETER, route_id=route_id, route_name=name, pattern="1")
    api.fails("SetOutboundRouteInfo", 404, ERR_NOT_FOUND, route_id=MISSING_ID, pattern="1")
    api.fails("SetOutboundRouteInfo", 404, ERR_NOT_FOUND, route_name=unique("nope"), pattern="1")
    for change in refused[2:]:
        api.fails("SetOutboundRouteInfo", 400, ERR_PARAMETER, route_id=route_id, **change)
    api.fails("SetOutboundRouteInfo", 400, ERR_PARAMETER, route_id=route_id, new_route_name="bad name")
    other = unique("other")
    api.ok("AddOutboundRoute", route_name=other, pattern="1", line="itsp")
    api.fails("SetOutboundRouteInfo", 409, ERR_EXISTS, route_id=route_id, new_route_name=other)
    route = routes(api)[name]
    assert (route["pattern"], route["line"], route["callerid_policy"]) == (r"9\d+", "itsp", "pass")

    api.fails("DelOutboundRoute", 400, ERR_PARAMETER)
    api.fails("DelOutboundRoute", 400, ERR_PARAMETER, route_id=route_id, route_name=name)
    api.fails("DelOutboundRoute", 404, ERR_NOT_FOUND, route_name=unique("nope"))
    for route_name in (name, other):
        api.ok("DelOutboundRoute", route_name=route_name)


def test_outbound_routes_change_what_a_scenario_call_meets(api: Api) -> None:
    """callPSTN: no route is 404; a route to a line the box does not have is 503, so the route was used."""
    app_id, _ = api.application()
    scenario_id, _ = api.scenario("""\
VoxEngine.addEventListener(AppEvents.Started, () => {
  const call = VoxEngine.callPSTN(VoxEngine.customData(), "5550000");
  call.addEventListener(CallEvents.Failed, (f) => { Logger.write("outcome " + f.code); VoxEngine.terminate(); });
  call.addEventListener(CallEvents.Connected, () => { Logger.write("outcome connected"); VoxEngine.terminate(); });
});
""")
    rule_id, _ = api.rule(app_id, scenario_id=scenario_id)
    digits = str(abs(hash(unique("n"))) % 10**6).zfill(6)
    local, international = f"7{digits}", f"+7{digits}"

    def outcome(number: str) -> str:
        session_id, _ = api.start(rule_id, number)
        api.wait_ended(session_id)
        log = str(api.ok("GetSessionLog", call_session_history_id=session_id)["result"])
        found = [line.split("outcome ", 1)[1] for line in log.splitlines() if " outcome " in line]
        assert len(found) == 1, log
        return found[0]

    assert (outcome(local), outcome(international)) == ("404", "404")
    name = unique("route")
    route_id = api.ok("AddOutboundRoute", route_name=name, pattern=rf"\+?7{digits}",
                      line=unique("absent"))["route_id"]
    # The route is used for the local number; an international one needs a route that allows it.
    assert (outcome(local), outcome(international)) == ("503", "403")
    api.ok("SetOutboundRouteInfo", route_id=route_id, international=True)
    assert (outcome(local), outcome(international)) == ("503", "503")
    api.ok("SetOutboundRouteInfo", route_id=route_id, enabled=False)
    assert outcome(local) == "404"
    api.ok("SetOutboundRouteInfo", route_id=route_id, enabled=True)
    api.ok("DelOutboundRoute", route_id=route_id)
    assert outcome(local) == "404"
