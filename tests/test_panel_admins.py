"""The panel's users through the management API: AddAdminUser, GetAdminUsers, SetAdminUserInfo, DelAdminUser
(the panel's own pages use the same methods; its sign-in, roles and security are in test_panel_security.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import ERR_EXISTS, ERR_NOT_FOUND, ERR_PARAMETER, Api, api_daemon, unique
from daemon_helpers import Daemon
from panel_helpers import client, csrf_of, sign_in


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("admins")) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    c = Api(daemon)
    yield c
    c.close()


def test_add_get_set_and_delete(api: Api, daemon: Daemon) -> None:
    name = unique("op")
    user_id = api.ok("AddAdminUser", new_admin_user_name=name, new_admin_user_password="long enough pass",
                     admin_role="operator", admin_user_display_name="Night shift")["admin_user_id"]
    [user] = api.ok("GetAdminUsers", required_admin_user_id=user_id)["result"]
    assert (user["admin_user_name"], user["admin_role"], user["admin_user_display_name"], user["admin_user_active"]) \
        == (name, "operator", "Night shift", True)
    assert "password" not in str(user).lower()
    sign_in(daemon, name, "long enough pass").close()  # the new user signs in to the panel

    api.ok("SetAdminUserInfo", required_admin_user_name=name, admin_role="read-only",
           new_admin_user_password="another long one")
    [user] = api.ok("GetAdminUsers", required_admin_user_name=name)["result"]
    assert user["admin_role"] == "read-only"
    sign_in(daemon, name, "another long one").close()
    api.ok("SetAdminUserInfo", required_admin_user_id=user_id, admin_user_active=False)
    http = client(daemon)  # a disabled user cannot sign in
    reply = http.post("/login", data={"csrf": csrf_of(http.get("/login").text), "name": name,
                                      "password": "another long one"})
    assert reply.status_code == 401
    http.close()

    api.ok("DelAdminUser", required_admin_user_id=user_id)
    assert api.ok("GetAdminUsers", required_admin_user_id=user_id)["result"] == []
    api.fails("DelAdminUser", 404, ERR_NOT_FOUND, required_admin_user_id=user_id)


def test_bad_input(api: Api) -> None:
    name = unique("adm")
    assert "at least 10" in api.fails("AddAdminUser", 400, ERR_PARAMETER, new_admin_user_name=name,
                                      new_admin_user_password="short")
    assert "admin_role" in api.fails("AddAdminUser", 400, ERR_PARAMETER, new_admin_user_name=name,
                                     new_admin_user_password="long enough pass", admin_role="root")
    api.fails("AddAdminUser", 400, ERR_PARAMETER, new_admin_user_name="<b>x</b>",
              new_admin_user_password="long enough pass")
    api.fails("AddAdminUser", 400, ERR_PARAMETER, new_admin_user_password="long enough pass")
    api.ok("AddAdminUser", new_admin_user_name=name, new_admin_user_password="long enough pass")
    api.fails("AddAdminUser", 409, ERR_EXISTS, new_admin_user_name=name, new_admin_user_password="long enough pass")
    api.fails("SetAdminUserInfo", 400, ERR_PARAMETER, required_admin_user_name=name, new_admin_user_name="other")
    api.fails("SetAdminUserInfo", 404, ERR_NOT_FOUND, required_admin_user_name=unique("nobody"))


def test_the_last_active_admin_stays(api: Api) -> None:
    admins = [u for u in api.ok("GetAdminUsers", count=1000)["result"] if u["admin_role"] == "admin"]
    for user in admins:  # whatever other tests left: one admin of our own, then only it
        if user["admin_user_active"]:
            api.ok("SetAdminUserInfo", required_admin_user_id=user["admin_user_id"], admin_role="read-only")
    name = unique("boss")
    boss = api.ok("AddAdminUser", new_admin_user_name=name, new_admin_user_password="long enough pass",
                  admin_role="admin")["admin_user_id"]
    for attempt in ({"admin_role": "operator"}, {"admin_user_active": False}):
        assert "at least one active admin" in api.fails("SetAdminUserInfo", 400, ERR_PARAMETER,
                                                        required_admin_user_id=boss, **attempt)
    assert "at least one active admin" in api.fails("DelAdminUser", 400, ERR_PARAMETER, required_admin_user_id=boss)
