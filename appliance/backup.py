"""Backup and restore of the box's whole configuration as one file.

A backup is one JSON document, gzip-compressed (`voxgate-<box>-<YYYYMMDD-HHMMSS>.vgbackup`):

    {"format": "voxgate-backup", "version": 1, "created": <unix>, "box_name", "box_id",
     "appliance_version", "schema_version",
     "tables": {"<table>": {"columns": [...], "rows": [[...], ...]}},
     "files": {"tls/cert.pem": "<base64>", "tls/key.pem": "<base64>", "box-id": "<base64>"}}

The tables are the configuration tables of `CONFIG_TABLES` that the store has, copied whole (every column
the schema has, and the rowid where a table has no INTEGER PRIMARY KEY: secret ids are rowids); call
history, the audit log and recordings are not configuration and are never in it. The TLS certificate, its
key and the box id come along, so clients' certificate pins and the mDNS instance name survive a restore.
A backup holds passwords, secrets and the TLS private key: keep it as safe as the box.

`restore` checks the file (format, version, damage, tables and columns against this box's schema) before
it touches anything, replaces the tables the backup holds in one transaction (all or nothing; tables
it does not hold are kept), then puts the files in place. The running box then reloads routing, lines and
outbound routes; the certificate, box id and box name take effect when the daemon restarts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import json
import logging
import os
import sqlite3
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.discovery import ID_FILE
from appliance.discovery import box_id as ensure_box_id
from appliance.errors import ApplianceError
from appliance.store.db import Database
from appliance.store.settings import SettingsStore, check_box_name, check_time_zone

log = logging.getLogger(__name__)

FORMAT = "voxgate-backup"
FORMAT_VERSION = 1
SUFFIX = ".vgbackup"
MAX_BACKUP_BYTES = 64 * 1024 * 1024  # a backup file, compressed (the API's body limit is far lower)
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # its JSON once decompressed: more is a damaged file or a gzip bomb

# The configuration tables, parents before children. A table the store does not have (yet) is skipped;
# a new configuration table must be added here (history-like tables must not).
CONFIG_TABLES = (
    "applications", "scenarios", "rules", "rule_scenarios",
    "sip_users", "sip_trunks", "outbound_routes",
    "secrets", "kv", "api_keys", "settings",
    "admin_users",  # the panel's users, each with its role (their signed-in sessions are not configuration)
)
# Files of the data directory that come along: the certificate (clients pin it) and the box id (mDNS).
CERT_FILE, KEY_FILE, BOX_ID_FILE = "tls/cert.pem", "tls/key.pem", ID_FILE
FILES = (CERT_FILE, KEY_FILE, BOX_ID_FILE)
PRIVATE_FILES = (KEY_FILE,)
DB_FILE = "voxgate.db"  # the store in the data directory (appliance.daemon.DB_FILE)
ROWID = "_rowid_"  # the column name a table's rowid is kept under when it has no INTEGER PRIMARY KEY


class BackupError(ApplianceError, ValueError):
    """A backup file this box refuses to restore (damaged, not a backup, too new), with why."""


@dataclass
class Backup:
    """A parsed and checked backup document."""

    created: float
    box_name: str
    box_id: str
    appliance_version: str
    schema_version: int
    tables: dict[str, tuple[list[str], list[list[Any]]]]
    files: dict[str, bytes]


@dataclass
class RestoreSummary:
    created: float
    box_name: str
    appliance_version: str
    tables: dict[str, int] = field(default_factory=dict)  # rows restored per table
    kept: list[str] = field(default_factory=list)  # configuration tables the backup does not hold
    files: list[str] = field(default_factory=list)


# Making a backup


def _tables(db: Database) -> set[str]:
    return {str(r["name"]) for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(db: Database, table: str) -> list[str]:
    """The table's columns as the schema has them, with ROWID first when the rowid is not one of them."""
    info = db.query(f'PRAGMA table_info("{table}")')
    names = [str(r["name"]) for r in info]
    keys = [r for r in info if r["pk"]]
    if len(keys) == 1 and str(keys[0]["type"]).upper() == "INTEGER":
        return names  # the key is the rowid
    return names if _without_rowid(db, table) else [ROWID, *names]


