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


@dataclass(frozen=True)
class Scenario:
    id: int
    name: str
    script: str
    modified: float


@dataclass(frozen=True)
class Rule:
    id: int
    application_id: int
    name: str
    pattern: str
    pattern_exclude: str
    position: int
    scenario_ids: tuple[int, ...]


class Catalog:
    def __init__(self, db: Database, check_script: ScriptChecker) -> None:
        self.db = db
        self.check_script = check_script

    # Applications

    def add_application(self, name: str) -> Application:
        if not APPLICATION_NAME.match(name):
            raise StoreError(f"invalid application name {name!r}")
        now = time.time()
        try:
            cur = self.db.execute(
                "INSERT INTO applications (name, created, modified) VALUES (?, ?, ?)", (name, now, now)
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"application {name!r} already exists") from None
        return Application(int(cur.lastrowid or 0), name, now, now)

    def applications(self) -> list[Application]:
        rows = self.db.query("SELECT id, name, created, modified FROM applications ORDER BY id")
        return [Application(r["id"], r["name"], r["created"], r["modified"]) for r in rows]

    def application(self, *, id: int | None = None, name: str | None = None) -> Application:
        for app in self.applications():
            if app.id == id or app.name == name:
                return app
        raise NotFound(f"no application {name if name is not None else id!r}")

    # Scenarios

    def put_scenario(self, name: str, script: str, filename: str | None = None) -> Scenario:
        """Create or replace a scenario after the checker accepted its script."""
        if not SCENARIO_NAME.match(name):
            raise StoreError(f"invalid scenario name {name!r}: letters, digits, '_', '-', '.' only")
        self.check_script(filename or name, script)
        now = time.time()
        self.db.execute(
            "INSERT INTO scenarios (name, script, created, modified) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET script = excluded.script, modified = excluded.modified",
            (name, script, now, now),
        )
        return self.scenario(name=name)

    def scenario(self, *, id: int | None = None, name: str | None = None) -> Scenario:
        rows = self.db.query(
            "SELECT id, name, script, modified FROM scenarios WHERE id = ? OR name = ?", (id, name)
        )
        if not rows:
            raise NotFound(f"no scenario {name if name is not None else id!r}")
        r = rows[0]
        return Scenario(r["id"], r["name"], r["script"], r["modified"])

    def scenarios(self) -> list[Scenario]:
        rows = self.db.query("SELECT id, name, script, modified FROM scenarios ORDER BY id")
        return [Scenario(r["id"], r["name"], r["script"], r["modified"]) for r in rows]

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
        if not name or len(name) > RULE_NAME_MAX:
            raise StoreError(f"invalid rule name {name!r}")
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
                "UPDATE rules SET pattern = ?, pattern_exclude = ?, modified = ? WHERE id = ?",
                (pattern, pattern_exclude, now, rule_id),
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
        self.db.execute("DELETE FROM rule_scenarios WHERE rule_id = ?", (rule_id,))
        for position, scenario_id in enumerate(scenario_ids):
            self.db.execute(
                "INSERT INTO rule_scenarios (rule_id, scenario_id, position) VALUES (?, ?, ?)",
                (rule_id, scenario_id, position),
            )
        return self.rule(rule_id)

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
            "SELECT r.id, r.application_id, r.name, r.pattern, r.pattern_exclude, r.position, "
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
            )
            for r in rows
        ]
