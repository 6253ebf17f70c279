"""Management API, what the box runs: applications, scenarios, rules, their bindings and order, and
StartScenarios, against the real daemon. Results are read back through the API, and where it matters
proven by effect: the session a rule starts answers what its scenarios return, in their order, and a
call goes to the first rule (in the application's order) matching its destination.

One daemon serves this module (DelScenario 'all' gets one of its own); every test names its own objects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import (
    DATE_RE,
    ERR_EXISTS,
    ERR_NOT_FOUND,
    ERR_PARAMETER,
    ERR_SCRIPT,
    ERR_UNSUPPORTED,
    Api,
    api_daemon,
    api_date,
    ask_session,
    caller_scenario,
    order_scenario,
    post_url,
    reply_scenario,
    room_scenario,
    unique,
)
from daemon_helpers import Daemon

from appliance.engine.limits import SCENARIO_CHARS

MISSING_ID = 987654


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with api_daemon(tmp_path_factory.mktemp("api-catalog")) as d:
        yield d


@pytest.fixture(scope="module")
def api(daemon: Daemon) -> Iterator[Api]:
    client = Api(daemon)
    yield client
    client.close()


def answers(api: Api, rule_id: int, content: str = "") -> Any:
    """What a new session of the rule answers to one HttpRequest (the session is then stopped)."""
    _, url = api.start(rule_id)
    try:
        return ask_session(url, content)
    finally:
        post_url(url, "stop")


def rule_scenarios(api: Api, rule_id: int) -> list[int]:
    rule = api.ok("GetRules", rule_id=rule_id, with_scenarios=True)["result"][0]
    return [s["scenario_id"] for s in rule["scenarios"]]


# Applications


def test_add_get_set_del_application(api: Api) -> None:
    name = unique("app")
    added = api.ok("AddApplication", application_name=name, secure_record_storage=True)
    app_id = added["application_id"]
    assert added == {"result": 1, "application_id": app_id, "application_name": name,
                     "secure_record_storage": True}
    by_id = api.ok("GetApplications", application_id=app_id)
    assert by_id["total_count"] == 1
    info = by_id["result"][0]
    assert set(info) == {"application_id", "application_name", "modified", "secure_record_storage"}
    assert (info["application_id"], info["application_name"], info["secure_record_storage"]) == (app_id, name, True)
    assert re.fullmatch(DATE_RE, info["modified"])
    assert api.ok("GetApplications", application_name=name)["result"] == [info]

    renamed = unique("renamed")
    api.ok("SetApplicationInfo", application_id=app_id, application_name=renamed, secure_record_storage=False)
    info = api.ok("GetApplications", application_id=app_id)["result"][0]
    assert (info["application_name"], info["secure_record_storage"]) == (renamed, False)
    assert api.ok("GetApplications", application_name=name)["total_count"] == 0
    # Voximplant's other way to name the application to change: required_application_name.
    api.ok("SetApplicationInfo", required_application_name=renamed, secure_record_storage=True)
    assert api.ok("GetApplications", application_id=app_id)["result"][0]["secure_record_storage"] is True
    api.ok("SetApplicationInfo", required_application_name=renamed, application_name=name)
    assert api.ok("GetApplications", application_id=app_id)["result"][0]["application_name"] == name

    assert api.ok("DelApplication", application_name=name)["result"] == 1
    assert api.ok("GetApplications", application_id=app_id)["total_count"] == 0
    api.fails("DelApplication", 404, ERR_NOT_FOUND, application_id=app_id)


def test_application_errors(api: Api) -> None:
    app_id, name = api.application()
    _, other = api.application()
    for bad in ("", "has space", "-leading-dash", "x" * 201, "semi;colon", "ünïcode"):
        api.fails("AddApplication", 400, ERR_PARAMETER, application_name=bad)
    api.fails("AddApplication", 400, ERR_PARAMETER)
    api.fails("AddApplication", 409, ERR_EXISTS, application_name=name)
    api.fails("AddApplication", 400, ERR_PARAMETER, application_name=unique("b"), secure_record_storage="maybe")
    api.fails("GetApplications", 400, ERR_PARAMETER, application_id=app_id, application_name=name)
    api.fails("GetApplications", 400, ERR_PARAMETER, application_id="one")
    api.fails("GetApplications", 400, ERR_PARAMETER, with_rules="sometimes")
    api.fails("SetApplicationInfo", 400, ERR_PARAMETER, application_name="x")  # which one?
    api.fails("SetApplicationInfo", 400, ERR_PARAMETER, application_id=app_id, required_application_name=name)
    api.fails("SetApplicationInfo", 404, ERR_NOT_FOUND, application_id=MISSING_ID, application_name=unique("n"))
    api.fails("SetApplicationInfo", 404, ERR_NOT_FOUND, required_application_name=unique("n"), application_name="x")
    api.fails("SetApplicationInfo", 409, ERR_EXISTS, application_id=app_id, application_name=other)
    api.fails("SetApplicationInfo", 400, ERR_PARAMETER, application_id=app_id, application_name="bad name")
    api.fails("SetApplicationInfo", 400, ERR_PARAMETER, application_id=app_id, secure_record_storage="2")
    api.fails("DelApplication", 400, ERR_PARAMETER)
    api.fails("DelApplication", 400, ERR_PARAMETER, application_id=app_id, application_name=name)
    api.fails("DelApplication", 404, ERR_NOT_FOUND, application_name=unique("nope"))
    api.fails("DelApplication", 404, ERR_NOT_FOUND, application_id=MISSING_ID)
    # Nothing changed.
    info = api.ok("GetApplications", application_id=app_id)["result"][0]
    assert (info["application_name"], info["secure_record_storage"]) == (name, False)
    # A listing filtered by an application that does not exist is empty (as Voximplant's).
    assert api.ok("GetApplications", application_name=unique("nope"))["total_count"] == 0
    assert api.ok("GetApplications", application_id=MISSING_ID)["result"] == []


def test_get_applications_pages(api: Api) -> None:
    for _ in range(3):
        api.application("paged")
    everything = api.ok("GetApplications", count=1000)
    total = everything["total_count"]
    assert total == len(everything["result"]) >= 3
    ids = [a["application_id"] for a in everything["result"]]
    assert ids == sorted(ids)
    assert len(api.ok("GetApplications")["result"]) == min(total, 20)  # Voximplant's default count
    pages = [api.ok("GetApplications", count=2, offset=offset) for offset in range(0, total, 2)]
    assert [a["application_id"] for page in pages for a in page["result"]] == ids
    assert {(p["total_count"], p["offset"]) for p in pages} == {(total, o) for o in range(0, total, 2)}
    assert api.ok("GetApplications", offset=total + 5)["result"] == []
    for bad in ({"count": "0"}, {"count": "1001"}, {"count": "-3"}, {"offset": "-1"}, {"offset": "x"}):
        api.fails("GetApplications", 400, ERR_PARAMETER, **bad)


def test_get_applications_with_rules_and_scenarios(api: Api) -> None:
    app_id, _ = api.application()
    s1, s1_name = api.scenario("// one")
    s2, s2_name = api.scenario("// two")
    r1, r1_name = api.rule(app_id, "1.*", scenario_id=[s1, s2])
    r2, r2_name = api.rule(app_id, "2.*")
    plain = api.ok("GetApplications", application_id=app_id)["result"][0]
    assert "rules" not in plain
    info = api.ok("GetApplications", application_id=app_id, with_rules=True)["result"][0]
    assert [(r["rule_id"], r["rule_name"], r["rule_pattern"]) for r in info["rules"]] == [
        (r1, r1_name, "1.*"), (r2, r2_name, "2.*")]
    assert all("scenarios" not in r for r in info["rules"])
    info = api.ok("GetApplications", application_id=app_id, with_rules=True, with_scenarios=True)["result"][0]
    assert [[(s["scenario_id"], s["scenario_name"]) for s in r["scenarios"]] for r in info["rules"]] == [
        [(s1, s1_name), (s2, s2_name)], []]


def test_del_application_takes_its_rules_not_the_scenarios(api: Api) -> None:
    app_id, name = api.application()
    scenario_id, _ = api.scenario(reply_scenario("alive"))
    rule_id, rule_name = api.rule(app_id, scenario_id=scenario_id)
    assert answers(api, rule_id) == "alive"
    api.ok("DelApplication", application_id=app_id)
    assert api.ok("GetRules", rule_id=rule_id)["total_count"] == 0
    api.fails("StartScenarios", 404, ERR_NOT_FOUND, rule_id=rule_id)
    api.fails("StartScenarios", 404, ERR_NOT_FOUND, rule_name=rule_name)
    assert api.ok("GetScenarios", scenario_id=scenario_id)["total_count"] == 1
    # The name is free again.
    api.ok("AddApplication", application_name=name)


# Scenarios


def test_add_get_set_del_scenario(api: Api) -> None:
    app_id, _ = api.application()
    rule_id, _ = api.rule(app_id)
    name = unique("scn")
    script = reply_scenario("first")
    scenario_id = api.ok("AddScenario", scenario_name=name, scenario_script=script, rule_id=rule_id)["scenario_id"]
    assert isinstance(scenario_id, int)
    assert rule_scenarios(api, rule_id) == [scenario_id]  # AddScenario with a rule binds it
    assert answers(api, rule_id) == "first"

    listed = api.ok("GetScenarios", scenario_id=scenario_id)
    assert listed["total_count"] == 1
    info = listed["result"][0]
    assert set(info) == {"scenario_id", "scenario_name", "modified"}  # no script unless asked
    assert info["scenario_name"] == name and re.fullmatch(DATE_RE, info["modified"])
    with_script = api.ok("GetScenarios", scenario_name=name, with_script=True)["result"]
    assert with_script == [{**info, "scenario_script": script}]

    renamed = unique("renamed")
    api.ok("SetScenarioInfo", scenario_id=scenario_id, scenario_name=renamed, scenario_script=reply_scenario("2nd"))
    info = api.ok("GetScenarios", scenario_id=scenario_id, with_script=True)["result"][0]
    assert (info["scenario_name"], info["scenario_script"]) == (renamed, reply_scenario("2nd"))
    assert answers(api, rule_id) == "2nd"  # the running box took the new script
    api.ok("SetScenarioInfo", required_scenario_name=renamed, scenario_script=reply_scenario("third"))
    assert answers(api, rule_id) == "third"
    assert api.ok("GetScenarios", scenario_id=scenario_id)["result"][0]["scenario_name"] == renamed

    assert api.ok("DelScenario", scenario_id=scenario_id)["result"] == 1
    assert api.ok("GetScenarios", scenario_id=scenario_id)["total_count"] == 0
    assert rule_scenarios(api, rule_id) == []
    api.fails("DelScenario", 404, ERR_NOT_FOUND, scenario_id=scenario_id)


def test_add_scenario_rewrite(api: Api) -> None:
    scenario_id, name = api.scenario("// v1")
    api.fails("AddScenario", 409, ERR_EXISTS, scenario_name=name, scenario_script="// v2")
    api.fails("AddScenario", 409, ERR_EXISTS, scenario_name=name, scenario_script="// v2", rewrite=False)
    again = api.ok("AddScenario", scenario_name=name, scenario_script="// v2", rewrite=True)
    assert again["scenario_id"] == scenario_id
    assert api.ok("GetScenarios", scenario_name=name, with_script=True)["result"][0]["scenario_script"] == "// v2"
    # rewrite of a new name simply adds it.
    fresh = unique("fresh")
    assert api.ok("AddScenario", scenario_name=fresh, scenario_script="// new", rewrite=True)["scenario_id"] > 0


def test_get_scenarios_filters_and_pages(api: Api) -> None:
    app_id, app_name = api.application()
    own, _ = api.scenario("// of the application", application_id=app_id)
    bound, _ = api.scenario("// bound to a rule of the application")
    api.rule(app_id, scenario_id=bound)
    _, _ = api.scenario("// elsewhere")
    of_app = api.ok("GetScenarios", application_id=app_id)
    assert [s["scenario_id"] for s in of_app["result"]] == [own, bound] and of_app["total_count"] == 2
    assert api.ok("GetScenarios", application_name=app_name)["result"] == of_app["result"]
    assert api.ok("GetScenarios", application_name=unique("nope"))["total_count"] == 0
    assert api.ok("GetScenarios", scenario_name=unique("nope"))["total_count"] == 0
    assert api.ok("GetScenarios", scenario_id=MISSING_ID)["total_count"] == 0

    everything = api.ok("GetScenarios", count=1000)
    total = everything["total_count"]
    ids = [s["scenario_id"] for s in everything["result"]]
    assert total == len(ids) >= 3 and ids == sorted(ids)
    pages = [api.ok("GetScenarios", count=3, offset=offset) for offset in range(0, total, 3)]
    assert [s["scenario_id"] for p in pages for s in p["result"]] == ids
    assert all(p["total_count"] == total for p in pages)
    for bad in ({"count": "0"}, {"count": "1001"}, {"offset": "-1"}, {"scenario_id": "x"},
                {"with_script": "yes please"}, {"application_id": app_id, "application_name": app_name}):
        api.fails("GetScenarios", 400, ERR_PARAMETER, **bad)


def test_a_scenario_that_does_not_compile_is_refused_with_file_and_line(api: Api) -> None:
    name = unique("broken")
    bad = "// fine\nconst x = 1;\nlet y = ;\n"
    msg = api.fails("AddScenario", 400, ERR_SCRIPT, scenario_name=name, scenario_script=bad)
    assert re.search(rf"{re.escape(name)}\.js:3\b", msg), msg
    assert "SyntaxError" in msg
    assert api.ok("GetScenarios", scenario_name=name)["total_count"] == 0
    # A change to a broken script is refused and the old one kept.
    scenario_id, good_name = api.scenario(reply_scenario("kept"))
    msg = api.fails("SetScenarioInfo", 400, ERR_SCRIPT, scenario_id=scenario_id, scenario_script="function (")
    assert re.search(rf"{re.escape(good_name)}\.js:1\b", msg), msg
    info = api.ok("GetScenarios", scenario_id=scenario_id, with_script=True)["result"][0]
    assert info["scenario_script"] == reply_scenario("kept")
    # rewrite too.
    api.fails("AddScenario", 400, ERR_SCRIPT, scenario_name=good_name, scenario_script="}", rewrite=True)
    assert api.ok("GetScenarios", scenario_id=scenario_id, with_script=True)["result"][0]["scenario_script"] == (
        reply_scenario("kept"))


def test_scenario_size_limit(api: Api) -> None:
    at_limit = "//" + "x" * (SCENARIO_CHARS - 2)
    scenario_id, _ = api.scenario(at_limit)
    assert len(api.ok("GetScenarios", scenario_id=scenario_id, with_script=True)["result"][0]["scenario_script"]) == (
        SCENARIO_CHARS)
    api.fails("AddScenario", 400, ERR_PARAMETER, scenario_name=unique("big"), scenario_script=at_limit + "x")
    api.fails("SetScenarioInfo", 400, ERR_PARAMETER, scenario_id=scenario_id, scenario_script=at_limit + "x")


def test_scenario_errors(api: Api) -> None:
    app_id, app_name = api.application()
    scenario_id, name = api.scenario("// s")
    _, other = api.scenario("// other")
    for bad_name in ("", "has space", "x" * 101, "slash/name", "-dash"):
        api.fails("AddScenario", 400, ERR_PARAMETER, scenario_name=bad_name, scenario_script="// x")
    api.fails("AddScenario", 400, ERR_PARAMETER, scenario_script="// x")
    api.fails("AddScenario", 400, ERR_PARAMETER, scenario_name=unique("s"))
    api.fails("AddScenario", 404, ERR_NOT_FOUND, scenario_name=unique("s"), scenario_script="//",
              application_id=MISSING_ID)
    api.fails("AddScenario", 404, ERR_NOT_FOUND, scenario_name=unique("s"), scenario_script="//",
              application_name=unique("nope"))
    api.fails("AddScenario", 400, ERR_PARAMETER, scenario_name=unique("s"), scenario_script="//",
              application_id=app_id, application_name=app_name)
    api.fails("AddScenario", 404, ERR_NOT_FOUND, scenario_name=unique("s"), scenario_script="//", rule_id=MISSING_ID)
    api.fails("AddScenario", 404, ERR_NOT_FOUND, scenario_name=unique("s"), scenario_script="//",
              rule_name=unique("nope"), application_id=app_id)
    api.fails("AddScenario", 400, ERR_PARAMETER, scenario_name=name, scenario_script="//", rewrite="often")

    api.fails("SetScenarioInfo", 400, ERR_PARAMETER, scenario_script="// x")
    api.fails("SetScenarioInfo", 400, ERR_PARAMETER, scenario_id=scenario_id, required_scenario_name=name)
    api.fails("SetScenarioInfo", 404, ERR_NOT_FOUND, scenario_id=MISSING_ID, scenario_script="//")
    api.fails("SetScenarioInfo", 404, ERR_NOT_FOUND, required_scenario_name=unique("nope"), scenario_script="//")
    api.fails("SetScenarioInfo", 409, ERR_EXISTS, scenario_id=scenario_id, scenario_name=other)
    api.fails("SetScenarioInfo", 400, ERR_PARAMETER, scenario_id=scenario_id, scenario_name="bad name")
    api.fails("SetScenarioInfo", 400, ERR_PARAMETER, scenario_id="x", scenario_script="//")

    api.fails("DelScenario", 400, ERR_PARAMETER)
    api.fails("DelScenario", 400, ERR_PARAMETER, scenario_id=scenario_id, scenario_name=name)
    api.fails("DelScenario", 404, ERR_NOT_FOUND, scenario_id=MISSING_ID)
    api.fails("DelScenario", 404, ERR_NOT_FOUND, scenario_name=unique("nope"))
    api.fails("DelScenario", 400, ERR_PARAMETER, scenario_id="1;;2")
    api.fails("DelScenario", 400, ERR_PARAMETER, scenario_id="one")
    # One unknown id in a list deletes none of them.
    api.fails("DelScenario", 404, ERR_NOT_FOUND, scenario_id=[scenario_id, MISSING_ID])
    assert api.ok("GetScenarios", scenario_id=scenario_id, with_script=True)["result"][0]["scenario_script"] == "// s"


def test_add_scenario_checks_rewrite_for_a_new_name_too(api: Api) -> None:
    name = unique("s")
    try:
        api.fails("AddScenario", 400, ERR_PARAMETER, scenario_name=name, scenario_script="//", rewrite="often")
    finally:
        assert api.ok("GetScenarios", scenario_name=name)["total_count"] == 0


def test_del_scenario_lists(api: Api) -> None:
    ids = [api.scenario("// d")[0] for _ in range(2)]
    names = [api.scenario("// d")[1] for _ in range(2)]
    api.ok("DelScenario", scenario_id=ids)
    api.ok("DelScenario", scenario_name=names)
    for scenario_id in ids:
        assert api.ok("GetScenarios", scenario_id=scenario_id)["total_count"] == 0
    for name in names:
        assert api.ok("GetScenarios", scenario_name=name)["total_count"] == 0


def test_del_scenario_all(tmp_path_factory: pytest.TempPathFactory) -> None:
    """'all' deletes every scenario of the box: on a daemon of its own."""
    with api_daemon(tmp_path_factory.mktemp("api-delall")) as daemon:
        api = Api(daemon)
        try:
            app_id, _ = api.application()
            for how in ("scenario_id", "scenario_name"):
                ids = [api.scenario(f"// {n}")[0] for n in range(3)]
                rule_id, _ = api.rule(app_id, scenario_id=ids[:2])
                assert api.ok("GetScenarios")["total_count"] == 3
                api.ok("DelScenario", **{how: "all"})
                assert api.ok("GetScenarios")["total_count"] == 0
                assert rule_scenarios(api, rule_id) == []
                api.ok("DelScenario", **{how: "all"})  # nothing left: still fine
        finally:
            api.close()


# Rules


def test_add_get_set_del_rule(api: Api) -> None:
    app_id, app_name = api.application()
    scenario_id, scenario_name = api.scenario(reply_scenario("ruled"))
    name = unique("rule")
    rule_id = api.ok("AddRule", application_name=app_name, rule_name=name, rule_pattern=r"\+?1\d+",
                     rule_pattern_exclude="19.*", video_conference=True, scenario_name=scenario_name)["rule_id"]
    info = api.ok("GetRules", rule_id=rule_id, with_scenarios=True)["result"][0]
    assert {k: v for k, v in info.items() if k != "modified"} == {
        "rule_id": rule_id, "application_id": app_id, "rule_name": name, "rule_pattern": r"\+?1\d+",
        "rule_pattern_exclude": "19.*", "video_conference": True,
        "scenarios": [{"scenario_id": scenario_id, "scenario_name": scenario_name,
                       "modified": info["scenarios"][0]["modified"]}]}
    assert re.fullmatch(DATE_RE, info["modified"])
    assert answers(api, rule_id) == "ruled"

    api.ok("SetRuleInfo", rule_id=rule_id, rule_pattern="2.*", rule_pattern_exclude="", video_conference=False)
    info = api.ok("GetRules", rule_id=rule_id)["result"][0]
    assert (info["rule_pattern"], info["rule_pattern_exclude"], info["video_conference"]) == ("2.*", "", False)
    assert info["rule_name"] == name
    assert rule_scenarios(api, rule_id) == [scenario_id]  # SetRuleInfo leaves the scenarios alone

    api.ok("DelRule", rule_id=rule_id)
    assert api.ok("GetRules", rule_id=rule_id)["total_count"] == 0
    api.fails("StartScenarios", 404, ERR_NOT_FOUND, rule_id=rule_id)
    api.fails("DelRule", 404, ERR_NOT_FOUND, rule_id=rule_id)


def test_set_rule_info_renames_the_rule(api: Api) -> None:
    """SetRuleInfo's rule_name is the new name (Voximplant's, and the official client's set_rule_info)."""
    app_id, _ = api.application()
    rule_id, _ = api.rule(app_id)
    new_name = unique("renamed")
    api.ok("SetRuleInfo", rule_id=rule_id, rule_name=new_name)
    assert api.ok("GetRules", rule_id=rule_id)["result"][0]["rule_name"] == new_name