def _without_rowid(db: Database, table: str) -> bool:
    try:
        db.query(f'SELECT rowid FROM "{table}" LIMIT 0')
    except sqlite3.OperationalError:
        return True
    return False


def _json_value(value: Any) -> Any:
    return {"base64": base64.b64encode(value).decode("ascii")} if isinstance(value, bytes) else value


def _db_value(value: Any) -> Any:
    if isinstance(value, dict):
        return base64.b64decode(str(value.get("base64", "")), validate=True)
    return value


def file_name(name: str, created: float) -> str:
    """voxgate-<box>-<YYYYMMDD-HHMMSS>.vgbackup (UTC)."""
    return f"voxgate-{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(created))}{SUFFIX}"


def box_name(db: Database) -> str:
    """The box's name as the store knows it: the box_name setting, else the name the store was made with."""
    rows = db.query("SELECT name FROM account ORDER BY id LIMIT 1")
    return SettingsStore(db, str(rows[0]["name"]) if rows else "voxgate").box_name()


def make(db: Database, data_dir: Path, *, name: str | None = None, now: float | None = None) -> bytes:
    """The backup file's bytes. Runs on the store's thread (or with a Database of its own)."""
    created = time.time() if now is None else now
    tables: dict[str, dict[str, Any]] = {}
    with db.transaction():  # one consistent snapshot of every table
        present = _tables(db)
        if name is None:
            name = box_name(db)
        for table in CONFIG_TABLES:
            if table not in present:
                continue
            columns = _columns(db, table)
            select = ", ".join(c if c == ROWID else f'"{c}"' for c in columns)
            order = "" if _without_rowid(db, table) else " ORDER BY rowid"
            rows = db.query(f'SELECT {select} FROM "{table}"{order}')
            tables[table] = {"columns": columns, "rows": [[_json_value(v) for v in r] for r in rows]}
        schema_version = db.schema_version
    ensure_box_id(data_dir)  # made now if the box has not announced itself yet: the restored box keeps it
    files = {}
    for path in FILES:
        try:
            files[path] = base64.b64encode((data_dir / path).read_bytes()).decode("ascii")
        except FileNotFoundError:
            continue
    box_id = base64.b64decode(files[BOX_ID_FILE]).decode("ascii", "replace").strip() if BOX_ID_FILE in files else ""
    document = {
        "format": FORMAT, "version": FORMAT_VERSION, "created": created, "box_name": name, "box_id": box_id,
        "appliance_version": __version__, "schema_version": schema_version, "tables": tables, "files": files,
    }
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return gzip.compress(data, compresslevel=6, mtime=int(created))


# Reading one


def _decompress(data: bytes) -> bytes:
    if len(data) > MAX_BACKUP_BYTES:
        raise BackupError(f"the file is {len(data)} bytes: a backup is at most {MAX_BACKUP_BYTES} bytes")
    if data[:2] != b"\x1f\x8b":
        raise BackupError(f"not a VoxGate backup: a {SUFFIX} file is gzip-compressed JSON, and this one is not "
                          "gzip-compressed")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            text = f.read(MAX_DOCUMENT_BYTES + 1)
    except (EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"the backup is damaged (truncated or corrupt): {exc}") from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise BackupError(f"the backup unpacks to more than {MAX_DOCUMENT_BYTES} bytes: not a VoxGate backup")
    return text


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise BackupError(f"the backup is damaged: {what}")


