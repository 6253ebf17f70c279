"""Loading a voxengine-ci folder: layouts, rules file formats, TypeScript output, problems, atomicity."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from appliance import voxfiles
from appliance.engine.engine import check_script
from appliance.store.catalog import Catalog, Rule
from appliance.store.db import Database, StoreError
from appliance.voxfiles import VoxfilesError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "scenarios" / "voxfiles"

JS_A = "// scenario a\nVoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());\n"
JS_B = "// scenario b\nlet b = 1;\n"
JS_C = "// scenario c\nlet c = 2;\n"


@pytest.fixture
def catalog() -> Iterator[Catalog]:
    db = Database(":memory:")
    yield Catalog(db, check_script)
    db.close()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _app(root: Path, folder: str, name: str | None = None, rules: list[dict[str, Any]] | None = None) -> Path:
    app_dir = root / "applications" / folder
    _write(app_dir / "application.config.json", json.dumps({"applicationName": name or folder}))
    if rules is not None:
        _write(app_dir / "rules.config.json", json.dumps(rules, indent=2))
    return app_dir


def _rule(name: str, pattern: str, *scenarios: str) -> dict[str, Any]:
    return {"ruleName": name, "rulePattern": pattern, "scenarios": list(scenarios)}


def _shared(root: Path, name: str, script: str) -> None:
    _write(root / "scenarios" / "src" / f"{name}.voxengine.js", script)


def _snapshot(catalog: Catalog) -> tuple[Any, ...]:
    return (
        [(a.id, a.name) for a in catalog.applications()],
        [(s.id, s.name, s.script) for s in catalog.scenarios()],
        catalog.rules(),
    )


def _rules(catalog: Catalog, app_name: str) -> list[tuple[str, str, list[str]]]:
    app = catalog.application(name=app_name)
    names = {s.id: s.name for s in catalog.scenarios()}
    return [(r.name, r.pattern, [names[i] for i in r.scenario_ids]) for r in catalog.rules(app.id)]


# Layouts and formats


def test_old_layout_shared_scenarios(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    _shared(tmp_path, "b", JS_B)
    _shared(tmp_path, "unused", "this is not even javascript (")
    _app(tmp_path, "one", rules=[_rule("r1", "1.*", "a", "b")])
    _app(tmp_path, "two", rules=[_rule("r2", ".*", "b")])
    files = voxfiles.load(tmp_path, catalog)
    assert sorted(files.scenarios) == ["a", "b"]
    assert files.scenarios["a"] == ("scenarios/src/a.voxengine.js", JS_A)
    assert [a.name for a in catalog.applications()] == ["one", "two"]
    assert _rules(catalog, "one") == [("r1", "1.*", ["a", "b"])]
    assert _rules(catalog, "two") == [("r2", ".*", ["b"])]
    assert catalog.scenario(name="b").script == JS_B
    # Only scenarios used by a rule are read and stored.
    assert sorted(s.name for s in catalog.scenarios()) == ["a", "b"]


def test_per_application_layout(tmp_path: Path, catalog: Catalog) -> None:
    app_dir = _app(tmp_path, "folder-name", name="sales", rules=[_rule("in", ".*", "own", "common")])
    _write(app_dir / "scenarios" / "src" / "own.voxengine.js", JS_A)
    _shared(tmp_path, "common", JS_B)
    files = voxfiles.load(tmp_path, catalog)
    assert files.scenarios["own"] == ("applications/folder-name/scenarios/src/own.voxengine.js", JS_A)
    assert files.scenarios["common"] == ("scenarios/src/common.voxengine.js", JS_B)
    assert [a.name for a in catalog.applications()] == ["sales"]
    assert _rules(catalog, "sales") == [("in", ".*", ["own", "common"])]


def test_application_own_scenario_wins_over_shared(tmp_path: Path, catalog: Catalog) -> None:
    app_dir = _app(tmp_path, "app", rules=[_rule("r", ".*", "main")])
    _write(app_dir / "scenarios" / "src" / "main.voxengine.js", JS_A)
    _shared(tmp_path, "main", JS_B)
    voxfiles.load(tmp_path, catalog)
    assert catalog.scenario(name="main").script == JS_A


def test_same_scenario_name_in_two_applications(tmp_path: Path, catalog: Catalog) -> None:
    # Scenario names are account-wide: the same file content is one scenario, different content a problem.
    for folder in ("one", "two"):
        app_dir = _app(tmp_path, folder, rules=[_rule(f"r-{folder}", ".*", "main")])
        _write(app_dir / "scenarios" / "src" / "main.voxengine.js", JS_A)
    assert voxfiles.load(tmp_path, catalog).scenarios["main"][1] == JS_A
    _write(tmp_path / "applications" / "two" / "scenarios" / "src" / "main.voxengine.js", JS_B)
    with pytest.raises(VoxfilesError) as err:
        voxfiles.read(tmp_path)
    assert err.value.problems == [
        "scenario 'main' differs between applications/one/scenarios/src/main.voxengine.js and "
        "applications/two/scenarios/src/main.voxengine.js: scenario names are shared by all applications, "
        "so rename one"
    ]


def test_own_scenario_against_shared_one_used_elsewhere(tmp_path: Path, catalog: Catalog) -> None:
    app_dir = _app(tmp_path, "one", rules=[_rule("r1", ".*", "main")])
    _write(app_dir / "scenarios" / "src" / "main.voxengine.js", JS_A)
    _app(tmp_path, "two", rules=[_rule("r2", ".*", "main")])
    _shared(tmp_path, "main", JS_B)
    with pytest.raises(VoxfilesError) as err:
        voxfiles.read(tmp_path)
    assert len(err.value.problems) == 1
    assert "differs between applications/one/scenarios/src/main.voxengine.js and scenarios/src/main" in (
        err.value.problems[0])


def test_rules_yaml(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    _shared(tmp_path, "b", JS_B)
    app_dir = _app(tmp_path, "yml")
    _write(
        app_dir / "rules.config.yml",
        "- ruleName: second-in-name\n"
        "  rulePattern: '\\d+'\n"
        "  scenarios: [b, a]\n"
        "- ruleName: catch-all\n"
        "  scenarios:\n"
        "    - a\n",
    )
    voxfiles.load(tmp_path, catalog)
    assert _rules(catalog, "yml") == [("second-in-name", r"\d+", ["b", "a"]), ("catch-all", ".*", ["a"])]


def test_rules_toml(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    _shared(tmp_path, "c", JS_C)
    app_dir = _app(tmp_path, "tml")
    _write(
        app_dir / "rules.config.toml",
        '[[rules]]\nruleName = "z-first"\nrulePattern = "+?[1-9]\\\\d{1,14}"\nscenarios = ["c"]\n\n'
        '[[rules]]\nruleName = "a-second"\nrulePattern = ".*"\nscenarios = ["a", "c"]\n',
    )
    voxfiles.load(tmp_path, catalog)
    assert _rules(catalog, "tml") == [("z-first", r"+?[1-9]\d{1,14}", ["c"]), ("a-second", ".*", ["a", "c"])]


def test_application_without_rules_file(tmp_path: Path, catalog: Catalog) -> None:
    _app(tmp_path, "bare")
    files = voxfiles.load(tmp_path, catalog)
    assert [a.name for a in files.applications] == ["bare"]
    assert [a.name for a in catalog.applications()] == ["bare"]
    assert catalog.rules() == []


def test_typescript_scenario_taken_from_dist(tmp_path: Path, catalog: Catalog) -> None:
    _write(tmp_path / "scenarios" / "src" / "ts.voxengine.ts", "const x: number = 1;\n")
    _write(tmp_path / "scenarios" / "dist" / "ts.voxengine.js", "const x = 1;\n")
    _app(tmp_path, "app", rules=[_rule("r", ".*", "ts")])
    files = voxfiles.load(tmp_path, catalog)
    assert files.scenarios["ts"] == ("scenarios/dist/ts.voxengine.js", "const x = 1;\n")
    assert catalog.scenario(name="ts").script == "const x = 1;\n"


def test_typescript_scenario_without_dist_reported(tmp_path: Path, catalog: Catalog) -> None:
    _write(tmp_path / "scenarios" / "src" / "ts.voxengine.ts", "const x: number = 1;\n")
    _app(tmp_path, "app", rules=[_rule("r", ".*", "ts")])
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("scenarios/dist/ts.voxengine.js: missing")
    assert "tsc" in info.value.problems[0]
    assert catalog.applications() == []


def test_not_a_voxfiles_folder(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert info.value.problems == ["applications: missing (not a voxfiles folder?)"]


def test_several_rules_files_refused(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    app_dir = _app(tmp_path, "app", rules=[_rule("r", ".*", "a")])
    _write(app_dir / "rules.config.yml", "[]\n")
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("applications/app: several rules files")


# Load into the catalog


def test_load_rule_order_is_file_order(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    names = ["zeta", "alpha", "mid", "beta"]
    _app(tmp_path, "app", rules=[_rule(n, f"{n}.*", "a") for n in names])
    voxfiles.load(tmp_path, catalog)
    assert [r[0] for r in _rules(catalog, "app")] == names
    # Changing the order in the file reorders the stored rules on the next load.
    _app(tmp_path, "app", rules=[_rule(n, f"{n}.*", "a") for n in reversed(names)])
    voxfiles.load(tmp_path, catalog)
    assert [r[0] for r in _rules(catalog, "app")] == list(reversed(names))
    assert len(catalog.rules()) == 4


def test_load_twice_is_idempotent(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    _shared(tmp_path, "b", JS_B)
    _app(tmp_path, "one", rules=[_rule("r1", "1", "a"), _rule("r2", "2", "b", "a")])
    _app(tmp_path, "two", rules=[_rule("r1", ".*", "b")])
    voxfiles.load(tmp_path, catalog)
    first = _snapshot(catalog)
    voxfiles.load(tmp_path, catalog)
    assert _snapshot(catalog) == first
    assert len(catalog.applications()) == 2
    assert len(catalog.scenarios()) == 2
    assert len(catalog.rules()) == 3


def test_reload_updates_scripts_and_patterns(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    _app(tmp_path, "app", rules=[_rule("r", "1", "a")])
    voxfiles.load(tmp_path, catalog)
    rule_id = catalog.rules()[0].id
    _shared(tmp_path, "a", JS_B)
    _app(tmp_path, "app", rules=[_rule("r", "2", "a")])
    voxfiles.load(tmp_path, catalog)
    assert catalog.scenario(name="a").script == JS_B
    assert [(r.id, r.pattern) for r in catalog.rules()] == [(rule_id, "2")]


# Problems


def test_malformed_folder_reports_every_problem(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "good", JS_A)
    _shared(tmp_path, "x", "// fine\n// still fine\nfunction f() {\n  return 1 +;\n}\n")
    _write(tmp_path / "applications" / "badjson" / "application.config.json", '{\n  "applicationName":\n}\n')
    _write(tmp_path / "applications" / "noname" / "application.config.json", '{"name": "x"}')
    _app(
        tmp_path,
        "rules",
        rules=[
            _rule("ghost-rule", ".*", "ghost"),
            _rule("bad-regex", "(unclosed", "good"),
            _rule("twice", "1", "good"),
            _rule("twice", "2", "good"),
            _rule("syntax", ".*", "x"),
        ],
    )
    broken_rules = _app(tmp_path, "rulesjson")
    _write(broken_rules / "rules.config.json", '[\n  {"ruleName": "a",}\n]\n')

    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    problems = info.value.problems

    def one(prefix: str, *parts: str) -> str:
        found = [p for p in problems if p.startswith(prefix) and all(part in p for part in parts)]
        assert len(found) == 1, (prefix, parts, problems)
        return found[0]

    one("applications/badjson/application.config.json:3: invalid JSON")
    one("applications/noname/application.config.json:", "applicationName")
    one("applications/rules/rules.config.json: rule 'ghost-rule'", "'ghost'", "not found")
    one("applications/rules/rules.config.json: rule 'bad-regex'", "(unclosed")
    one("applications/rules/rules.config.json: rule 'twice'", "defined twice")
    one("applications/rulesjson/rules.config.json:2: invalid JSON")
    one("scenarios/src/x.voxengine.js:4:", "SyntaxError")
    assert len(problems) == 7, problems
    for problem in problems:
        assert problem in str(info.value)
    assert str(tmp_path) in str(info.value)
    # Nothing was written.
    assert catalog.applications() == []
    assert catalog.scenarios() == []
    assert catalog.rules() == []


def test_syntax_error_alone_reported_with_file_line_column(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "x", "let ok = 1;\nlet broken = ;\n")
    _app(tmp_path, "app", rules=[_rule("r", ".*", "x")])
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("scenarios/src/x.voxengine.js:2:14: SyntaxError")


@pytest.mark.parametrize(
    ("rules_text", "expected"),
    [
        ('{"ruleName": "r"}', "must be a list of rules"),
        ('[{"rulePattern": ".*"}]', 'rule 1: needs a string "ruleName"'),
        ('[{"ruleName": "r", "rulePattern": 5}]', '"rulePattern" must be a string'),
        ('[{"ruleName": "r", "scenarios": "a"}]', '"scenarios" must be a list'),
    ],
)
def test_bad_rule_shapes(tmp_path: Path, catalog: Catalog, rules_text: str, expected: str) -> None:
    _shared(tmp_path, "a", JS_A)
    app_dir = _app(tmp_path, "app")
    _write(app_dir / "rules.config.json", rules_text)
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("applications/app/rules.config.json: ")
    assert expected in info.value.problems[0]


def test_failed_load_leaves_store_unchanged(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    _shared(tmp_path, "b", JS_B)
    _app(tmp_path, "one", rules=[_rule("r1", "1", "a"), _rule("r2", "2", "b")])
    voxfiles.load(tmp_path, catalog)
    before = _snapshot(catalog)

    # A second push changes a script, adds an application and reorders rules, but one scenario is broken.
    _shared(tmp_path, "a", JS_C)
    _shared(tmp_path, "broken", "function (\n")
    _app(tmp_path, "one", rules=[_rule("r2", "22", "b"), _rule("r1", "11", "a")])
    _app(tmp_path, "two", rules=[_rule("r3", ".*", "broken")])
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert [p.split(":", 1)[0] for p in info.value.problems] == ["scenarios/src/broken.voxengine.js"]
    assert _snapshot(catalog) == before


class _FailingCatalog(Catalog):
    """A store that refuses one rule, as a disk or constraint failure in the middle of the write would."""

    def put_rule(
        self, application_id: int, name: str, pattern: str, scenario_names: Sequence[str],
        pattern_exclude: str = "",
    ) -> Rule:
        if name == "refused":
            raise StoreError("refused by the store")
        return super().put_rule(application_id, name, pattern, scenario_names, pattern_exclude)


def test_failed_write_rolls_back(tmp_path: Path) -> None:
    """A refusal by the store itself in the middle of the write leaves nothing half-written."""
    db = Database(tmp_path / "store.db")
    try:
        catalog = _FailingCatalog(db, check_script)
        _shared(tmp_path, "a", JS_A)
        _shared(tmp_path, "b", JS_B)
        _app(tmp_path, "one", rules=[_rule("r1", "1", "a")])
        voxfiles.load(tmp_path, catalog)
        before = _snapshot(catalog)

        _shared(tmp_path, "a", JS_C)
        _app(tmp_path, "one", rules=[_rule("r0", "0", "b"), _rule("r1", "11", "a")])
        _app(tmp_path, "two", rules=[_rule("ok", ".*", "a"), _rule("refused", ".*", "b")])
        with pytest.raises(StoreError, match="refused by the store"):
            voxfiles.load(tmp_path, catalog)
        assert _snapshot(catalog) == before
        with db.transaction():  # no transaction was left open
            pass
    finally:
        db.close()
    reopened = Database(tmp_path / "store.db")
    try:
        assert _snapshot(Catalog(reopened, check_script)) == before
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("configs", "expected"),
    [
        ({"a": "has space"}, "applications/a/application.config.json: invalid application name 'has space'"),
        (
            {"a": "same", "b": "same"},
            "applications/b/application.config.json: application 'same' defined twice",
        ),
    ],
)
def test_bad_application_names_reported(
    tmp_path: Path, catalog: Catalog, configs: dict[str, str], expected: str
) -> None:
    for folder, name in configs.items():
        _app(tmp_path, folder, name=name)
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    assert info.value.problems == [expected]
    assert catalog.applications() == []


def test_rule_problems_for_long_name_and_repeated_scenario(tmp_path: Path, catalog: Catalog) -> None:
    _shared(tmp_path, "a", JS_A)
    long_name = "r" * 101
    _app(tmp_path, "app", rules=[_rule(long_name, ".*", "a"), _rule("dup", ".*", "a", "a")])
    with pytest.raises(VoxfilesError) as info:
        voxfiles.load(tmp_path, catalog)
    where = "applications/app/rules.config.json"
    assert info.value.problems == [
        f"{where}: rule {long_name!r}: rule names are limited to 100 characters",
        f"{where}: rule 'dup': a scenario is listed twice",
    ]
    assert catalog.rules() == []


def test_read_reports_without_store(tmp_path: Path) -> None:
    _app(tmp_path, "app", rules=[_rule("r", ".*", "nope")])
    with pytest.raises(VoxfilesError) as info:
        voxfiles.read(tmp_path)
    assert info.value.problems == [
        "applications/app/rules.config.json: rule 'r': scenario 'nope' not found in scenarios/src"
    ]


# The example shipped with the project


def test_example_tree_loads(catalog: Catalog) -> None:
    files = voxfiles.load(EXAMPLE, catalog)
    assert [a.name for a in files.applications] == ["demo"]
    assert sorted(files.scenarios) == ["conference", "forward", "hello", "ivr", "remote-control", "ringgroup",
                                       "voicemail"]
    assert _rules(catalog, "demo") == [
        ("remote-control", "remote", ["remote-control"]),
        ("ivr", "500", ["ivr"]),
        ("forward", "6.+", ["forward"]),
        ("conference", "700", ["conference"]),
        ("conference-room", "conf-.+", ["conference"]),
        ("voicemail", "800", ["voicemail"]),
        ("ringgroup", "900", ["ringgroup"]),
        ("hello", ".*", ["hello"]),
    ]
    assert catalog.scenario(name="hello").script == (EXAMPLE / "scenarios/src/hello.voxengine.js").read_text()
