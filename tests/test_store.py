"""The store: database and migrations, catalog, key-value storage, secrets, API keys, history."""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.engine.engine import check_script
from appliance.engine.errors import ScriptSyntaxError
from appliance.store.apikeys import ApiKeys
from appliance.store.catalog import Application, Catalog
from appliance.store.db import DEFAULT_ACCOUNT_ID, Conflict, Database, NotFound, StoreError, _migrations
from appliance.store.history import History, SessionRecord
from appliance.store.kv import TTL_MAX_SECONDS, KeyValueStore
from appliance.store.secrets import SecretStore

NOW = 1_700_000_000.0
GOOD_JS = "VoxEngine.addEventListener(AppEvents.Started, () => VoxEngine.terminate());\n"


@pytest.fixture
def db() -> Iterator[Database]:
    database = Database(":memory:")
    yield database
    database.close()


@pytest.fixture
def catalog(db: Database) -> Catalog:
    return Catalog(db, check_script)


@pytest.fixture
def app(catalog: Catalog) -> Application:
    return catalog.add_application("app1")


def _table_names(db: Database) -> set[str]:
    return {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


# Database


def test_new_database_has_latest_schema_and_tables(tmp_path: Path) -> None:
    db = Database(tmp_path / "sub" / "store.db")
    try:
        latest = max(version for version, _, _ in _migrations())
        assert latest >= 1
        assert db.schema_version == latest
        assert {"account", "applications", "scenarios", "rules", "rule_scenarios", "kv", "secrets",
                "api_keys", "call_sessions"} <= _table_names(db)
    finally:
        db.close()
    assert (tmp_path / "sub" / "store.db").is_file()


def test_default_account_row(tmp_path: Path) -> None:
    db = Database(tmp_path / "store.db", account_name="box-7")
    try:
        rows = db.query("SELECT id, name FROM account")
        assert [(r["id"], r["name"]) for r in rows] == [(DEFAULT_ACCOUNT_ID, "box-7")]
    finally:
        db.close()


def test_reopen_keeps_data_and_does_not_reapply_migrations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.db"
    caplog.set_level(logging.INFO, logger="appliance.store.db")
    db = Database(path, account_name="first")
    catalog = Catalog(db, check_script)
    catalog.add_application("kept")
    catalog.put_scenario("s1", GOOD_JS)
    version = db.schema_version
    db.close()
    applied_first = [r for r in caplog.records if "applying migration" in r.getMessage()]
    assert len(applied_first) == len(_migrations())

    caplog.clear()
    db2 = Database(path, account_name="second")
    try:
        assert not [r for r in caplog.records if "applying migration" in r.getMessage()]
        assert db2.schema_version == version
        catalog2 = Catalog(db2, check_script)
        assert [a.name for a in catalog2.applications()] == ["kept"]
        assert catalog2.scenario(name="s1").script == GOOD_JS
        # The account row is created once: reopening with another name does not add or rename it.
        rows = db2.query("SELECT id, name FROM account")
        assert [(r["id"], r["name"]) for r in rows] == [(DEFAULT_ACCOUNT_ID, "first")]
    finally:
        db2.close()


def test_close_twice_is_safe(tmp_path: Path) -> None:
    db = Database(tmp_path / "store.db")
    db.close()
    db.close()


def test_transaction_rolls_back_on_exception(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.transaction() as conn:
        conn.execute("INSERT INTO applications (name, created, modified) VALUES ('gone', 0, 0)")
        assert db.query("SELECT COUNT(*) AS n FROM applications")[0]["n"] == 1
        raise RuntimeError("boom")
    assert db.query("SELECT COUNT(*) AS n FROM applications")[0]["n"] == 0
    # The connection is usable again afterwards (no transaction left open).
    with db.transaction() as conn:
        conn.execute("INSERT INTO applications (name, created, modified) VALUES ('kept', 0, 0)")
    assert [r["name"] for r in db.query("SELECT name FROM applications")] == ["kept"]


async def test_call_runs_on_store_thread(db: Database) -> None:
    catalog = Catalog(db, check_script)
    await db.call(catalog.add_application, "viathread")
    assert [a.name for a in await db.call(catalog.applications)] == ["viathread"]


# Catalog: applications


def test_add_application_and_lookup(catalog: Catalog) -> None:
    a = catalog.add_application("alpha")
    b = catalog.add_application("beta.2")
    assert a.id != b.id
    assert [x.name for x in catalog.applications()] == ["alpha", "beta.2"]
    assert catalog.application(name="beta.2").id == b.id
    assert catalog.application(id=a.id).name == "alpha"
    with pytest.raises(NotFound):
        catalog.application(name="nope")


def test_add_application_duplicate_is_conflict(catalog: Catalog) -> None:
    catalog.add_application("dup")
    with pytest.raises(Conflict, match="dup"):
        catalog.add_application("dup")
    assert [a.name for a in catalog.applications()] == ["dup"]


@pytest.mark.parametrize("name", ["", "has space", "-lead", ".lead", "a/b", "x" * 201, "ok\n", "é"])
def test_invalid_application_names_refused(catalog: Catalog, name: str) -> None:
    with pytest.raises(StoreError, match="invalid application name"):
        catalog.add_application(name)
    assert catalog.applications() == []


def test_application_name_at_length_limit_accepted(catalog: Catalog) -> None:
    assert catalog.add_application("a" * 200).name == "a" * 200


# Catalog: scenarios


def test_put_scenario_calls_checker_with_filename(db: Database) -> None:
    calls: list[tuple[str, str]] = []

    def checker(filename: str, script: str) -> None:
        calls.append((filename, script))

    catalog = Catalog(db, checker)
    catalog.put_scenario("one", "a();")
    catalog.put_scenario("two", "b();", filename="scenarios/src/two.voxengine.js")
    assert calls == [("one", "a();"), ("scenarios/src/two.voxengine.js", "b();")]


def test_put_scenario_refuses_script_with_syntax_error(catalog: Catalog) -> None:
    bad = "// line 1\nlet x = ;\n"
    with pytest.raises(ScriptSyntaxError) as info:
        catalog.put_scenario("broken", bad, filename="scenarios/src/broken.voxengine.js")
    assert info.value.filename == "scenarios/src/broken.voxengine.js"
    assert info.value.line == 2
    assert str(info.value).startswith("scenarios/src/broken.voxengine.js:2:")
    assert "SyntaxError" in str(info.value)
    with pytest.raises(NotFound):
        catalog.scenario(name="broken")
    assert catalog.scenarios() == []


def test_put_scenario_replaces_and_rejected_update_keeps_old(catalog: Catalog) -> None:
    first = catalog.put_scenario("main", GOOD_JS)
    second = catalog.put_scenario("main", "let y = 2;")
    assert second.id == first.id
    assert catalog.scenario(name="main").script == "let y = 2;"
    with pytest.raises(ScriptSyntaxError):
        catalog.put_scenario("main", "function (")
    assert catalog.scenario(id=first.id).script == "let y = 2;"
    assert len(catalog.scenarios()) == 1


@pytest.mark.parametrize("name", ["", "a b", "../x", "ok/", "x" * 101, "name\n"])
def test_invalid_scenario_names_refused(db: Database, name: str) -> None:
    calls: list[str] = []
    catalog = Catalog(db, lambda f, s: calls.append(f))
    with pytest.raises(StoreError, match="invalid scenario name"):
        catalog.put_scenario(name, GOOD_JS)
    assert calls == []
    assert catalog.scenarios() == []


# Catalog: rules


def test_put_rule_creates_in_order_and_keeps_scenario_order(catalog: Catalog, app: Application) -> None:
    for name in ("a", "b", "c"):
        catalog.put_scenario(name, GOOD_JS)
    ids = {s.name: s.id for s in catalog.scenarios()}
    r1 = catalog.put_rule(app.id, "first", r"1\d+", ["c", "a", "b"])
    r2 = catalog.put_rule(app.id, "second", ".*", ["b"], pattern_exclude="0.*")
    assert (r1.position, r2.position) == (0, 1)
    assert r1.scenario_ids == (ids["c"], ids["a"], ids["b"])
    assert r2.scenario_ids == (ids["b"],)
    assert r2.pattern_exclude == "0.*"
    assert [r.name for r in catalog.rules(app.id)] == ["first", "second"]
    assert catalog.rule(r1.id) == r1


def test_put_rule_updates_in_place(catalog: Catalog, app: Application) -> None:
    catalog.put_scenario("a", GOOD_JS)
    catalog.put_scenario("b", GOOD_JS)
    r1 = catalog.put_rule(app.id, "first", "1", ["a"])
    catalog.put_rule(app.id, "second", "2", ["a"])
    updated = catalog.put_rule(app.id, "first", "9+", ["b", "a"], pattern_exclude="99")
    assert updated.id == r1.id
    assert updated.position == 0
    assert updated.pattern == "9+"
    assert updated.pattern_exclude == "99"
    assert updated.scenario_ids == (catalog.scenario(name="b").id, catalog.scenario(name="a").id)
    assert [r.name for r in catalog.rules(app.id)] == ["first", "second"]
    assert len(catalog.rules()) == 2


def test_put_rule_refusals(catalog: Catalog, app: Application) -> None:
    catalog.put_scenario("a", GOOD_JS)
    with pytest.raises(NotFound):
        catalog.put_rule(app.id, "r", ".*", ["a", "missing"])
    with pytest.raises(StoreError, match="invalid rule name"):
        catalog.put_rule(app.id, "", ".*", ["a"])
    with pytest.raises(StoreError, match="invalid rule name"):
        catalog.put_rule(app.id, "x" * 101, ".*", ["a"])
    assert catalog.rules() == []
    with pytest.raises(StoreError, match="twice"):
        catalog.put_rule(app.id, "r", ".*", ["a", "a"])
    assert catalog.rules() == []
    assert catalog.put_rule(app.id, "x" * 100, ".*", ["a"]).name == "x" * 100
    with pytest.raises(NotFound):
        catalog.rule(12345)


def test_rules_ordered_by_application_then_position(catalog: Catalog) -> None:
    catalog.put_scenario("s", GOOD_JS)
    first = catalog.add_application("first")
    second = catalog.add_application("second")
    catalog.put_rule(second.id, "s1", ".*", ["s"])
    catalog.put_rule(first.id, "f1", ".*", ["s"])
    catalog.put_rule(second.id, "s2", ".*", ["s"])
    catalog.put_rule(first.id, "f2", ".*", ["s"])
    assert [r.name for r in catalog.rules()] == ["f1", "f2", "s1", "s2"]
    assert [r.name for r in catalog.rules(second.id)] == ["s1", "s2"]


def test_reorder_rules(catalog: Catalog, app: Application) -> None:
    catalog.put_scenario("s", GOOD_JS)
    other = catalog.add_application("other")
    a = catalog.put_rule(app.id, "a", ".*", ["s"])
    b = catalog.put_rule(app.id, "b", ".*", ["s"])
    c = catalog.put_rule(app.id, "c", ".*", ["s"])
    foreign = catalog.put_rule(other.id, "f", ".*", ["s"])
    for bad in ([a.id, b.id], [a.id, b.id, c.id, c.id], [a.id, b.id, foreign.id], [a.id, b.id, c.id, 999]):
        with pytest.raises(StoreError, match="every rule"):
            catalog.reorder_rules(app.id, bad)
        assert [r.name for r in catalog.rules(app.id)] == ["a", "b", "c"]
    catalog.reorder_rules(app.id, [c.id, a.id, b.id])
    assert [r.name for r in catalog.rules(app.id)] == ["c", "a", "b"]
    assert [r.position for r in catalog.rules(app.id)] == [0, 1, 2]
    # A rule added after a reorder goes last.
    assert catalog.put_rule(app.id, "d", ".*", ["s"]).position == 3
    assert [r.name for r in catalog.rules(other.id)] == ["f"]


# Key-value storage


def test_kv_put_get_remove(db: Database, app: Application) -> None:
    kv = KeyValueStore(db)
    item = kv.put(app.id, "k", "v1", 60, NOW)
    assert (item.key, item.value, item.expire_at) == ("k", "v1", int(NOW + 60))
    got = kv.get(app.id, "k", NOW)
    assert got is not None
    assert got.value == "v1"
    kv.put(app.id, "k", "v2", 60, NOW)
    got = kv.get(app.id, "k", NOW)
    assert got is not None
    assert got.value == "v2"
    assert kv.get(app.id, "other", NOW) is None
    kv.remove(app.id, "k")
    assert kv.get(app.id, "k", NOW) is None


def test_kv_is_per_application(catalog: Catalog, db: Database, app: Application) -> None:
    other = catalog.add_application("other")
    kv = KeyValueStore(db)
    kv.put(app.id, "k", "mine", 60, NOW)
    assert kv.get(other.id, "k", NOW) is None
    assert kv.keys(other.id, None, 0, NOW) == []


def test_kv_expiry(db: Database, app: Application) -> None:
    kv = KeyValueStore(db)
    kv.put(app.id, "short", "v", 10, NOW)
    assert kv.get(app.id, "short", NOW + 9) is not None
    assert kv.get(app.id, "short", NOW + 11) is None
    assert kv.keys(app.id, None, 0, NOW + 11) == []
    assert kv.keys(app.id, None, 0, NOW + 5) == ["short"]


def test_kv_ttl_zero_means_ninety_days(db: Database, app: Application) -> None:
    kv = KeyValueStore(db)
    item = kv.put(app.id, "long", "v", 0, NOW)
    assert item.expire_at == int(NOW + 90 * 86400)
    assert kv.get(app.id, "long", NOW + 90 * 86400 - 1) is not None
    assert kv.get(app.id, "long", NOW + 90 * 86400 + 1) is None


def test_kv_purge_expired(db: Database, app: Application) -> None:
    kv = KeyValueStore(db)
    kv.put(app.id, "a", "v", 10, NOW)
    kv.put(app.id, "b", "v", 20, NOW)
    kv.put(app.id, "c", "v", 100, NOW)
    assert kv.purge_expired(NOW + 15) == 1
    assert [r["key"] for r in db.query("SELECT key FROM kv ORDER BY key")] == ["b", "c"]
    assert kv.purge_expired(NOW + 15) == 0
    assert kv.purge_expired(NOW + 1000) == 2
    assert db.query("SELECT COUNT(*) AS n FROM kv")[0]["n"] == 0


def test_kv_keys_namespace_glob_and_count(db: Database, app: Application) -> None:
    kv = KeyValueStore(db)
    for key in ("test:2", "test:1", "testing", "other:1", "x"):
        kv.put(app.id, key, "v", 60, NOW)
    assert kv.keys(app.id, None, 0, NOW) == ["other:1", "test:1", "test:2", "testing", "x"]
    assert kv.keys(app.id, "test", 0, NOW) == ["test:1", "test:2"]
    assert kv.keys(app.id, "test*", 0, NOW) == ["test:1", "test:2", "testing"]
    assert kv.keys(app.id, "*:1", 0, NOW) == ["other:1", "test:1"]
    assert kv.keys(app.id, "nothing", 0, NOW) == []
    assert kv.keys(app.id, None, 2, NOW) == ["other:1", "test:1"]


def test_kv_limits(db: Database, app: Application) -> None:
    kv = KeyValueStore(db)
    kv.put(app.id, "k" * 200, "v" * 2000, TTL_MAX_SECONDS, NOW)
    assert TTL_MAX_SECONDS == 7_776_000
    with pytest.raises(StoreError, match="key"):
        kv.put(app.id, "k" * 201, "v", 60, NOW)
    with pytest.raises(StoreError, match="key"):
        kv.put(app.id, "", "v", 60, NOW)
    with pytest.raises(StoreError, match="value"):
        kv.put(app.id, "k", "v" * 2001, 60, NOW)
    with pytest.raises(StoreError, match="ttl"):
        kv.put(app.id, "k", "v", 7_776_001, NOW)
    with pytest.raises(StoreError, match="ttl"):
        kv.put(app.id, "k", "v", -1, NOW)
    with pytest.raises(StoreError):
        kv.get(app.id, "k" * 201, NOW)
    assert [r["key"] for r in db.query("SELECT key FROM kv")] == ["k" * 200]


# Secrets


def test_secrets_put_and_values(catalog: Catalog, db: Database, app: Application) -> None:
    other = catalog.add_application("other")
    secrets = SecretStore(db)
    secrets.put(app.id, "API_TOKEN", "t1")
    secrets.put(app.id, "b2", "x" * 8192, description="max")
    secrets.put(other.id, "API_TOKEN", "t-other")
    secrets.put(app.id, "API_TOKEN", "t2")
    assert secrets.values(app.id) == {"API_TOKEN": "t2", "b2": "x" * 8192}
    assert secrets.values(other.id) == {"API_TOKEN": "t-other"}


@pytest.mark.parametrize("name", ["", "1abc", "_x", "has-dash", "a b", "x" * 65, "tok\n"])
def test_secret_name_rules(db: Database, app: Application, name: str) -> None:
    secrets = SecretStore(db)
    with pytest.raises(StoreError, match="secret name"):
        secrets.put(app.id, name, "v")
    assert secrets.values(app.id) == {}


def test_secret_value_limit(db: Database, app: Application) -> None:
    secrets = SecretStore(db)
    secrets.put(app.id, "x" * 64, "v")
    with pytest.raises(StoreError, match="secret value"):
        secrets.put(app.id, "big", "x" * 8193)
    assert secrets.values(app.id) == {"x" * 64: "v"}


# API keys


def test_api_keys_store_only_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = Database(path)
    keys = ApiKeys(db)
    key_id, key = keys.create("ci")
    _, other = keys.create()
    assert re.fullmatch(r"[0-9a-f-]{36}", key_id)
    assert key != other
    assert len(key) >= 40
    rows = db.query("SELECT * FROM api_keys ORDER BY id")
    assert [r["description"] for r in rows] == ["ci", ""]
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    for row in rows:
        for value in tuple(row):
            assert key not in str(value)
            assert other not in str(value)
    db.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert hashlib.sha256(key.encode()).hexdigest().encode() in on_disk
    assert key.encode() not in on_disk
    assert other.encode() not in on_disk


def test_api_keys_check(db: Database) -> None:
    keys = ApiKeys(db)
    assert keys.check("anything") is None
    key_id, key = keys.create()
    assert db.query("SELECT last_used FROM api_keys")[0]["last_used"] is None
    assert keys.check(key) == key_id
    assert db.query("SELECT last_used FROM api_keys")[0]["last_used"] is not None
    assert keys.check(key + "x") is None
    assert keys.check("") is None
    assert keys.check(hashlib.sha256(key.encode()).hexdigest()) is None


# History


def _record(session_id: int, app: Application | None = None) -> SessionRecord:
    return SessionRecord(
        id=session_id,
        application_id=app.id if app else None,
        application_name=app.name if app else "",
        rule_id=None,
        rule_name="r",
        start_date=NOW,
        custom_data="cd",
        initiator="api",
        log_file=f"/logs/{session_id}.log",
    )


def test_history_session_lifecycle(db: Database, app: Application) -> None:
    history = History(db)
    assert history.next_session_id() == 1
    assert history.session(1) is None
    history.session_started(_record(1, app))
    assert history.next_session_id() == 2
    started = history.session(1)
    assert started == _record(1, app)
    assert started is not None
    assert started.end_date is None
    assert started.finish_reason is None
    history.session_ended(1, NOW + 5, "Normal", "new custom data")
    ended = history.session(1)
    assert ended is not None
    assert (ended.end_date, ended.finish_reason, ended.custom_data) == (NOW + 5, "Normal", "new custom data")
    assert ended.application_name == "app1"
    assert ended.log_file == "/logs/1.log"


def test_history_next_id_follows_highest(db: Database) -> None:
    history = History(db)
    history.session_started(_record(41))
    assert history.next_session_id() == 42
    with pytest.raises(sqlite3.IntegrityError):
        history.session_started(_record(41))