def parse(data: bytes) -> Backup:
    """The checked document of a backup file; BackupError (with why) for anything else."""
    text = _decompress(data)
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"the backup is damaged: its content is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError(f"not a VoxGate backup (no \"format\": \"{FORMAT}\" in it)")
    version = doc.get("version")
    _expect(isinstance(version, int) and not isinstance(version, bool), "its format version is not a number")
    assert isinstance(version, int)
    if version > FORMAT_VERSION:
        raise BackupError(f"the backup has format version {version}, made by a newer VoxGate "
                          f"({doc.get('appliance_version', '?')}); this box ({__version__}) reads versions up to "
                          f"{FORMAT_VERSION}: update the box first")
    _expect(version >= 1, f"format version {version} does not exist")
    created, schema = doc.get("created"), doc.get("schema_version")
    _expect(isinstance(created, int | float) and not isinstance(created, bool), "no creation time")
    _expect(isinstance(schema, int) and not isinstance(schema, bool), "no schema version")
    assert isinstance(created, int | float) and isinstance(schema, int)
    tables_doc, files_doc = doc.get("tables"), doc.get("files")
    _expect(isinstance(tables_doc, dict) and isinstance(files_doc, dict), "no tables or files")
    assert isinstance(tables_doc, dict) and isinstance(files_doc, dict)
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    for table, content in tables_doc.items():
        if table not in CONFIG_TABLES:
            raise BackupError(f"the backup holds a table {table!r} that is not configuration this box knows")
        _expect(isinstance(content, dict), f"table {table} is not an object")
        columns, rows = content.get("columns"), content.get("rows")
        _expect(isinstance(columns, list) and bool(columns) and all(isinstance(c, str) for c in columns)
                and len(set(columns)) == len(columns), f"table {table} has no valid column list")
        _expect(isinstance(rows, list) and all(isinstance(r, list) and len(r) == len(columns) for r in rows),
                f"table {table} has rows that do not match its columns")
        assert isinstance(columns, list) and isinstance(rows, list)
        try:
            tables[table] = (columns, [[_db_value(v) for v in r] for r in rows])
        except (binascii.Error, ValueError):
            raise BackupError(f"the backup is damaged: a binary value of table {table} is not base64") from None
    files: dict[str, bytes] = {}
    for name, encoded in files_doc.items():
        _expect(name in FILES, f"unknown file {name!r}")
        try:
            files[name] = base64.b64decode(str(encoded), validate=True)
        except (binascii.Error, ValueError):
            raise BackupError(f"the backup is damaged: file {name} is not base64") from None
    _check_files(files)
    return Backup(float(created), str(doc.get("box_name", "")), str(doc.get("box_id", "")),
                  str(doc.get("appliance_version", "")), schema, tables, files)


