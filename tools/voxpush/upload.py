"""`voxpush upload`: voxengine-ci's upload (lib/modules/application.module.ts applicationBuildAndUpload and
applicationByRuleBuildAndUpload, lib/domains/services/vox-scenario.service.ts upload), against the box.

Only what differs is written: an unchanged scenario or rule costs reads only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.voxpush.api import ApiError, VoxpushError
from tools.voxpush.build import build
from tools.voxpush.project import Project, Rule, Source, sha256
from tools.voxpush.remote import Box, script_of


@dataclass
class Target:
    """What to upload, as given on the command line."""

    application_name: str | None = None
    application_id: int | None = None
    rule_name: str | None = None
    rule_id: int | None = None


@dataclass
class Report:
    scenarios: dict[str, str] = field(default_factory=dict)  # name -> added / updated / unchanged
    rule_changes: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.uploaded) + len(self.rule_changes)

    @property
    def uploaded(self) -> list[str]:
        return [name for name, done in self.scenarios.items() if done in ("added", "updated")]


def full_app_name(project: Project, name: str, box: Callable[[], Box]) -> str:
    """voxengine-ci's getApplicationFullName, preferring an existing local folder X.<anything> for X."""
    if "." in name:
        return name
    return project.local_full_name(name) or f"{name}.{box().account_name()}.voximplant.com"


def local_hashes(source: Source, built: str) -> set[str]:
    """The texts that count as this source: tsc's output, and for a .js file its own text as well.

    tsc reformats JavaScript, so a script pulled from the box into src/ builds to a slightly different
    text; it is still the very script the box has.
    """
    hashes = {sha256(built)}
    if not source.is_typescript:
        hashes.add(sha256(source.path.read_text(encoding="utf-8")))
    return hashes


def _select_rules(project: Project, app: str, rules: list[Rule], target: Target) -> list[Rule]:
    if target.rule_id is not None:
        meta = next((r for r in project.read_rules_meta(app) if r.get("ruleId") == target.rule_id), None)
        found = [r for r in rules if meta is not None and r.name == meta.get("ruleName")]
        if not found:
            raise VoxpushError(f"Rule with --rule-id \"{target.rule_id}\" does not exist")
        return found
    if target.rule_name is not None:
        found = [r for r in rules if r.name == target.rule_name]
        if not found:
            raise VoxpushError(f"Rule with --rule-name \"{target.rule_name}\" does not exist")
        return found
    return rules


def upload(project: Project, connect: Callable[[], Box], target: Target, *, dry_run: bool, force: bool) -> Report:
    report = Report()
    if target.application_id is not None:
        remote_app = connect().application(app_id=target.application_id)
        if remote_app is None:
            raise VoxpushError(f"Application with --application-id \"{target.application_id}\" does not exist")
        app = str(remote_app["application_name"])
    else:
        assert target.application_name is not None
        app = full_app_name(project, target.application_name, connect)
        remote_app = None if dry_run else connect().application(name=app)
    config = project.app_dir(app) / "application.config.json"
    if remote_app is None and not config.is_file():
        raise VoxpushError(
            f"Application with --application-name \"{app}\" does not exist; if you would like to create a new "
            f"application, add the 'application.config.json' and 'rules.config.json' files to the "
            f"'{project.rel(project.app_dir(app))}' directory")
    if config.is_file() and project.app_name(config) != app:
        raise VoxpushError(f"The \"{project.app_name(config)}\" applicationName in application.config file is "
                           f"different from the \"{app}\"")
    all_rules = project.read_rules(app)
    rules = _select_rules(project, app, all_rules, target)
    names = list(dict.fromkeys(s for rule in rules for s in rule.scenarios))
    sources = [project.source(app, name) for name in names]
    texts = build(project, sources) if sources else {}
    if sources:
        print(f"Scenarios [ {','.join(names)} ] have been successfully built")
    if dry_run:
        return report

    box = connect()
    if remote_app is None:
        try:
            answer = box.client.call("AddApplication", application_name=app)
        except ApiError as exc:
            raise VoxpushError(f"Cannot add the application with the {app} \"applicationName\" to the platform: "
                               f"{exc.msg}") from None
        app_id = int(answer["application_id"])
        print(f"Application with the {app_id} \"applicationId\" and {app} \"applicationName\" has been added")
    else:
        app_id = int(remote_app["application_id"])

    ids: dict[str, int] = {}
    for index, source in enumerate(sources, 1):
        print(f"[{index}/{len(sources)}] scenario {source.name} ... ", end="", flush=True)
        try:
            ids[source.name], report.scenarios[source.name] = _upload_scenario(
                project, box, source, texts[source.name], app_id, force)
        except BaseException:
            print("failed", flush=True)
            raise
        print(report.scenarios[source.name], flush=True)

    report.rule_changes += _sync_rules(box, app_id, rules, ids)
    if target.rule_id is None and target.rule_name is None:
        report.rule_changes += _reorder_rules(box, app_id, all_rules)
    for change in report.rule_changes:
        print(change)
    save_app_metadata(project, app, app_id, box.rules(app_id))
    print(f"Application {app}: {len(report.uploaded)} scenario(s) uploaded, "
          f"{len(report.scenarios) - len(report.uploaded)} unchanged, "
          f"{len(report.rule_changes)} rule change(s)")
    return report