def test_get_rules_filters_and_pages(api: Api) -> None:
    app_id, app_name = api.application()
    other_app, _ = api.application()
    r1, n1 = api.rule(app_id, "100.*")
    r2, n2 = api.rule(app_id, "200.*", video_conference=True)
    r3, _ = api.rule(app_id, "300.*")
    elsewhere, _ = api.rule(other_app, "100.*", prefix="rule")

    def ids(**params: object) -> list[int]:
        return [r["rule_id"] for r in api.ok("GetRules", **params)["result"]]

    assert ids(application_id=app_id) == [r1, r2, r3]
    assert ids(application_name=app_name) == [r1, r2, r3]
    assert ids(application_id=app_id, rule_name=n2) == [r2]
    assert ids(rule_name=n1) == [r1]
    assert ids(application_id=app_id, rule_id=r3) == [r3]
    assert ids(application_id=app_id, template="00.*") == [r1, r2, r3]
    assert ids(application_id=app_id, template="100") == [r1]
    assert ids(application_id=app_id, video_conference=True) == [r2]
    assert ids(application_id=app_id, video_conference=False) == [r1, r3]
    assert elsewhere in ids(template="100.*")
    assert ids(application_id=app_id, rule_id=elsewhere) == []
    assert ids(application_id=MISSING_ID) == []
    page = api.ok("GetRules", application_id=app_id, count=2, offset=1)
    assert [r["rule_id"] for r in page["result"]] == [r2, r3]
    assert (page["total_count"], page["count"], page["offset"]) == (3, 2, 1)
    assert "scenarios" not in page["result"][0]
    for bad in ({"count": "0"}, {"offset": "-2"}, {"rule_id": "x"}, {"video_conference": "2"},
                {"application_id": app_id, "application_name": app_name}):
        api.fails("GetRules", 400, ERR_PARAMETER, **bad)