def _check_files(files: dict[str, bytes]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if (CERT_FILE in files) != (KEY_FILE in files):
        raise BackupError("the backup is damaged: it holds the TLS certificate or its key, not both")
    if CERT_FILE in files:
        try:
            cert = x509.load_pem_x509_certificate(files[CERT_FILE])
            key = serialization.load_pem_private_key(files[KEY_FILE], password=None)
        except ValueError as exc:
            raise BackupError(f"the backup is damaged: its TLS certificate or key does not load ({exc})") from None
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if (cert.public_key().public_bytes(serialization.Encoding.DER, spki)
                != key.public_key().public_bytes(serialization.Encoding.DER, spki)):
            raise BackupError("the backup is damaged: its TLS key is not the certificate's key")
    if BOX_ID_FILE in files:
        box_id = files[BOX_ID_FILE].decode("ascii", "replace").strip()
        _expect(0 < len(box_id) <= 64 and box_id.isalnum(), "its box id is not a short id")


# Restoring one


def _check_schema(db: Database, backup: Backup) -> None:
    if backup.schema_version > db.schema_version:
        raise BackupError(f"the backup was made by a newer VoxGate ({backup.appliance_version}, store schema "
                          f"{backup.schema_version}; this box has {db.schema_version}): update the box first")
    present = _tables(db)
    for table, (columns, _rows) in backup.tables.items():
        if table not in present:
            raise BackupError(f"the backup holds table {table!r}, which this box's store does not have")
        known = set(_columns(db, table)) | {ROWID}
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise BackupError(f"the backup's table {table} has columns this box's store does not have: "
                              f"{', '.join(unknown)}")


def _check_settings(backup: Backup) -> None:
    """Settings are checked when set: a restored value must pass the same checks."""
    if "settings" not in backup.tables:
        return
    columns, rows = backup.tables["settings"]
    if "key" not in columns or "value" not in columns:
        raise BackupError("the backup is damaged: its settings have no key or value")
    k, v = columns.index("key"), columns.index("value")
    for row in rows:
        try:
            if row[k] == "box_name":
                check_box_name(str(row[v]))
            elif row[k] == "time_zone":
                check_time_zone(str(row[v]))
        except ApplianceError as exc:
            raise BackupError(f"the backup's settings are refused: {exc}") from None


def _stage(data_dir: Path, files: dict[str, bytes]) -> dict[Path, Path]:
    """Each file written next to its place under a temporary name: {temporary: final}."""
    staged: dict[Path, Path] = {}
    try:
        for name, content in files.items():
            final = data_dir / name
            final.parent.mkdir(parents=True, exist_ok=True)
            temporary = final.with_name(f".{final.name}.restoring")
            mode = 0o600 if name in PRIVATE_FILES else 0o644
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(content)
            os.chmod(temporary, mode)
            staged[temporary] = final
    except OSError as exc:
        _unstage(staged)
        raise ApplianceError(f"cannot write to the data directory {data_dir}: {exc.strerror or exc}") from None
    return staged


def _unstage(staged: dict[Path, Path]) -> None:
    for temporary in staged:
        temporary.unlink(missing_ok=True)


def _replace_tables(db: Database, backup: Backup) -> RestoreSummary:
    summary = RestoreSummary(backup.created, backup.box_name, backup.appliance_version)
    with db.transaction() as conn:
        _check_schema(db, backup)
        present = _tables(db)
        conn.execute("PRAGMA defer_foreign_keys = ON")
        for table in reversed(CONFIG_TABLES):
            if table in backup.tables:
                conn.execute(f'DELETE FROM "{table}"')
        for table in CONFIG_TABLES:
            if table not in backup.tables:
                if table in present:
                    summary.kept.append(table)
                continue
            columns, rows = backup.tables[table]
            names = ", ".join(c if c == ROWID else f'"{c}"' for c in columns)
            sql = f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(columns))})'
            try:
                conn.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise BackupError(f"the backup's table {table} does not fit this box's store: {exc}") from None
            summary.tables[table] = len(rows)
        broken = conn.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise BackupError(f"the backup is damaged: {len(broken)} rows refer to objects it does not hold "
                              f"(first in table {broken[0][0]})")
        conn.execute("PRAGMA defer_foreign_keys = OFF")
    return summary


def restore(db: Database, data_dir: Path, data: bytes) -> RestoreSummary:
    """Replace the configuration with the backup's, or change nothing and raise BackupError saying why.
    Runs on the store's thread (or with a Database of its own while no daemon uses the data directory)."""
    backup = parse(data)
    _check_settings(backup)
    staged = _stage(data_dir, backup.files)
    try:
        summary = _replace_tables(db, backup)
    except BaseException:
        _unstage(staged)
        raise
    for temporary, final in staged.items():
        os.replace(temporary, final)
        summary.files.append(str(final.relative_to(data_dir)))
    log.info("configuration restored from the backup of %s made %s: %s", backup.box_name or "?",
             time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(backup.created)),
             ", ".join(f"{t} {n}" for t, n in summary.tables.items()))
    return summary


def daemon_using(data_dir: Path) -> int | None:
    """The id of another process that has the data directory's store open (a running daemon), if this
    system lets us see it (Linux /proc); None when there is none or we cannot tell."""
    try:
        db_file = (data_dir / DB_FILE).resolve()
        proc = Path("/proc")
        pids = [p for p in proc.iterdir() if p.name.isdigit() and int(p.name) != os.getpid()]
    except OSError:
        return None
    for pid in pids:
        try:
            for fd in (pid / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if Path(os.readlink(fd)) == db_file:
                        return int(pid.name)
        except OSError:
            continue
    return None
