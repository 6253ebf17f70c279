"""Loading applications, rules and scenarios from a folder laid out as voxengine-ci lays it out.

    applications/<app>/application.config.json   {"applicationName": "..."}
    applications/<app>/rules.config.json         [{"ruleName", "rulePattern", "scenarios": [...]}]
                                                 (or rules.config.yml / .yaml / .toml with [[rules]])
    scenarios/src/<name>.voxengine.js            shared scenarios (voxengine-ci up to 35)
    applications/<app>/scenarios/src/<name>.voxengine.js   per application (voxengine-ci 36 and later)

TypeScript scenarios (.voxengine.ts) are taken from the build output of voxengine-ci (and voxpush),
scenarios/dist/<name>.voxengine.js.
Everything is read and checked first, every problem reported with its file; only a folder without
problems is written to the store, in one transaction, so a bad push never leaves half a change.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from appliance.errors import ApplianceError
from appliance.patterns import compile_pattern
from appliance.store.catalog import APPLICATION_NAME, RULE_NAME_MAX, SCENARIO_NAME, Catalog

RULE_FILES = ("rules.config.json", "rules.config.yml", "rules.config.yaml", "rules.config.toml")
JS_SUFFIX = ".voxengine.js"
TS_SUFFIX = ".voxengine.ts"


class VoxfilesError(ApplianceError):
    """The folder has problems; `problems` lists them, one per file and issue."""

    def __init__(self, root: Path, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{root}: {len(problems)} problem(s) in the voxfiles folder:\n{lines}")


@dataclass
class RuleSpec:
    name: str
    pattern: str
    scenarios: list[str]


@dataclass
class ApplicationSpec:
    name: str
    rules: list[RuleSpec] = field(default_factory=list)


@dataclass
class Voxfiles:
    applications: list[ApplicationSpec]
    scenarios: dict[str, tuple[str, str]]  # name -> (file path for messages, script)


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _read_rules(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    if path.suffix == ".toml":
        return tomllib.loads(text).get("rules", [])
    return yaml.safe_load(text)


def _scenario_files(folder: Path) -> dict[str, Path]:
    """name -> file in one scenarios/ folder; a .ts source is taken from dist/ (tsc output)."""
    found: dict[str, Path] = {}
    src = folder / "src"
    if not src.is_dir():
        return found
    for path in sorted(src.iterdir()):
        if path.name.endswith(JS_SUFFIX):
            found[path.name[: -len(JS_SUFFIX)]] = path
        elif path.name.endswith(TS_SUFFIX):
            name = path.name[: -len(TS_SUFFIX)]
            found[name] = folder / "dist" / f"{name}{JS_SUFFIX}"
    return found


def read(root: Path) -> Voxfiles:
    """Read and check the whole folder; VoxfilesError lists every problem found."""
    files, problems = _read(root)
    if problems:
        raise VoxfilesError(root, problems)
    return files


def _read(root: Path) -> tuple[Voxfiles, list[str]]:
    """The folder as far as it could be read, and the problems found on the way."""
    problems: list[str] = []
    if not (root / "applications").is_dir():
        raise VoxfilesError(root, [f"{_rel(root, root / 'applications')}: missing (not a voxfiles folder?)"])

    scenario_files = _scenario_files(root / "scenarios")
    applications: list[ApplicationSpec] = []
    sources: dict[str, set[Path]] = {}  # scenario name -> the files rules resolved it to
    for app_dir in sorted(p for p in (root / "applications").iterdir() if p.is_dir()):
        config_path = app_dir / "application.config.json"
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            name = config["applicationName"]
            if not isinstance(name, str) or not name:
                raise KeyError("applicationName")
        except FileNotFoundError:
            problems.append(f"{_rel(root, config_path)}: missing")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{_rel(root, config_path)}:{exc.lineno}: invalid JSON: {exc.msg}")
            continue
        except (KeyError, TypeError):
            problems.append(f"{_rel(root, config_path)}: needs a string \"applicationName\"")
            continue
        if not APPLICATION_NAME.match(name):
            problems.append(f"{_rel(root, config_path)}: invalid application name {name!r}")
            continue
        if any(a.name == name for a in applications):
            problems.append(f"{_rel(root, config_path)}: application {name!r} defined twice")
            continue
        app = ApplicationSpec(name)
        applications.append(app)
        own = _scenario_files(app_dir / "scenarios")
        rule_files = [app_dir / f for f in RULE_FILES if (app_dir / f).exists()]
        if not rule_files:
            continue
        if len(rule_files) > 1:
            problems.append(f"{_rel(root, app_dir)}: several rules files ({', '.join(p.name for p in rule_files)})")
            continue
        rules_path = rule_files[0]
        where = _rel(root, rules_path)
        try:
            rules = _read_rules(rules_path)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}:{exc.lineno}: invalid JSON: {exc.msg}")
            continue
        except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(f"{where}: cannot parse: {exc}")
            continue
        if not isinstance(rules, list):
            problems.append(f"{where}: must be a list of rules")
            continue
        seen: set[str] = set()
        for index, rule in enumerate(rules):
            label = f"{where}: rule {index + 1}"
            if not isinstance(rule, dict) or not isinstance(rule.get("ruleName"), str) or not rule["ruleName"]:
                problems.append(f"{label}: needs a string \"ruleName\"")
                continue
            rule_name = rule["ruleName"]
            label = f"{where}: rule {rule_name!r}"
            if len(rule_name) > RULE_NAME_MAX:
                problems.append(f"{label}: rule names are limited to {RULE_NAME_MAX} characters")
            if rule_name in seen:
                problems.append(f"{label}: defined twice")
            seen.add(rule_name)
            pattern = rule.get("rulePattern", ".*")
            names = rule.get("scenarios", [])
            if not isinstance(pattern, str):
                problems.append(f"{label}: \"rulePattern\" must be a string")
                continue
            try:
                compile_pattern(pattern)
            except ValueError as exc:
                problems.append(f"{label}: {exc}")
            if not isinstance(names, list) or not all(isinstance(s, str) for s in names):
                problems.append(f"{label}: \"scenarios\" must be a list of scenario names")
                continue
            for scenario in names:
                path = own.get(scenario) or scenario_files.get(scenario)
                if path is None:
                    problems.append(f"{label}: scenario {scenario!r} not found in scenarios/src")
                else:
                    sources.setdefault(scenario, set()).add(path)
            if len(set(names)) != len(names):
                problems.append(f"{label}: a scenario is listed twice")
            app.rules.append(RuleSpec(rule_name, pattern, names))

    scenarios: dict[str, tuple[str, str]] = {}
    for name, paths in sorted(sources.items()):
        # Scenario names are account-wide (as on Voximplant): one name, one script.
        if not SCENARIO_NAME.match(name):
            problems.append(f"{_rel(root, min(paths))}: invalid scenario name {name!r}")
            continue
        texts: dict[str, Path] = {}
        for path in sorted(paths):
            text = _read_scenario(root, path, problems)
            if text is not None:
                texts.setdefault(text, path)
        if len(texts) > 1:
            files = " and ".join(_rel(root, p) for p in texts.values())
            problems.append(f"scenario {name!r} differs between {files}: scenario names are shared by all "
                            "applications, so rename one")
        elif texts:
            (text, path), = texts.items()
            scenarios[name] = (_rel(root, path), text)
    return Voxfiles(applications, scenarios), problems


def _read_scenario(root: Path, path: Path, problems: list[str]) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{_rel(root, path)}: missing (compile the TypeScript scenario with tsc first)")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{_rel(root, path)}: cannot read: {exc}")
    return None


def load(root: Path, catalog: Catalog) -> Voxfiles:
    """Read the folder, check every scenario, then write it all to the store in one transaction."""
    files, problems = _read(root)
    for where, script in files.scenarios.values():
        try:
            catalog.check_script(where, script)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise VoxfilesError(root, problems)
    with catalog.db.transaction():
        for name, (where, script) in files.scenarios.items():
            catalog.put_scenario(name, script, filename=where)
        existing = {a.name: a for a in catalog.applications()}
        for app in files.applications:
            application = existing.get(app.name) or catalog.add_application(app.name)
            for rule in app.rules:
                catalog.put_rule(application.id, rule.name, rule.pattern, rule.scenarios)
            # Rule order is the order of the rules file (voxengine-ci's ReorderRules).
            by_name = {r.name: r.id for r in catalog.rules(application.id)}
            listed = [by_name[r.name] for r in app.rules]
            others = [rid for rid in by_name.values() if rid not in listed]
            catalog.reorder_rules(application.id, listed + others)
    return files