def test_rule_errors(api: Api) -> None:
    app_id, app_name = api.application()
    rule_id, rule_name = api.rule(app_id)
    base = {"application_id": app_id, "rule_pattern": ".*"}
    api.fails("AddRule", 400, ERR_PARAMETER, rule_name=unique("r"), rule_pattern=".*")  # no application
    api.fails("AddRule", 400, ERR_PARAMETER, rule_name=unique("r"), rule_pattern=".*", application_id=app_id,
              application_name=app_name)
    api.fails("AddRule", 404, ERR_NOT_FOUND, rule_name=unique("r"), rule_pattern=".*", application_id=MISSING_ID)
    api.fails("AddRule", 400, ERR_PARAMETER, **base)
    api.fails("AddRule", 400, ERR_PARAMETER, application_id=app_id, rule_name=unique("r"))
    api.fails("AddRule", 400, ERR_PARAMETER, **base, rule_name="x" * 101)
    api.fails("AddRule", 400, ERR_PARAMETER, application_id=app_id, rule_name=unique("r"), rule_pattern="(")
    api.fails("AddRule", 400, ERR_PARAMETER, application_id=app_id, rule_name=unique("r"), rule_pattern="x" * 1001)
    api.fails("AddRule", 400, ERR_PARAMETER, **base, rule_name=unique("r"), rule_pattern_exclude="[")
    api.fails("AddRule", 400, ERR_PARAMETER, **base, rule_name=unique("r"), video_conference="kind of")
    api.fails("AddRule", 409, ERR_EXISTS, **base, rule_name=rule_name)
    api.fails("AddRule", 400, ERR_UNSUPPORTED, **base, rule_name=unique("r"), bind_key_id="k")
    api.fails("AddRule", 404, ERR_NOT_FOUND, **base, rule_name=unique("r"), scenario_id=MISSING_ID)
    api.fails("AddRule", 404, ERR_NOT_FOUND, **base, rule_name=unique("r"), scenario_name=unique("nope"))
    # The same name in another application is fine.
    other_app, _ = api.application()
    api.ok("AddRule", application_id=other_app, rule_name=rule_name, rule_pattern=".*")

    api.fails("SetRuleInfo", 400, ERR_PARAMETER, rule_pattern="x")
    api.fails("SetRuleInfo", 400, ERR_PARAMETER, rule_id="x", rule_pattern="x")
    api.fails("SetRuleInfo", 404, ERR_NOT_FOUND, rule_id=MISSING_ID, rule_pattern="x")
    api.fails("SetRuleInfo", 400, ERR_PARAMETER, rule_id=rule_id, rule_pattern="(")
    api.fails("SetRuleInfo", 400, ERR_PARAMETER, rule_id=rule_id, video_conference="2")
    api.fails("SetRuleInfo", 400, ERR_UNSUPPORTED, rule_id=rule_id, bind_key_id="k")
    assert api.ok("GetRules", rule_id=rule_id)["result"][0]["rule_pattern"] == ".*"

    api.fails("DelRule", 400, ERR_PARAMETER)
    api.fails("DelRule", 404, ERR_NOT_FOUND, rule_id=MISSING_ID)
    api.fails("DelRule", 404, ERR_NOT_FOUND, rule_name=unique("nope"), application_id=app_id)
    api.fails("DelRule", 400, ERR_PARAMETER, rule_id=rule_id, rule_name=rule_name)
    api.fails("DelRule", 400, ERR_PARAMETER, rule_name=rule_name)  # two applications have one: which?
    api.fails("DelRule", 404, ERR_NOT_FOUND, rule_id=rule_id, application_id=other_app)  # not its rule
    api.fails("DelRule", 404, ERR_NOT_FOUND, rule_id=[rule_id, MISSING_ID])
    assert api.ok("GetRules", rule_id=rule_id)["total_count"] == 1


