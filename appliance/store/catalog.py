"""Applications, their ordered rules, and scenarios: what the router and the engine run.

Every scenario stored passes the script checker given to `Catalog` (the engine compiles it in
QuickJS), so no script with a syntax error ever reaches a session.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from appliance.patterns import compile_pattern
from appliance.store.db import Conflict, Database, NotFound, StoreError

SCENARIO_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}\Z")
APPLICATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}\Z")
RULE_NAME_MAX = 100

ScriptChecker = Callable[[str, str], None]
"""check(filename, script): raises ValueError with file, line and message if the script is refused."""


@dataclass(frozen=True)
class Application:
    id: int
    name: str
    created: float
    modified: float
    secure_record_storage: bool = False


@dataclass(frozen=True)
class Scenario:
    id: int
    name: str
    script: str
    modified: float
    application_id: int | None = None  # None: shared by all applications


@dataclass(frozen=True)
class Rule:
    id: int
    application_id: int
    name: str
    pattern: str
    pattern_exclude: str
    position: int
    scenario_ids: tuple[int, ...]
    video_conference: bool = False
    modified: float = 0.0


def _check_rule(name: str, pattern: str, pattern_exclude: str) -> None:
    if not name or len(name) > RULE_NAME_MAX:
        raise StoreError(f"invalid rule name {name!r}: 1 to {RULE_NAME_MAX} characters")
    try:
        compile_pattern(pattern)
        if pattern_exclude:
            compile_pattern(pattern_exclude, "exclude")
    except ValueError as exc:
        raise StoreError(str(exc)) from None


class Catalog:
    def __init__(self, db: Database, check_script: ScriptChecker) -> None:
        self.db = db
        self.check_script = check_script

    # Applications

    def add_application(self, name: str, secure_record_storage: bool = False) -> Application:
        _check_application_name(name)
        now = time.time()
        try:
            cur = self.db.execute(
                "INSERT INTO applications (name, secure_record_storage, created, modified) VALUES (?, ?, ?, ?)",
                (name, secure_record_storage, now, now),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"application {name!r} already exists") from None
        return Application(int(cur.lastrowid or 0), name, now, now, secure_record_storage)

    def update_application(self, app_id: int, name: str | None = None,
                           secure_record_storage: bool | None = None) -> Application:
        app = self.application(id=app_id)
        if name is not None:
            _check_application_name(name)
        try:
            self.db.execute(
                "UPDATE applications SET name = ?, secure_record_storage = ?, modified = ? WHERE id = ?",
                (app.name if name is None else name,
                 app.secure_record_storage if secure_record_storage is None else secure_record_storage,
                 time.time(), app_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"application {name!r} already exists") from None
        return self.application(id=app_id)

    def delete_application(self, app_id: int) -> None:
        """The application with its rules, storage and secrets (scenarios stay: they are shared)."""
        if not self.db.execute("DELETE FROM applications WHERE id = ?", (app_id,)).rowcount:
            raise NotFound(f"no application {app_id}")

    def applications(self) -> list[Application]:
        rows = self.db.query("SELECT id, name, created, modified, secure_record_storage FROM applications ORDER BY id")
        return [Application(r["id"], r["name"], r["created"], r["modified"], bool(r["secure_record_storage"]))
                for r in rows]

    def application(self, *, id: int | None = None, name: str | None = None) -> Application:
        for app in self.applications():
            if app.id == id or app.name == name:
                return app
        raise NotFound(f"no application {name if name is not None else id!r}")

    # Scenarios

    def put_scenario(self, name: str, script: str, filename: str | None = None) -> Scenario:
        """Create or replace a scenario after the checker accepted its script."""
        _check_scenario_name(name)
        self.check_script(filename or name, script)
        now = time.time()
        self.db.execute(
            "INSERT INTO scenarios (name, script, created, modified) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET script = excluded.script, modified = excluded.modified "
            "WHERE scenarios.script != excluded.script",
            (name, script, now, now),
        )
        return self.scenario(name=name)

    def add_scenario(self, name: str, script: str, application_id: int | None = None,
                     filename: str | None = None) -> Scenario:
        """A new scenario; Conflict if the name is taken (names are box-wide, as Voximplant's account-wide)."""
        _check_scenario_name(name)
        self.check_script(filename or f"{name}.js", script)
        now = time.time()
        try:
            cur = self.db.execute(
                "INSERT INTO scenarios (name, script, application_id, created, modified) VALUES (?, ?, ?, ?, ?)",
                (name, script, application_id, now, now))
        except sqlite3.IntegrityError:
            raise Conflict(f"scenario {name!r} already exists") from None
        return self.scenario(id=int(cur.lastrowid or 0))

    def update_scenario(self, scenario_id: int, name: str | None = None, script: str | None = None) -> Scenario:
        current = self.scenario(id=scenario_id)
        if name is not None:
            _check_scenario_name(name)
        if script is not None:
            self.check_script(f"{name or current.name}.js", script)
        try:
            self.db.execute("UPDATE scenarios SET name = ?, script = ?, modified = ? WHERE id = ?",
                            (name or current.name, current.script if script is None else script, time.time(),
                             scenario_id))
        except sqlite3.IntegrityError:
            raise Conflict(f"scenario {name!r} already exists") from None
        return self.scenario(id=scenario_id)

    def delete_scenario(self, scenario_id: int) -> None:
        """The scenario, and its place in every rule."""
        if not self.db.execute("DELETE FROM scenarios WHERE id = ?", (scenario_id,)).rowcount:
            raise NotFound(f"no scenario {scenario_id}")

    def scenario(self, *, id: int | None = None, name: str | None = None) -> Scenario:
        rows = self.db.query(
            "SELECT id, name, script, modified, application_id FROM scenarios WHERE id = ? OR name = ?", (id, name)
        )
        if not rows:
            raise NotFound(f"no scenario {name if name is not None else id!r}")
        r = rows[0]
        return Scenario(r["id"], r["name"], r["script"], r["modified"], r["application_id"])

    def scenarios(self) -> list[Scenario]:
        rows = self.db.query("SELECT id, name, script, modified, application_id FROM scenarios ORDER BY id")
        return [Scenario(r["id"], r["name"], r["script"], r["modified"], r["application_id"]) for r in rows]

    # Rules

    def put_rule(
        self,
        application_id: int,
        name: str,
        pattern: str,
        scenario_names: Sequence[str],
        pattern_exclude: str = "",
    ) -> Rule:
        """Create or update a rule (kept at its place, new ones go last) with its ordered scenarios."""
        _check_rule(name, pattern, pattern_exclude)
        if len(set(scenario_names)) != len(scenario_names):
            raise StoreError(f"rule {name!r} lists a scenario twice")
        scenario_ids = [self.scenario(name=s).id for s in scenario_names]
        now = time.time()
        existing = self.db.query(
            "SELECT id FROM rules WHERE application_id = ? AND name = ?", (application_id, name)
        )
        if existing:
            rule_id = int(existing[0]["id"])
            self.db.execute(
                "UPDATE rules SET pattern = ?, pattern_exclude = ?, modified = ? WHERE id = ? "
                "AND (pattern != ? OR pattern_exclude != ?)",
                (pattern, pattern_exclude, now, rule_id, pattern, pattern_exclude),
            )
        else:
            position = self.db.query(
                "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM rules WHERE application_id = ?",
                (application_id,),
            )[0]["p"]
            cur = self.db.execute(
                "INSERT INTO rules (application_id, name, pattern, pattern_exclude, position, created, "
                "modified) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (application_id, name, pattern, pattern_exclude, position, now, now),
            )
            rule_id = int(cur.lastrowid or 0)
        self._set_scenarios(rule_id, scenario_ids)
        return self.rule(rule_id)

    def add_rule(self, application_id: int, name: str, pattern: str, pattern_exclude: str = "",
                 scenario_ids: Sequence[int] = (), video_conference: bool = False) -> Rule:
        """A new rule, after the application's others; Conflict if the application has one of that name."""
        _check_rule(name, pattern, pattern_exclude)
        if self.db.query("SELECT 1 FROM rules WHERE application_id = ? AND name = ?", (application_id, name)):
            raise Conflict(f"the application already has a rule {name!r}")
        for scenario_id in scenario_ids:
            self.scenario(id=scenario_id)
        if len(set(scenario_ids)) != len(scenario_ids):
            raise StoreError("a scenario is listed twice")
        now = time.time()
        position = self.db.query(
            "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM rules WHERE application_id = ?", (application_id,)
        )[0]["p"]
        cur = self.db.execute(
            "INSERT INTO rules (application_id, name, pattern, pattern_exclude, video_conference, position, created, "
            "modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (application_id, name, pattern, pattern_exclude, video_conference, position, now, now))
        rule_id = int(cur.lastrowid or 0)
        self._set_scenarios(rule_id, scenario_ids)
        return self.rule(rule_id)

    def update_rule(self, rule_id: int, *, name: str | None = None, pattern: str | None = None,
                    pattern_exclude: str | None = None, video_conference: bool | None = None) -> Rule:
        rule = self.rule(rule_id)
        new_name = rule.name if name is None else name
        new_pattern = rule.pattern if pattern is None else pattern
        new_exclude = rule.pattern_exclude if pattern_exclude is None else pattern_exclude
        _check_rule(new_name, new_pattern, new_exclude)
        if new_name != rule.name and self.db.query(
                "SELECT 1 FROM rules WHERE application_id = ? AND name = ?", (rule.application_id, new_name)):
            raise Conflict(f"the application already has a rule {new_name!r}")
        self.db.execute(
            "UPDATE rules SET name = ?, pattern = ?, pattern_exclude = ?, video_conference = ?, modified = ? "
            "WHERE id = ?",
            (new_name, new_pattern, new_exclude,
             rule.video_conference if video_conference is None else video_conference, time.time(), rule_id))
        return self.rule(rule_id)

    def delete_rule(self, rule_id: int) -> None:
        if not self.db.execute("DELETE FROM rules WHERE id = ?", (rule_id,)).rowcount:
            raise NotFound(f"no rule {rule_id}")

    def bind_scenarios(self, rule_id: int, scenario_ids: Sequence[int], bind: bool) -> Rule:
        """Add the scenarios to the end of the rule's list (those not in it yet), or take them out."""
        rule = self.rule(rule_id)
        for scenario_id in scenario_ids:
            self.scenario(id=scenario_id)
        if bind:
            ids = list(rule.scenario_ids) + [s for s in dict.fromkeys(scenario_ids) if s not in rule.scenario_ids]
        else:
            ids = [s for s in rule.scenario_ids if s not in scenario_ids]
        self._set_scenarios(rule_id, ids)
        return self.rule(rule_id)

    def reorder_scenarios(self, rule_id: int, scenario_ids: Sequence[int]) -> Rule:
        """Run the rule's scenarios in this order, which must list each of them once."""
        rule = self.rule(rule_id)
        if sorted(scenario_ids) != sorted(rule.scenario_ids):
            raise StoreError("the new order must list every scenario of the rule once")
        self._set_scenarios(rule_id, scenario_ids)
        return self.rule(rule_id)

    def _set_scenarios(self, rule_id: int, scenario_ids: Sequence[int]) -> None:
        """The rule's scenarios, in order; its modification time changes only if they do."""
        current = self.db.query("SELECT scenario_id FROM rule_scenarios WHERE rule_id = ? ORDER BY position",
                                (rule_id,))
        if [r["scenario_id"] for r in current] == list(scenario_ids):
            return
        self.db.execute("DELETE FROM rule_scenarios WHERE rule_id = ?", (rule_id,))
        for position, scenario_id in enumerate(scenario_ids):
            self.db.execute("INSERT INTO rule_scenarios (rule_id, scenario_id, position) VALUES (?, ?, ?)",
                            (rule_id, scenario_id, position))
        self.db.execute("UPDATE rules SET modified = ? WHERE id = ?", (time.time(), rule_id))

    def reorder_rules(self, application_id: int, rule_ids: Sequence[int]) -> None:
        current = {r.id for r in self.rules(application_id)}
        if set(rule_ids) != current or len(rule_ids) != len(current):
            raise StoreError("the new order must list every rule of the application once")
        for position, rule_id in enumerate(rule_ids):
            self.db.execute("UPDATE rules SET position = ? WHERE id = ?", (position, rule_id))

    def rule(self, rule_id: int) -> Rule:
        rules = self._rules("WHERE r.id = ?", (rule_id,))
        if not rules:
            raise NotFound(f"no rule {rule_id}")
        return rules[0]

    def rules(self, application_id: int | None = None) -> list[Rule]:
        """Rules in routing order: applications in creation order, rules by position."""
        if application_id is None:
            return self._rules("", ())
        return self._rules("WHERE r.application_id = ?", (application_id,))

    def _rules(self, where: str, params: tuple[int, ...]) -> list[Rule]:
        rows = self.db.query(
            "SELECT r.id, r.application_id, r.name, r.pattern, r.pattern_exclude, r.position, r.video_conference, "
            "r.modified, "
            "(SELECT group_concat(scenario_id) FROM (SELECT scenario_id FROM rule_scenarios "
            " WHERE rule_id = r.id ORDER BY position)) AS scenario_ids "
            f"FROM rules r {where} ORDER BY r.application_id, r.position",
            params,
        )
        return [
            Rule(
                r["id"],
                r["application_id"],
                r["name"],
                r["pattern"],
                r["pattern_exclude"],
                r["position"],
                tuple(int(x) for x in (r["scenario_ids"] or "").split(",") if x),
                bool(r["video_conference"]),
                r["modified"],
            )
            for r in rows
        ]


def _check_application_name(name: str) -> None:
    if not APPLICATION_NAME.match(name):
        raise StoreError(f"invalid application name {name!r}: up to 200 of [A-Za-z0-9_.-], starting with a letter "
                         "or digit")


def _check_scenario_name(name: str) -> None:
    if not SCENARIO_NAME.match(name):
        raise StoreError(f"invalid scenario name {name!r}: up to 100 of [A-Za-z0-9_.-]")
