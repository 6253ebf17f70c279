"""A voxengine-ci project on disk: .env settings, the voxfiles tree in both layouts, the .voxengine-ci metadata.

    .env                                   VOX_CI_CREDENTIALS, VOX_CI_ROOT_PATH (+ VOX_CI_HOST for voxpush)
    voxfiles/applications/<app>/application.config.json, rules.config.{json,yml,yaml,toml}
    voxfiles/scenarios/{src,dist}/                        shared scenarios (voxengine-ci up to 35)
    voxfiles/applications/<app>/scenarios/{src,dist}/     per application (voxengine-ci 36 and later)
    voxfiles/.voxengine-ci/<the same relative folders>/   ids and sha256 hashes of the last sync

File and key names, and the compact JSON of the files written, are voxengine-ci's, so either tool can
take over a tree the other wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from tools.voxpush.api import VoxpushError

RULE_FILES = ("rules.config.json", "rules.config.yml", "rules.config.yaml", "rules.config.toml")
SUFFIX = ".voxengine"
SOURCE_EXTENSIONS = (".ts", ".js")  # voxengine-ci's order: a .ts source wins over a .js one
METADATA_DIR = ".voxengine-ci"


@dataclass(frozen=True)
class Settings:
    credentials: Path
    root: Path
    host: str | None
    env_file: Path | None  # the .env read, for messages


def load_settings(cwd: Path) -> Settings:
    """dotenv semantics as voxengine-ci has them: the environment wins over .env, then the defaults."""
    env_path = cwd / ".env"
    try:
        values = {k: v for k, v in dotenv_values(env_path).items() if v} if env_path.is_file() else {}
    except (OSError, UnicodeDecodeError) as exc:
        raise VoxpushError(f"{env_path}: cannot read: {exc}") from None

    def get(name: str) -> str | None:
        return os.environ.get(name) or values.get(name)

    return Settings(
        credentials=cwd / (get("VOX_CI_CREDENTIALS") or "vox_ci_credentials.json"),
        root=cwd / (get("VOX_CI_ROOT_PATH") or "voxfiles"),
        host=get("VOX_CI_HOST"),
        env_file=env_path if env_path.is_file() else None,
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dump_json(data: Any) -> str:
    """JSON.stringify's output: compact, non-ASCII kept."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: str
    scenarios: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """A scenario's source file and the scenarios/ folder it belongs to."""

    name: str
    path: Path
    folder: Path  # .../scenarios

    @property
    def is_typescript(self) -> bool:
        return self.path.suffix == ".ts"

    @property
    def dist(self) -> Path:
        return self.folder / "dist" / f"{self.name}{SUFFIX}.js"


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta = root / METADATA_DIR

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    # Applications

    def app_dirs(self) -> dict[str, Path]:
        """Application name (from application.config.json) -> its folder."""
        found: dict[str, Path] = {}
        apps = self.root / "applications"
        for folder in sorted(apps.iterdir()) if apps.is_dir() else []:
            config = folder / "application.config.json"
            if config.is_file():
                found[self.app_name(config)] = folder
        return found

    def app_name(self, config: Path) -> str:
        try:
            name = json.loads(config.read_text(encoding="utf-8"))["applicationName"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VoxpushError(f"{self.rel(config)}: needs a JSON object with \"applicationName\" ({exc!r})") from None
        if not isinstance(name, str) or not name:
            raise VoxpushError(f"{self.rel(config)}: \"applicationName\" must be a non-empty string")
        return name

    def app_dir(self, name: str) -> Path:
        return self.app_dirs().get(name) or self.root / "applications" / name

    def local_full_name(self, short: str) -> str | None:
        """The one local application folder named SHORT.<anything>, so existing trees push unchanged."""
        apps = self.root / "applications"
        matches = [p.name for p in apps.iterdir() if p.is_dir() and p.name.startswith(short + ".")] \
            if apps.is_dir() else []
        return matches[0] if len(matches) == 1 else None

    def write_app_config(self, name: str) -> None:
        path = self.app_dir(name) / "application.config.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dump_json({"applicationName": name}), encoding="utf-8")

    # Rules

    def rules_file(self, app: str) -> Path | None:
        folder = self.app_dir(app)
        found = [folder / name for name in RULE_FILES if (folder / name).is_file()]
        if len(found) > 1:
            raise VoxpushError(f"{self.rel(folder)}: several rules files ({', '.join(p.name for p in found)})")
        return found[0] if found else None

    def read_rules(self, app: str) -> list[Rule]:
        path = self.rules_file(app)
        if path is None:
            return []
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".json":
                data = json.loads(text)
            elif path.suffix == ".toml":
                data = tomllib.loads(text).get("rules", [])
            else:
                data = yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise VoxpushError(f"{self.rel(path)}: cannot parse: {exc}") from None
        if not isinstance(data, list):
            raise VoxpushError(f"{self.rel(path)}: must be a list of rules")
        rules: list[Rule] = []
        for index, item in enumerate(data, 1):
            ok = isinstance(item, dict) and isinstance(item.get("ruleName"), str) and item["ruleName"]
            scenarios = item.get("scenarios", []) if isinstance(item, dict) else None
            if not ok or not isinstance(scenarios, list) or not all(isinstance(s, str) for s in scenarios):
                raise VoxpushError(f"{self.rel(path)}: rule {index} needs a \"ruleName\" and a list of \"scenarios\"")
            # voxengine-ci's readApplicationRulesByName: a missing or non-string pattern is ".*".
            pattern = item.get("rulePattern")
            rules.append(Rule(item["ruleName"], pattern if isinstance(pattern, str) else ".*", tuple(scenarios)))
        return rules

    def write_rules(self, app: str, rules: list[Rule]) -> None:
        """Write the rules in the format of the existing file (rules.config.json when there is none)."""
        path = self.rules_file(app) or self.app_dir(app) / "rules.config.json"
        items = [{"ruleName": r.name, "scenarios": list(r.scenarios), "rulePattern": r.pattern} for r in rules]
        if path.suffix == ".json":
            text = dump_json(items)
        elif path.suffix == ".toml":
            text = "".join(f"[[rules]]\nruleName = {json.dumps(r.name)}\nrulePattern = {json.dumps(r.pattern)}\n"
                           f"scenarios = {json.dumps(list(r.scenarios))}\n\n" for r in rules)
        else:
            text = yaml.safe_dump(items, sort_keys=False, allow_unicode=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    # Scenarios

    def scenario_folders(self, app: str) -> list[Path]:
        """Where APP's scenarios are looked up, first match wins: its own folder, then the shared one."""
        return [self.app_dir(app) / "scenarios", self.root / "scenarios"]

    def find_source(self, app: str, name: str) -> Source | None:
        for folder in self.scenario_folders(app):
            for ext in SOURCE_EXTENSIONS:
                path = folder / "src" / f"{name}{SUFFIX}{ext}"
                if path.is_file():
                    return Source(name, path, folder)
        return None

    def source(self, app: str, name: str) -> Source:
        found = self.find_source(app, name)
        if found is None:
            where = " or ".join(self.rel(f / "src" / f"{name}{SUFFIX}.(ts|js)") for f in self.scenario_folders(app))
            raise VoxpushError(f"The \"{name}\" scenario does not exist ({where})")
        return found

    def per_application_layout(self) -> bool:
        """voxengine-ci 36+ keeps scenarios per application; a tree already in the older layout stays so."""
        shared = self.root / "scenarios" / "src"
        return not (shared.is_dir() and any(shared.iterdir()))

    def new_source(self, app: str, name: str) -> Source:
        """Where a scenario pulled from the box goes when there is no local file for it yet."""
        folder = self.app_dir(app) / "scenarios" if self.per_application_layout() else self.root / "scenarios"
        return Source(name, folder / "src" / f"{name}{SUFFIX}.js", folder)

    # Metadata

    def _meta_path(self, path: Path) -> Path:
        return self.meta / path.relative_to(self.root)

    def scenario_meta_path(self, source: Source) -> Path:
        return self._meta_path(source.folder / "dist" / f"{source.name}.metadata.config.json")

    def read_scenario_meta(self, source: Source) -> dict[str, Any] | None:
        data = _read_json(self.scenario_meta_path(source))
        return data if isinstance(data, dict) else None

    def write_scenario_meta(self, source: Source, scenario_id: int, text_hash: str, app_id: int) -> None:
        data: dict[str, Any] = {"scenarioId": scenario_id, "scenarioName": source.name, "hash": text_hash}
        if source.folder != self.root / "scenarios":
            data["applicationId"] = app_id  # 36+ metadata; shared scenarios belong to no one application
        _write(self.scenario_meta_path(source), dump_json(data))

    def rules_meta_path(self, app: str) -> Path:
        return self._meta_path(self.app_dir(app) / "rules.metadata.config.json")

    def read_rules_meta(self, app: str) -> list[dict[str, Any]]:
        data = _read_json(self.rules_meta_path(app))
        return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []

    def write_rules_meta(self, app: str, rules: list[dict[str, Any]]) -> None:
        items = [{"ruleName": r["rule_name"], "ruleId": r["rule_id"],
                  "scenarios": [{"scenarioName": s["scenario_name"], "scenarioId": s["scenario_id"]}
                                for s in r.get("scenarios", [])],
                  "rulePattern": r["rule_pattern"]} for r in rules]
        _write(self.rules_meta_path(app), dump_json(items))

    def write_app_meta(self, app: str, app_id: int, scenarios: list[tuple[int, str]]) -> None:
        data = {"applicationId": app_id, "applicationName": app,
                "scenarios": [{"scenarioId": sid, "scenarioName": name} for sid, name in scenarios]}
        _write(self._meta_path(self.app_dir(app) / "application.metadata.config.json"), dump_json(data))

    def initialized(self) -> bool:
        """voxengine-ci's test: scenario sources and their metadata are both there."""
        if not self.meta.is_dir():
            return False
        has_meta = any(self.meta.rglob("*.metadata.config.json"))
        return has_meta and any(self.root.glob("**/scenarios/src/*.voxengine.*"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise VoxpushError(f"{path}: unreadable metadata ({exc}); `voxpush pull` rewrites it") from None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