def test_del_rule_by_name_and_by_list(api: Api) -> None:
    app_id, app_name = api.application()
    _, name = api.rule(app_id)
    ids = [api.rule(app_id)[0] for _ in range(2)]
    kept, _ = api.rule(app_id)
    api.ok("DelRule", rule_name=name, application_name=app_name)
    api.ok("DelRule", rule_id=ids)
    assert [r["rule_id"] for r in api.ok("GetRules", application_id=app_id)["result"]] == [kept]


def test_reorder_rules_changes_which_rule_a_call_reaches(api: Api) -> None:
    """Two rules match the conference id: a call to it runs the first of them in the application's order."""
    app_id, _ = api.application()
    room = unique("room")
    caller, _ = api.scenario(caller_scenario(room, hold_ms=100))
    first, _ = api.scenario(room_scenario("first"))
    start_rule, _ = api.rule(app_id, "^never-dialled$", scenario_id=caller)
    r1, n1 = api.rule(app_id, room, scenario_id=first)
    r2, n2 = api.rule(app_id, "room-.*", scenario_id=first)

    def room_rule() -> str:
        session_id, _ = api.start(start_rule, "caller")
        api.wait_ended(session_id)
        now = time.time()
        rooms = api.ok("GetCallHistory", from_date=api_date(now - 60), to_date=api_date(now + 60),
                       application_id=app_id, desc_order=True, count=1,
                       call_session_history_custom_data="")["result"]
        assert rooms and rooms[0]["initiator_address"] == f"conference {room}", rooms
        return str(rooms[0]["rule_name"])

    assert room_rule() == n1
    api.ok("ReorderRules", rule_id=[r2, start_rule, r1])
    assert [r["rule_id"] for r in api.ok("GetRules", application_id=app_id)["result"]] == [r2, start_rule, r1]
    assert room_rule() == n2
    api.ok("ReorderRules", rule_id=[start_rule, r1, r2])
    assert [r["rule_id"] for r in api.ok("GetRules", application_id=app_id)["result"]] == [start_rule, r1, r2]
    assert room_rule() == n1


