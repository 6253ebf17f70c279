"""Comparing the local tree with the box: `status`, `diff`, `pull`, and `init` (voxengine-ci's projectInit).

Each scenario and rule is compared three ways, as git does: the local text, the box's, and the base
of the last sync kept in .voxengine-ci (the sha256 of the scenario's text, the rule as it was).
"""

from __future__ import annotations

import difflib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.voxpush.api import VoxpushError
from tools.voxpush.build import build
from tools.voxpush.project import Project, Rule, Source, sha256
from tools.voxpush.remote import Box, script_of
from tools.voxpush.upload import local_hashes, save_app_metadata

UNCHANGED = "unchanged"
LOCAL = "changed locally"
REMOTE = "changed on the box"
BOTH = "changed locally and on the box"
ONLY_LOCAL = "only local"
ONLY_REMOTE = "only on the box"


def _state(mine: set[str], theirs: str, base: str | None) -> str:
    if theirs in mine:
        return UNCHANGED
    if base in mine:
        return REMOTE
    return LOCAL if base == theirs else BOTH


@dataclass
class ScenarioState:
    name: str
    source: Source | None
    built: str | None
    remote: dict[str, Any] | None
    state: str


@dataclass
class RuleState:
    name: str
    local: Rule | None
    remote: Rule | None
    state: str


@dataclass
class AppState:
    name: str
    app_id: int | None
    remote_rules: list[dict[str, Any]]
    scenarios: list[ScenarioState]
    rules: list[RuleState]


def _remote_rule(rule: dict[str, Any]) -> Rule:
    return Rule(str(rule["rule_name"]), str(rule.get("rule_pattern", ".*")),
                tuple(str(s["scenario_name"]) for s in rule.get("scenarios", [])))


def _meta_rule(meta: dict[str, Any]) -> Rule:
    return Rule(str(meta.get("ruleName")), str(meta.get("rulePattern")),
                tuple(str(s.get("scenarioName")) for s in meta.get("scenarios", []) if isinstance(s, dict)))


def compare(project: Project, box: Box, only: str | None = None) -> list[AppState]:
    """Every application, local or on the box (or just ONLY), and how its scenarios and rules differ."""
    remote_apps = {str(a["application_name"]): a for a in box.applications()}
    names = list(dict.fromkeys([*project.app_dirs(), *remote_apps]))
    if only is not None:
        if only not in names:
            raise VoxpushError(f"Application with --application-name \"{only}\" does not exist")
        names = [only]
    scripts = {str(s["scenario_name"]): s for s in box.scenarios()} if names else {}
    states: list[AppState] = []
    with tempfile.TemporaryDirectory(prefix="voxpush-") as tmp:
        for index, app in enumerate(names):
            remote_app = remote_apps.get(app)
            app_id = int(remote_app["application_id"]) if remote_app else None
            remote_rules = box.rules(app_id) if app_id is not None else []
            local_rules = project.read_rules(app)
            states.append(AppState(app, app_id, remote_rules,
                                   _scenarios(project, app, local_rules, remote_rules, scripts, Path(tmp) / str(index)),
                                   _rules(project, app, local_rules, remote_rules)))
    return states


def _scenarios(project: Project, app: str, local_rules: list[Rule], remote_rules: list[dict[str, Any]],
               scripts: dict[str, dict[str, Any]], out: Path) -> list[ScenarioState]:
    names = list(dict.fromkeys([*(s for r in local_rules for s in r.scenarios),
                                *(s for r in remote_rules for s in _remote_rule(r).scenarios)]))
    sources = {n: s for n in names if (s := project.find_source(app, n)) is not None}
    texts = build(project, list(sources.values()), out) if sources else {}
    states: list[ScenarioState] = []
    for name in names:
        source, remote = sources.get(name), scripts.get(name)
        if source is None:
            state = ONLY_REMOTE
        elif remote is None:
            state = ONLY_LOCAL
        else:
            meta = project.read_scenario_meta(source)
            base = meta.get("hash") if meta and meta.get("scenarioId") == remote.get("scenario_id") else None
            state = _state(local_hashes(source, texts[name]), sha256(script_of(remote)), base)
        states.append(ScenarioState(name, source, texts.get(name), remote, state))
    return states


def _rules(project: Project, app: str, local_rules: list[Rule], remote_rules: list[dict[str, Any]]) -> list[RuleState]:
    local = {r.name: r for r in local_rules}
    remote = {r.name: r for r in map(_remote_rule, remote_rules)}
    base = {r.name: r for r in map(_meta_rule, project.read_rules_meta(app))}
    states: list[RuleState] = []
    for name in dict.fromkeys([*local, *remote]):
        mine, theirs = local.get(name), remote.get(name)
        if mine is None or theirs is None:
            state = ONLY_LOCAL if theirs is None else ONLY_REMOTE
        elif mine == theirs:
            state = UNCHANGED
        else:
            state = REMOTE if base.get(name) == mine else LOCAL if base.get(name) == theirs else BOTH
        states.append(RuleState(name, mine, theirs, state))
    return states


