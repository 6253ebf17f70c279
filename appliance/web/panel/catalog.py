"""Applications, their rules (drag to reorder) and scenarios (editor with a syntax check on save)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aiohttp import web

from appliance.web.api import ERR_SCRIPT, ApiError
from appliance.web.panel.actions import posted
from appliance.web.panel.core import Ctx, page, redirect, set_flash

NEW_SCENARIO = """// A new scenario. VoxEngine reference: https://voximplant.com/docs/references/voxengine
VoxEngine.addEventListener(AppEvents.CallAlerting, (e) => {
  e.call.answer();
  e.call.addEventListener(CallEvents.Connected, () => e.call.say("Hello from VoxGate", VoiceList.Default));
  e.call.addEventListener(CallEvents.Disconnected, () => VoxEngine.terminate());
});
"""
_ERROR_LINE = re.compile(r"^[^:\n]*\.js:(\d+)")


def version_hash(script: str) -> str:
    """A scenario's version as the panel shows it: the start of its text's SHA-256."""
    return hashlib.sha256(script.encode("utf-8")).hexdigest()[:12]


@page
async def applications(ctx: Ctx) -> web.StreamResponse:
    apps = await ctx.result("GetApplications") or []
    rules = await ctx.result("GetRules", with_scenarios=True, count=1000) or []
    counts: dict[int, int] = {}
    for rule in rules:
        counts[rule["application_id"]] = counts.get(rule["application_id"], 0) + 1
    return ctx.render("applications.html", applications=apps, rule_counts=counts)


@page
async def application(ctx: Ctx) -> web.StreamResponse:
    app_id = ctx.request.match_info["id"]
    found = await ctx.result("GetApplications", application_id=app_id)
    if not found:
        return ctx.render("not_found.html", 404, what="application")
    rules = await ctx.result("GetRules", application_id=app_id, with_scenarios=True, count=1000) or []
    scenarios = await ctx.result("GetScenarios", count=1000) or []
    return ctx.render("application.html", app=found[0], rules=rules, scenarios=scenarios)


@page
async def scenarios(ctx: Ctx) -> web.StreamResponse:
    found = await ctx.result("GetScenarios", with_script=True, count=1000) or []
    for scenario in found:
        scenario["hash"] = version_hash(scenario.pop("scenario_script", ""))
    return ctx.render("scenarios.html", scenarios=found, new_script=NEW_SCENARIO)


@page
async def scenario(ctx: Ctx) -> web.StreamResponse:
    """The editor. Saving posts here (SetScenarioInfo): a script that does not compile comes back as typed,
    with the error and its line selected, instead of being lost."""
    scenario_id = ctx.request.match_info["id"]
    found = await ctx.result("GetScenarios", scenario_id=scenario_id, with_script=True)
    if not found:
        return ctx.render("not_found.html", 404, what="scenario")
    current: dict[str, Any] = found[0]
    stored = version_hash(current["scenario_script"])  # what runs, whatever the editor holds
    status, error, error_line = 200, "", 0
    values: dict[str, str] = {}
    if ctx.request.method == "POST":
        try:
            values = await posted(ctx)
            await ctx.call("SetScenarioInfo", scenario_id=scenario_id, scenario_name=values.get("scenario_name"),
                           scenario_script=values.get("scenario_script", ""))
        except ApiError as exc:
            status, error = exc.status, exc.msg
            current = {**current, **{k: v for k, v in values.items() if k.startswith("scenario_")}} \
                if exc.code == ERR_SCRIPT else current
            match = _ERROR_LINE.match(exc.msg)
            error_line = int(match.group(1)) if match else 0
        else:
            response = redirect(ctx.request.path)
            set_flash(response, "ok", "Saved: the scenario compiles. New sessions run this version.")
            return response
    if error:
        ctx.flash.append(("error", error))
    rules = [r for r in await ctx.result("GetRules", with_scenarios=True, count=1000) or []
             if any(s["scenario_id"] == current["scenario_id"] for s in r.get("scenarios", []))]
    return ctx.render("scenario.html", status, scenario=current, hash=stored,
                      error_line=error_line, rules=rules)


ROUTES = [
    ("GET", "/applications", applications),
    ("GET", r"/applications/{id:\d{1,18}}", application),
    ("GET", "/scenarios", scenarios),
    ("*", r"/scenarios/{id:\d{1,18}}", scenario),
]