def test_reorder_rules_errors(api: Api) -> None:
    app_id, _ = api.application()
    r1, _ = api.rule(app_id)
    r2, _ = api.rule(app_id)
    other_app, _ = api.application()
    foreign, _ = api.rule(other_app)
    api.fails("ReorderRules", 400, ERR_PARAMETER)
    api.fails("ReorderRules", 400, ERR_PARAMETER, rule_id="x;y")
    api.fails("ReorderRules", 400, ERR_PARAMETER, rule_id=[r2])  # every rule of the application
    api.fails("ReorderRules", 400, ERR_PARAMETER, rule_id=[r2, r1, r1])
    api.fails("ReorderRules", 400, ERR_PARAMETER, rule_id=[r2, r1, foreign])
    api.fails("ReorderRules", 404, ERR_NOT_FOUND, rule_id=[MISSING_ID, r1, r2])
    assert [r["rule_id"] for r in api.ok("GetRules", application_id=app_id)["result"]] == [r1, r2]


# Binding and ordering scenarios


def test_bind_scenario_binds_unbinds_and_runs(api: Api) -> None:
    app_id, app_name = api.application()
    rule_id, rule_name = api.rule(app_id)
    s1, n1 = api.scenario(order_scenario("one"))
    s2, n2 = api.scenario(order_scenario("two"))
    api.ok("BindScenario", scenario_id=s1, rule_id=rule_id)  # bind is true unless told
    assert rule_scenarios(api, rule_id) == [s1]
    assert answers(api, rule_id) == ["one"]
    api.ok("BindScenario", scenario_name=[n2, n1], rule_name=rule_name, application_name=app_name, bind=True)
    assert rule_scenarios(api, rule_id) == [s1, s2]  # already bound ones keep their place
    assert answers(api, rule_id) == ["one", "two"]
    api.ok("BindScenario", scenario_id=s1, rule_id=rule_id, application_id=app_id, bind=False)
    assert rule_scenarios(api, rule_id) == [s2]
    assert answers(api, rule_id) == ["two"]
    api.ok("BindScenario", scenario_id=s1, rule_id=rule_id, bind=False)  # not bound: nothing to do
    assert rule_scenarios(api, rule_id) == [s2]


