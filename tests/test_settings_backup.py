"""The Settings page's methods against the real daemon: GetBoxSettings/SetBoxSettings (checks naming the
field), GetClockStatus (without timedatectl), GetBackup/RestoreBackup (a filled box restored into a fresh
one: every object, the TLS certificate and routing), `appliance backup`/`appliance restore`, and
damaged, truncated, newer and foreign files refused with nothing changed.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import re
import ssl
import stat
import time
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import (
    DATE_RE,
    ERR_PARAMETER,
    GENEROUS_LIMITS,
    Api,
    ask_session,
    order_scenario,
    post_url,
    unique,
)
from daemon_helpers import HOST, Daemon, run_appliance, running_daemon

from appliance import backup, tls
from appliance.store.apikeys import ApiKeys
from appliance.store.db import Database
from appliance.web.methods.settings import ntp_status

CLI_CHECKED = ("truncated", "not gzip", "newer format", "dangling rows")  # the same checks: a few suffice
LIVE_TRUNK_FIELDS = ("successful", "status_code", "error_message", "in_progress", "reachable", "rtt_ms",
                     "expires_in")


@contextlib.contextmanager
def box(root: Path, env: dict[str, str] | None = None) -> Iterator[Daemon]:
    """A daemon on root/data (kept across restarts) whose rate limits tests never reach."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "voxgate.toml"
    config.write_text(GENEROUS_LIMITS)
    with running_daemon(root / "data", extra_args=["--config", str(config)], env=env) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with box(tmp_path_factory.mktemp("settings-source")) as d:
        yield d


@pytest.fixture(scope="module")
def api(source: Daemon) -> Iterator[Api]:
    client = Api(source)
    yield client
    client.close()


def served_fingerprint(port: int) -> str:
    """The SHA-256 fingerprint of the certificate the box's HTTPS port presents."""
    pem = ssl.get_server_certificate((HOST, port), timeout=10)
    return "SHA256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


# Box settings


def test_box_settings_default_set_and_restart_flag(api: Api) -> None:
    settings = api.ok("GetBoxSettings")["result"]
    assert settings["box_name"] == "voxgate" and settings["box_name_is_default"] is True
    assert settings["time_zone"] in zoneinfo.available_timezones()
    assert settings["apply_system_settings"] is False  # never touch the test machine's clock
    changed = api.ok("SetBoxSettings", time_zone="Europe/Berlin")
    assert changed["time_zone"] == "Europe/Berlin" and changed["restart_required"] is False
    assert "time_zone_applied" not in changed  # kept in the store only: apply_system_settings is off
    changed = api.ok("SetBoxSettings", box_name="lab-box-1")
    assert changed["box_name"] == "lab-box-1" and changed["restart_required"] is True
    assert api.ok("SetBoxSettings", box_name="lab-box-1")["restart_required"] is False  # no change
    assert api.ok("GetBoxSettings")["result"] == {
        "box_name": "lab-box-1", "time_zone": "Europe/Berlin", "box_name_is_default": False,
        "time_zone_is_default": False, "apply_system_settings": False}
    entries = api.ok("GetAuditLog", from_date="2000-01-01 00:00:00", to_date="2100-01-01 00:00:00",
                     filtered_cmd="SetBoxSettings")["result"]
    assert {e["parameters"].get("box_name") for e in entries} >= {"lab-box-1"}


@pytest.mark.parametrize(("params", "field"), [
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
    ({"time_zone": "europe/berlin"}, "time_zone"),
    ({"time_zone": ""}, "time_zone"),
    ({"box_name": ""}, "box_name"),
    ({"box_name": "Lab"}, "box_name"),
    ({"box_name": "-lab"}, "box_name"),
    ({"box_name": "lab-"}, "box_name"),
    ({"box_name": "lab box"}, "box_name"),
    ({"box_name": "lab.local"}, "box_name"),
    ({"box_name": "a" * 64}, "box_name"),
    ({"box_name": "good-name", "time_zone": "Nowhere/Land"}, "time_zone"),  # all or nothing
    ({}, "box_name or time_zone"),
])
def test_box_settings_refused_naming_the_field(api: Api, params: dict[str, str], field: str) -> None:
    before = api.ok("GetBoxSettings")["result"]
    msg = api.fails("SetBoxSettings", 400, ERR_PARAMETER, **params)
    assert msg.startswith(field) or field in msg, msg
    assert api.ok("GetBoxSettings")["result"] == before


