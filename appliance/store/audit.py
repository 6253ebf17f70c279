"""The audit log: every change asked of the management API, who asked (key id, address) and the outcome."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.store.db import Database

# Parameters never written to the log as given.
REDACTED = frozenset({"api_key", "password", "user_password", "secret_value", "private_key"})
PARAMETER_MAX_CHARS = 256  # a 100 KB scenario script is summarised, not copied


@dataclass(frozen=True)
class AuditEntry:
    id: int
    requested: float
    key_id: str
    ip: str
    cmd: str
    parameters: dict[str, str]
    error_code: int
    error_msg: str


def _loggable(params: Mapping[str, str]) -> dict[str, str]:
    def shown(name: str, value: str) -> str:
        if name in REDACTED:
            return "***"
        if len(value) > PARAMETER_MAX_CHARS:
            return f"{value[:PARAMETER_MAX_CHARS]}... ({len(value)} characters)"
        return value

    return {name: shown(name, value) for name, value in params.items()}


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, requested: float, key_id: str, ip: str, cmd: str, params: Mapping[str, str],
              error_code: int = 0, error_msg: str = "") -> None:
        self.db.execute(
            "INSERT INTO audit_log (requested, key_id, ip, cmd, parameters, error_code, error_msg) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (requested, key_id, ip, cmd, json.dumps(_loggable(params), ensure_ascii=False), error_code, error_msg),
        )

    def entries(self, *, since: float, until: float, key_id: str | None = None, ip: str | None = None,
                cmds: list[str] | None = None, desc: bool = False, count: int, offset: int) -> tuple[
            list[AuditEntry], int]:
        """A page of entries between two times (inclusive), and how many match in all."""
        where = ["requested >= ?", "requested <= ?"]
        args: list[object] = [since, until]
        if key_id:
            where.append("key_id = ?")
            args.append(key_id)
        if ip:
            where.append("ip = ?")
            args.append(ip)
        if cmds:
            where.append(f"cmd IN ({', '.join('?' * len(cmds))})")
            args.extend(cmds)
        clause = " AND ".join(where)
        total = int(self.db.query(f"SELECT COUNT(*) AS n FROM audit_log WHERE {clause}", tuple(args))[0]["n"])
        rows = self.db.query(
            f"SELECT * FROM audit_log WHERE {clause} ORDER BY id {'DESC' if desc else 'ASC'} LIMIT ? OFFSET ?",
            (*args, count, offset))
        return [AuditEntry(r["id"], r["requested"], r["key_id"], r["ip"], r["cmd"], json.loads(r["parameters"]),
                           r["error_code"], r["error_msg"]) for r in rows], total