def test_reorder_scenarios_changes_the_order_they_run_in(api: Api) -> None:
    app_id, _ = api.application()
    ids = [api.scenario(order_scenario(tag))[0] for tag in ("a", "b", "c")]
    rule_id, rule_name = api.rule(app_id, scenario_id=ids)
    assert answers(api, rule_id) == ["a", "b", "c"]
    api.ok("ReorderScenarios", rule_id=rule_id, scenario_id=[ids[2], ids[0], ids[1]])
    assert rule_scenarios(api, rule_id) == [ids[2], ids[0], ids[1]]
    assert answers(api, rule_id) == ["c", "a", "b"]
    api.ok("ReorderScenarios", rule_name=rule_name, scenario_id=[ids[1], ids[2], ids[0]])
    assert answers(api, rule_id) == ["b", "c", "a"]


def test_bind_and_reorder_scenario_errors(api: Api) -> None:
    app_id, app_name = api.application()
    rule_id, rule_name = api.rule(app_id)
    other_app, _ = api.application()
    s1, _ = api.scenario("// 1")
    s2, _ = api.scenario("// 2")
    api.ok("BindScenario", scenario_id=[s1, s2], rule_id=rule_id)
    api.fails("BindScenario", 400, ERR_PARAMETER, rule_id=rule_id)
    api.fails("BindScenario", 400, ERR_PARAMETER, scenario_id=s1)
    api.fails("BindScenario", 400, ERR_PARAMETER, scenario_id=s1, scenario_name="x", rule_id=rule_id)
    api.fails("BindScenario", 400, ERR_PARAMETER, scenario_id=s1, rule_id=rule_id, rule_name=rule_name)
    api.fails("BindScenario", 400, ERR_PARAMETER, scenario_id=s1, rule_id=rule_id, bind="maybe")
    api.fails("BindScenario", 404, ERR_NOT_FOUND, scenario_id=MISSING_ID, rule_id=rule_id)
    api.fails("BindScenario", 404, ERR_NOT_FOUND, scenario_name=unique("nope"), rule_id=rule_id)
    api.fails("BindScenario", 404, ERR_NOT_FOUND, scenario_id=s1, rule_id=MISSING_ID)
    api.fails("BindScenario", 404, ERR_NOT_FOUND, scenario_id=s1, rule_name=unique("nope"))
    api.fails("BindScenario", 404, ERR_NOT_FOUND, scenario_id=s1, rule_id=rule_id, application_id=other_app)
    api.fails("BindScenario", 404, ERR_NOT_FOUND, scenario_id=s1, rule_id=rule_id, application_id=MISSING_ID)
    api.fails("BindScenario", 400, ERR_PARAMETER, scenario_id=s1, rule_id=rule_id, application_id=app_id,
              application_name=app_name)

    api.fails("ReorderScenarios", 400, ERR_PARAMETER, rule_id=rule_id)
    api.fails("ReorderScenarios", 400, ERR_PARAMETER, scenario_id=[s2, s1])
    api.fails("ReorderScenarios", 400, ERR_PARAMETER, rule_id=rule_id, scenario_id=[s2])
    api.fails("ReorderScenarios", 400, ERR_PARAMETER, rule_id=rule_id, scenario_id=[s2, s1, s1])
    api.fails("ReorderScenarios", 400, ERR_PARAMETER, rule_id=rule_id, scenario_id="2;x")
    api.fails("ReorderScenarios", 404, ERR_NOT_FOUND, rule_id=MISSING_ID, scenario_id=[s2, s1])
    api.fails("ReorderScenarios", 400, ERR_PARAMETER, rule_id=rule_id, rule_name=rule_name, scenario_id=[s2, s1])
    assert rule_scenarios(api, rule_id) == [s1, s2]