def test_box_name_limits(api: Api) -> None:
    longest = "b" * 63
    assert api.ok("SetBoxSettings", box_name=longest)["box_name"] == longest
    assert api.ok("SetBoxSettings", box_name="0")["box_name"] == "0"
    api.ok("SetBoxSettings", box_name="lab-box-1")


# Clock


def test_clock_status_without_timedatectl(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with no timedatectl in it: as a box without systemd-timedated
    bin_dir.mkdir()
    with box(tmp_path / "box", env={"PATH": str(bin_dir)}) as daemon:
        client = Api(daemon)
        try:
            client.ok("SetBoxSettings", time_zone="Asia/Kolkata")
            before = time.time()
            status = client.ok("GetClockStatus")["result"]
        finally:
            client.close()
    assert set(status) == {"now_unix", "now", "local_time", "time_zone", "utc_offset", "utc_offset_seconds",
                           "clock_sane", "clock_warning", "ntp", "ntp_enabled", "ntp_synchronized", "system_time",
                           "ntp_reason"}
    assert abs(status["now_unix"] - before) < 5
    assert re.fullmatch(DATE_RE, status["now"]) and re.fullmatch(DATE_RE, status["local_time"])
    assert status["time_zone"] == "Asia/Kolkata"
    assert status["utc_offset"] == "+05:30" and status["utc_offset_seconds"] == 19800
    assert status["clock_sane"] is True and status["clock_warning"] == ""
    assert status["ntp"] == "unknown" and "timedatectl" in status["ntp_reason"]
    assert status["ntp_enabled"] is None and status["ntp_synchronized"] is None


def _fake_command(folder: Path, body: str) -> str:
    path = folder / "timedatectl"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(("output", "state"), [
    ("NTP=yes\nNTPSynchronized=yes\nTimeUSec=Tue 2026-11-24 23:00:00 UTC\n", "synchronized"),
    ("NTP=yes\nNTPSynchronized=no\nTimeUSec=Tue 2026-11-24 23:00:00 UTC\n", "not synchronized"),
    ("NTP=no\nNTPSynchronized=no\nTimeUSec=Tue 2026-11-24 23:00:00 UTC\n", "off"),
])
async def test_ntp_status_read_from_timedatectl_show(tmp_path: Path, output: str, state: str) -> None:
    command = _fake_command(tmp_path, f"printf '{output}'\n")
    status = await ntp_status(command)
    assert status["ntp"] == state and status["ntp_reason"] == ""
    assert status["ntp_synchronized"] is (state == "synchronized")
    assert status["system_time"] == "Tue 2026-11-24 23:00:00 UTC"


async def test_ntp_status_unknown_with_the_reason(tmp_path: Path) -> None:
    failing = _fake_command(tmp_path, "echo 'System has not been booted with systemd as init system' >&2\nexit 1\n")
    status = await ntp_status(failing)
    assert status["ntp"] == "unknown" and "not been booted with systemd" in status["ntp_reason"]
    status = await ntp_status(str(tmp_path / "no-such-command"))
    assert status["ntp"] == "unknown" and "not installed" in status["ntp_reason"]
    silent = _fake_command(tmp_path, "echo 'Timezone=UTC'\n")
    assert "did not report NTP" in (await ntp_status(silent))["ntp_reason"]


# Backup and restore


def fill(api: Api) -> dict[str, Any]:
    """Every kind of configuration object, made through the API."""
    app_id, app_name = api.application("backup")
    first = api.scenario(order_scenario("one"), prefix="first")
    second = api.scenario(order_scenario("two"), prefix="second")
    rule_id, rule_name = api.rule(app_id, pattern="7[0-9]+")
    api.ok("BindScenario", rule_id=rule_id, scenario_id=f"{first[0]};{second[0]}")
    api.rule(app_id, pattern="8.*", prefix="other", scenario_id=first[0])
    api.ok("AddUser", application_id=app_id, user_name=unique("phone"), user_password="pw-12345",
           user_display_name="Desk phone")
    trunk = unique("itsp")
    api.ok("CreateSipRegistration", sip_username="acct", password="trunk-pw", proxy="127.0.0.1:9", trunk_name=trunk)
    api.ok("AddOutboundRoute", route_name=unique("out"), pattern=r"\+?[0-9]{3,15}", line=trunk, prepend="00",
           strip_digits=1)
    api.ok("AddSecret", application_id=app_id, secret_name="token", secret_value="s3cr3t-value",
           description="a token")
    for key in ("a:1", "a:2", "plain"):
        api.ok("SetKeyValueItem", application_id=app_id, key=key, value=f"value of {key}", ttl=3600)
    extra = api.ok("CreateKey", description="extra key")["result"]
    return {"app_id": app_id, "app_name": app_name, "rule_id": rule_id, "rule_name": rule_name,
            "extra_key_id": extra["key_id"]}


def snapshot(api: Api) -> dict[str, Any]:
    """The box's configuration as its Get* methods answer it (live state left out)."""
    apps = api.ok("GetApplications", with_rules=True, with_scenarios=True, count=1000)["result"]
    users = api.ok("GetUsers", count=1000)["result"]
    registrations = api.ok("GetSipRegistrations", count=1000)["result"]
    keys = api.ok("GetKeys", count=1000)["result"]
    per_app = {}
    for app in apps:
        app_id = app["application_id"]
        secrets = api.ok("GetSecrets", application_id=app_id, count=1000)["result"]
        per_app[app["application_name"]] = {
            "secrets": secrets,
            "secret_values": [api.ok("GetSecretValue", application_id=app_id, secret_id=s["secret_id"])["result"]
                              for s in secrets],
            "kv": api.ok("GetKeyValueItems", application_id=app_id, count=1000)["result"],
        }
    return {
        "applications": apps, "per_application": per_app,
        "scenarios": api.ok("GetScenarios", with_script=True, count=1000)["result"],
        "rules": api.ok("GetRules", count=1000)["result"],
        "users": [{k: v for k, v in u.items() if k != "registered"} for u in users],
        "registrations": [{k: v for k, v in r.items() if k not in LIVE_TRUNK_FIELDS} for r in registrations],
        "routes": api.ok("GetOutboundRoutes", count=1000)["result"],
        "keys": [{k: v for k, v in key.items() if k != "last_used"} for key in keys],
        "settings": api.ok("GetBoxSettings")["result"],
    }


def run_rule(api: Api, rule_id: int) -> None:
    """StartScenarios on the rule runs both its scenarios, in order."""
    _, url = api.start(rule_id)
    assert ask_session(url) == ["one", "two"]
    post_url(url, "stop")


def get_backup(api: Api) -> tuple[bytes, str]:
    answer = api.ok("GetBackup")
    data = base64.b64decode(answer["backup"])
    assert answer["size"] == len(data)
    return data, str(answer["file_name"])


def test_backup_restored_into_a_fresh_box(api: Api, source: Daemon, tmp_path: Path) -> None:
    made = fill(api)
    expected = snapshot(api)
    data, name = get_backup(api)
    assert re.fullmatch(r"voxgate-lab-box-1-\d{8}-\d{6}\.vgbackup", name), name
    document = json.loads(gzip.decompress(data))
    assert document["format"] == "voxgate-backup" and document["version"] == backup.FORMAT_VERSION
    assert document["box_name"] == "lab-box-1" and document["appliance_version"]
    assert set(document["tables"]) <= set(backup.CONFIG_TABLES)
    assert {"applications", "scenarios", "rules", "rule_scenarios", "sip_users", "sip_trunks", "outbound_routes",
            "secrets", "kv", "api_keys", "settings"} <= set(document["tables"])
    assert not {"call_sessions", "call_legs", "call_records", "audit_log"} & set(document["tables"])
    assert set(document["files"]) == {"tls/cert.pem", "tls/key.pem", "box-id"}
    source_fingerprint = tls.fingerprint(source.cert_path)
    source_box_id = (source.data_dir / "box-id").read_text().strip()

    with box(tmp_path / "fresh") as fresh:
        fresh_client = Api(fresh)
        try:
            assert tls.fingerprint(fresh.cert_path) != source_fingerprint
            restored = fresh_client.ok("RestoreBackup", backup=base64.b64encode(data).decode())
            assert fresh_client.call("GetBoxSettings").status == 401  # its key is not in the backup
        finally:
            fresh_client.close()
        assert restored["restart_required"] is True and restored["key_kept"] is False
        assert restored["backup_box_name"] == "lab-box-1"
        assert restored["restored"]["applications"] == len(expected["applications"])
        assert set(restored["files"]) == {"tls/cert.pem", "tls/key.pem", "box-id"}
        # The keys are the backup's: the source's key works on the restored box, and routing was reloaded.
        client = Api(fresh, key=api.key)
        try:
            assert snapshot(client) == expected
            run_rule(client, made["rule_id"])
            assert made["extra_key_id"] in {k["key_id"] for k in client.ok("GetKeys", count=1000)["result"]}
        finally:
            client.close()
        assert tls.fingerprint(fresh.cert_path) == source_fingerprint
        assert (fresh.data_dir / "box-id").read_text().strip() == source_box_id
        assert stat.S_IMODE((fresh.data_dir / "tls" / "key.pem").stat().st_mode) == 0o600
        fresh_root = fresh.data_dir.parent

    with box(fresh_root) as restarted:  # the certificate is served from the next start
        assert served_fingerprint(restarted.https_port) == source_fingerprint
        client = Api(restarted, key=api.key)
        try:
            assert snapshot(client) == expected
            run_rule(client, made["rule_id"])
        finally:
            client.close()

    # Who took the configuration away and who replaced it is audited (the file itself is not copied there).
    entries = api.ok("GetAuditLog", from_date="2000-01-01 00:00:00", to_date="2100-01-01 00:00:00",
                     filtered_cmd="GetBackup")["result"]
    assert entries and entries[-1]["error_code"] == 0


def test_cli_backup_and_restore(api: Api, source: Daemon, tmp_path: Path) -> None:
    made = fill(api)
    expected = snapshot(api)
    target = tmp_path / "box.vgbackup"
    result = run_appliance(["backup", "--data-dir", str(source.data_dir), "--output", str(target)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    again = run_appliance(["backup", "--data-dir", str(source.data_dir), "--output", str(target)], cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten
    default = run_appliance(["backup", "--data-dir", str(source.data_dir)], cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert [p.name for p in tmp_path.glob("voxgate-lab-box-1-*.vgbackup")], default.stdout

    # Refused while a daemon has the store open.
    busy = run_appliance(["restore", "--data-dir", str(source.data_dir), str(target)], cwd=tmp_path)
    assert busy.returncode == 2 and "stop it first" in busy.stderr, busy.stderr

    root = tmp_path / "cli"
    root.mkdir()
    result = run_appliance(["restore", "--data-dir", str(root / "data"), str(target)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "restored the backup of lab-box-1" in result.stdout
    with box(root) as restored:
        assert served_fingerprint(restored.https_port) == tls.fingerprint(source.cert_path)
        client = Api(restored, key=api.key)
        try:
            assert snapshot(client) == expected
            run_rule(client, made["rule_id"])
        finally:
            client.close()


def _document(data: bytes) -> dict[str, Any]:
    value = json.loads(gzip.decompress(data))
    assert isinstance(value, dict)
    return value


def _pack(document: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(document).encode())


def bad_files(good: bytes) -> list[tuple[str, bytes, str]]:
    """(what, file, what the refusal says)."""
    corrupt = bytearray(good)
    middle = len(corrupt) // 2
    corrupt[middle:middle + 16] = bytes(b ^ 0x5A for b in corrupt[middle:middle + 16])
    newer = _document(good)
    newer["version"] = backup.FORMAT_VERSION + 1
    newer_schema = _document(good)
    newer_schema["schema_version"] += 100
    foreign_table = _document(good)
    foreign_table["tables"]["audit_log"] = {"columns": ["id"], "rows": [[1]]}
    unknown_column = _document(good)
    unknown_column["tables"]["applications"]["columns"][-1] = "no_such_column"
    dangling = _document(good)  # rules of applications the file does not hold: the transaction must undo all
    dangling["tables"]["applications"]["rows"] = []
    bad_setting = _document(good)
    columns = bad_setting["tables"]["settings"]["columns"]
    row = {"_rowid_": 999, "key": "time_zone", "value": "Mars/Base", "modified": 0.0}
    bad_setting["tables"]["settings"]["rows"] = [[row[c] for c in columns]]
    half_tls = _document(good)
    del half_tls["files"]["tls/key.pem"]
    return [
        ("truncated", good[:len(good) // 2], "truncated or corrupt"),
        ("no trailer", good[:-6], "truncated or corrupt"),
        ("corrupt", bytes(corrupt), "damaged"),
        ("not gzip", b'{"format": "voxgate-backup", "version": 1}', "not gzip-compressed"),
        ("zip", b"PK\x03\x04" + bytes(100), "not gzip-compressed"),
        ("one byte", b"\n", "not gzip-compressed"),
        ("gzip, not json", gzip.compress(b"hello"), "not JSON"),
        ("json, not a backup", gzip.compress(b'{"tables": {}}'), "not a VoxGate backup"),
        ("newer format", _pack(newer), "newer VoxGate"),
        ("newer schema", _pack(newer_schema), "newer VoxGate"),
        ("foreign table", _pack(foreign_table), "audit_log"),
        ("unknown column", _pack(unknown_column), "no_such_column"),
        ("dangling rows", _pack(dangling), "refer to objects"),
        ("bad setting", _pack(bad_setting), "time_zone"),
        ("half the TLS files", _pack(half_tls), "not both"),
    ]


def test_damaged_newer_and_foreign_files_change_nothing(api: Api, source: Daemon, tmp_path: Path) -> None:
    made = fill(api)
    good, _ = get_backup(api)
    before = snapshot(api)
    fingerprint = tls.fingerprint(source.cert_path)
    box_id = (source.data_dir / "box-id").read_bytes()
    for what, data, says in bad_files(good):
        msg = api.fails("RestoreBackup", 400, ERR_PARAMETER, backup=base64.b64encode(data).decode())
        assert msg.startswith("backup: ") and says in msg, (what, msg)
        if what in CLI_CHECKED:
            path = tmp_path / f"{what.replace(' ', '-')}.vgbackup"
            path.write_bytes(data)
            result = run_appliance(["restore", "--data-dir", str(tmp_path / "cli-data"), str(path)], cwd=tmp_path)
            assert result.returncode == 2 and "appliance restore: " in result.stderr, (what, result.stderr)
            assert says in result.stderr, (what, result.stderr)
    msg = api.fails("RestoreBackup", 400, ERR_PARAMETER, backup="not base64 at all!")
    assert "base64" in msg
    assert "backup is required" in api.fails("RestoreBackup", 400, ERR_PARAMETER)
    assert snapshot(api) == before
    run_rule(api, made["rule_id"])
    assert tls.fingerprint(source.cert_path) == fingerprint
    assert (source.data_dir / "box-id").read_bytes() == box_id
    assert not [p for p in source.data_dir.rglob("*.restoring")]


def test_restore_replaces_what_was_there(api: Api, source: Daemon, tmp_path: Path) -> None:
    """Objects made after the backup are gone after restoring it; the box keeps serving."""
    fill(api)
    data, _ = get_backup(api)
    expected = snapshot(api)
    later_app, _ = api.application("later")
    api.ok("SetBoxSettings", time_zone="America/New_York")
    answer = api.ok("RestoreBackup", backup=base64.b64encode(data).decode())
    assert answer["key_kept"] is True  # this key is in the backup
    assert snapshot(api) == expected
    assert api.ok("GetApplications", application_id=later_app)["total_count"] == 0


def test_document_size_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = Database(tmp_path / "voxgate.db")
    try:
        data = backup.make(db, tmp_path)
        monkeypatch.setattr(backup, "MAX_DOCUMENT_BYTES", 100)
        with pytest.raises(backup.BackupError, match="unpacks to more than 100 bytes"):
            backup.restore(db, tmp_path, data)
    finally:
        db.close()


def test_fresh_store_round_trip_in_process(tmp_path: Path) -> None:
    """make/restore as the panel calls them: a box's own backup restores onto itself unchanged."""
    data_dir = tmp_path / "data"
    db = Database(data_dir / "voxgate.db")
    try:
        tls.ensure_certificate(data_dir / "tls", "voxgate")
        key_id, _ = ApiKeys(db).create("k")
        data = backup.make(db, data_dir)
        summary = backup.restore(db, data_dir, data)
        assert summary.tables["api_keys"] == 1 and summary.files == ["tls/cert.pem", "tls/key.pem", "box-id"]
        assert [r["key_id"] for r in db.query("SELECT key_id FROM api_keys")] == [key_id]
        assert backup.make(db, data_dir, now=1.0) != data
        assert os.path.exists(data_dir / "tls" / "cert.pem")
    finally:
        db.close()