def _upload_scenario(project: Project, box: Box, source: Source, text: str, app_id: int,
                     force: bool) -> tuple[int, str]:
    """Add or update one scenario; its id and what was done."""
    name, new_hash = source.name, sha256(text)
    meta = project.read_scenario_meta(source)
    remote = box.scenario(name)
    if remote is None:
        if meta is not None:
            print("(deleted on the box, adding it again) ", end="")
        scenario_id = int(_write_scenario(box, project, source, "AddScenario", scenario_name=name,
                                          scenario_script=text)["scenario_id"])
        project.write_scenario_meta(source, scenario_id, new_hash, app_id)
        return scenario_id, "added"
    scenario_id = int(remote["scenario_id"])
    remote_hash = sha256(script_of(remote))
    # No metadata (or metadata of another scenario): the box's copy is the base, as in voxengine-ci.
    base = meta["hash"] if meta is not None and meta.get("scenarioId") == scenario_id else remote_hash
    mine = local_hashes(source, text)
    if remote_hash in mine:  # the box has this very text (perhaps only the metadata is behind)
        project.write_scenario_meta(source, scenario_id, remote_hash, app_id)
        return scenario_id, "unchanged"
    if base in mine and not force:  # voxengine-ci skips what did not change locally
        project.write_scenario_meta(source, scenario_id, base, app_id)
        return scenario_id, "unchanged locally; changed on the box (`voxpush pull` takes it, --force overwrites it)"
    if base not in mine and remote_hash != base and not force:
        raise VoxpushError(f"Scenario with the {scenario_id} \"scenarioId\" and {name} \"scenarioName\" has been "
                           "already changed from the platform, operation is aborted (`voxpush diff` shows the "
                           "change; --force overwrites it)")
    if remote_hash != base:
        print("(--force: overwriting the box's change) ", end="")
    _write_scenario(box, project, source, "SetScenarioInfo", scenario_id=scenario_id, scenario_script=text)
    project.write_scenario_meta(source, scenario_id, new_hash, app_id)
    return scenario_id, "updated"


def _write_scenario(box: Box, project: Project, source: Source, cmd: str, **params: Any) -> dict[str, Any]:
    try:
        return box.client.call(cmd, **params)
    except ApiError as exc:
        if exc.status == 401:
            raise
        raise VoxpushError(f"the box refused scenario {source.name} ({project.rel(source.path)}): {exc.msg}"
                           ) from None


def _sync_rules(box: Box, app_id: int, rules: list[Rule], ids: dict[str, int]) -> list[str]:
    changes: list[str] = []
    existing = {r["rule_name"]: r for r in box.rules(app_id)}
    for rule in rules:
        want = [ids[s] for s in rule.scenarios]
        remote = existing.get(rule.name)
        if remote is None:
            answer = box.client.call("AddRule", application_id=app_id, rule_name=rule.name,
                                     rule_pattern=rule.pattern, scenario_id=want or None)
            changes.append(f"Rule with the {answer.get('rule_id')} \"ruleId\" and {rule.name} \"ruleName\" "
                           "has been successfully uploaded to the platform")
            continue
        rule_id = int(remote["rule_id"])
        if remote.get("rule_pattern") != rule.pattern:
            box.client.call("SetRuleInfo", rule_id=rule_id, rule_pattern=rule.pattern)
            changes.append(f"Rule with the {rule_id} \"ruleId\" has been successfully updated on the platform "
                           f"(pattern {rule.pattern!r})")
        have = [int(s["scenario_id"]) for s in remote.get("scenarios", [])]
        if have == want:
            continue
        unbind = [s for s in have if s not in want]
        bind = [s for s in want if s not in have]
        if unbind:
            box.client.call("BindScenario", scenario_id=unbind, rule_id=rule_id, application_id=app_id, bind=False)
        if bind:
            box.client.call("BindScenario", scenario_id=bind, rule_id=rule_id, application_id=app_id, bind=True)
        # The box runs a rule's scenarios one after another in its order: make it the file's order.
        if [s for s in have if s not in unbind] + bind != want:
            box.client.call("ReorderScenarios", rule_id=rule_id, scenario_id=want)
        changes.append(f"Rule {rule.name}: scenarios are now [ {','.join(rule.scenarios)} ]")
    return changes


def _reorder_rules(box: Box, app_id: int, rules: list[Rule]) -> list[str]:
    """voxengine-ci's reorderRules: the box's order becomes the file's (rules only on the box go last)."""
    remote = box.rules(app_id)
    by_name = {r["rule_name"]: int(r["rule_id"]) for r in remote}
    listed = [by_name[r.name] for r in rules if r.name in by_name]
    order = listed + [int(r["rule_id"]) for r in remote if int(r["rule_id"]) not in listed]
    if order == [int(r["rule_id"]) for r in remote]:
        return []
    box.client.call("ReorderRules", rule_id=order)
    return [f"Rules were reordered: {','.join(map(str, order))}"]


def save_app_metadata(project: Project, app: str, app_id: int, remote_rules: list[dict[str, Any]]) -> None:
    project.write_rules_meta(app, remote_rules)
    bound = {int(s["scenario_id"]): str(s["scenario_name"]) for r in remote_rules for s in r.get("scenarios", [])}
    project.write_app_meta(app, app_id, list(bound.items()))