# StartScenarios


def test_start_scenarios_by_rule_name_with_its_application(api: Api) -> None:
    app_id, app_name = api.application()
    other_app, other_name = api.application()
    scenario = api.scenario("""\
VoxEngine.addEventListener(AppEvents.HttpRequest, (e) => {
  if (e.content === "stop") { VoxEngine.terminate(); return "{}"; }
  return JSON.stringify({custom: VoxEngine.customData()});
});
""")[0]
    _, rule_name = api.rule(app_id, scenario_id=scenario)
    api.rule(other_app, scenario_id=scenario, prefix="x")  # another rule name in another application
    body = api.ok("StartScenarios", rule_name=rule_name, application_name=app_name, script_custom_data="hello")
    assert body["media_session_access_secure_url"] == "" and body["media_session_check_url"] == ""
    url = body["media_session_access_url"]
    assert ask_session(url) == {"custom": "hello"}
    post_url(url, "stop")
    entry = api.history(body["call_session_history_id"])
    assert (entry["application_id"], entry["rule_name"], entry["custom_data"]) == (app_id, rule_name, "hello")
    assert entry["initiator_address"] == "StartScenarios from 127.0.0.1"
    # The rule must be the application's.
    api.fails("StartScenarios", 404, ERR_NOT_FOUND, rule_name=rule_name, application_name=other_name)
    api.fails("StartScenarios", 404, ERR_NOT_FOUND, rule_name=rule_name, application_id=MISSING_ID)
    api.fails("StartScenarios", 400, ERR_PARAMETER, rule_name=rule_name, application_id=app_id,
              application_name=app_name)
    api.fails("StartScenarios", 400, ERR_PARAMETER, rule_name=rule_name, rule_id=1)


def test_an_ambiguous_rule_name_is_a_parameter_error_everywhere(api: Api) -> None:
    name = unique("same")
    scenario_id, _ = api.scenario(reply_scenario("either"))
    for _ in range(2):
        app_id, _ = api.application()
        api.ok("AddRule", application_id=app_id, rule_name=name, rule_pattern=".*", scenario_id=scenario_id)
    api.fails("BindScenario", 400, ERR_PARAMETER, rule_name=name, scenario_id=scenario_id)
    api.fails("DelRule", 400, ERR_PARAMETER, rule_name=name)
    api.fails("StartScenarios", 400, ERR_PARAMETER, rule_name=name)