def print_status(states: list[AppState]) -> int:
    """One line per scenario and rule; the number of things that differ."""
    differing = 0
    for app in states:
        print(f"application {app.name}" + ("" if app.app_id is not None else "  (only local)"))
        for kind, items in (("scenario", app.scenarios), ("rule", app.rules)):
            for item in items:
                print(f"  {kind:<9} {item.name:<32} {item.state}")
                differing += item.state != UNCHANGED
    print("everything is in sync with the box" if not differing else f"{differing} difference(s)")
    return differing


def diff_lines(project: Project, states: list[AppState]) -> list[str]:
    """Unified diffs, box -> local, of every scenario and rule that differs."""
    lines: list[str] = []
    for app in states:
        for s in app.scenarios:
            if s.state == UNCHANGED:
                continue
            remote = script_of(s.remote) if s.remote else ""
            local = s.built or ""
            where = project.rel(s.source.path) if s.source else "(none)"
            lines += difflib.unified_diff(remote.splitlines(keepends=True), local.splitlines(keepends=True),
                                          f"box:{s.name}", f"local:{where}")
        for r in app.rules:
            if r.state != UNCHANGED:
                lines += difflib.unified_diff(_rule_text(r.remote), _rule_text(r.local),
                                              f"box:{app.name}/rules/{r.name}", f"local:{app.name}/rules/{r.name}")
    return [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines]


def _rule_text(rule: Rule | None) -> list[str]:
    if rule is None:
        return []
    return [f"ruleName: {rule.name}\n", f"rulePattern: {rule.pattern}\n",
            f"scenarios: {', '.join(rule.scenarios)}\n"]


def pull(project: Project, box: Box, only: str | None = None, *, force: bool = False) -> int:
    """Bring the box's scripts and rules into the tree; refuse to overwrite local changes without FORCE.

    Returns the number of files written (metadata aside).
    """
    states = compare(project, box, only)
    conflicts = [f"{app.name}: {kind} {item.name} ({item.state})"
                 for app in states for kind, items in (("scenario", app.scenarios), ("rule", app.rules))
                 for item in items if item.state in (LOCAL, BOTH) and app.app_id is not None]
    conflicts += [f"{app.name}: scenario {s.name} is TypeScript here, the box has changed its built JavaScript "
                  f"(pull with --force to replace {project.rel(s.source.path)})"
                  for app in states for s in app.scenarios
                  if s.state == REMOTE and s.source is not None and s.source.is_typescript]
    if conflicts and not force:
        raise VoxpushError("local changes would be overwritten (upload them, or pull with --force): "
                           + "; ".join(conflicts))
    written = 0
    for app in states:
        if app.app_id is None:
            continue
        project.write_app_config(app.name)
        if any(r.state != UNCHANGED and r.remote is not None for r in app.rules) or \
                (project.rules_file(app.name) is None and app.remote_rules):
            project.write_rules(app.name, [_remote_rule(r) for r in app.remote_rules])
            written += 1
        for s in app.scenarios:
            if s.remote is None:
                continue
            script = script_of(s.remote)
            source = s.source
            if source is None or s.state != UNCHANGED:
                if source is not None and source.is_typescript:
                    print(f"voxpush: {project.rel(source.path)} replaced by the box's JavaScript")
                    source.path.unlink()
                    source = Source(source.name, source.path.with_suffix(".js"), source.folder)
                source = source or project.new_source(app.name, s.name)
                source.path.parent.mkdir(parents=True, exist_ok=True)
                source.path.write_text(script, encoding="utf-8")
                print(f"pulled scenario {s.name} -> {project.rel(source.path)}")
                written += 1
            project.write_scenario_meta(source, int(s.remote["scenario_id"]), sha256(script), app.app_id)
        save_app_metadata(project, app.name, app.app_id, app.remote_rules)
    return written


def init(project: Project, box: Box, *, force: bool) -> int:
    """voxengine-ci's init: download everything; refuse a second time, unless FORCE wipes the tree first."""
    if project.initialized() and not force:
        raise VoxpushError("Project has already been initialized (`voxpush init --force` wipes and re-downloads it)")
    if force:
        for folder in (project.root / "applications", project.root / "scenarios", project.meta):
            shutil.rmtree(folder, ignore_errors=True)
    project.root.mkdir(parents=True, exist_ok=True)
    if not box.applications():
        print("Account has no applications")
        return 0
    written = pull(project, box, force=True)
    print("All applications have been successfully downloaded from the platform")
    return written
