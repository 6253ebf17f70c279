"""Call session history: one record per session, written when it starts and when it ends."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.store.db import Database


@dataclass
class SessionRecord:
    id: int
    application_id: int | None
    application_name: str
    rule_id: int | None
    rule_name: str
    start_date: float
    custom_data: str
    initiator: str
    log_file: str
    end_date: float | None = None
    finish_reason: str | None = None


class History:
    def __init__(self, db: Database) -> None:
        self.db = db

    def next_session_id(self) -> int:
        return int(self.db.query("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM call_sessions")[0]["n"])

    def session_started(self, r: SessionRecord) -> None:
        self.db.execute(
            "INSERT INTO call_sessions (id, application_id, application_name, rule_id, rule_name, "
            "start_date, custom_data, initiator, log_file) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.id, r.application_id, r.application_name, r.rule_id, r.rule_name, r.start_date,
             r.custom_data, r.initiator, r.log_file),
        )

    def session_ended(self, session_id: int, end_date: float, finish_reason: str, custom_data: str) -> None:
        self.db.execute(
            "UPDATE call_sessions SET end_date = ?, finish_reason = ?, custom_data = ? WHERE id = ?",
            (end_date, finish_reason, custom_data, session_id),
        )

    def session(self, session_id: int) -> SessionRecord | None:
        rows = self.db.query("SELECT * FROM call_sessions WHERE id = ?", (session_id,))
        if not rows:
            return None
        r = rows[0]
        return SessionRecord(
            r["id"], r["application_id"], r["application_name"], r["rule_id"], r["rule_name"],
            r["start_date"], r["custom_data"], r["initiator"], r["log_file"], r["end_date"],
            r["finish_reason"],
        )
