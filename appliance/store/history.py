"""Call history: a record per session (written when it starts and when it ends), per call leg and per
recording (written when they end)."""

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
    log_secret: str = ""
    end_date: float | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class LegRecord:
    session_id: int
    call_id: str
    incoming: bool
    kind: str
    line: str
    caller: str
    destination: str
    start_date: float
    answer_date: float | None
    end_date: float
    duration: int
    code: int
    reason: str
    codec: str = ""
    lost_percent: float | None = None
    jitter_ms: float | None = None
    remote_lost_percent: float | None = None
    remote_jitter_ms: float | None = None


@dataclass(frozen=True)
class RecordRecord:
    """A finished recording: of a call (`call_id`) or of a Recorder unit."""

    session_id: int
    call_id: str | None
    url: str
    file_name: str
    start_date: float
    duration: float


LEG_FIELDS = tuple(LegRecord.__dataclass_fields__)
RECORD_FIELDS = tuple(RecordRecord.__dataclass_fields__)


class History:
    def __init__(self, db: Database) -> None:
        self.db = db

    def next_session_id(self) -> int:
        return int(self.db.query("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM call_sessions")[0]["n"])

    def session_started(self, r: SessionRecord) -> None:
        self.db.execute(
            "INSERT INTO call_sessions (id, application_id, application_name, rule_id, rule_name, "
            "start_date, custom_data, initiator, log_file, log_secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.id, r.application_id, r.application_name, r.rule_id, r.rule_name, r.start_date,
             r.custom_data, r.initiator, r.log_file, r.log_secret),
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
            r["start_date"], r["custom_data"], r["initiator"], r["log_file"], r["log_secret"], r["end_date"],
            r["finish_reason"],
        )

    def leg_ended(self, r: LegRecord) -> None:
        self.db.execute(
            f"INSERT INTO call_legs ({', '.join(LEG_FIELDS)}) VALUES ({', '.join('?' * len(LEG_FIELDS))})",
            tuple(getattr(r, name) for name in LEG_FIELDS),
        )

    def record_ended(self, r: RecordRecord) -> None:
        self.db.execute(
            f"INSERT INTO call_records ({', '.join(RECORD_FIELDS)}) VALUES ({', '.join('?' * len(RECORD_FIELDS))})",
            tuple(getattr(r, name) for name in RECORD_FIELDS),
        )

    def legs(self, session_id: int) -> list[LegRecord]:
        rows = self.db.query(f"SELECT {', '.join(LEG_FIELDS)} FROM call_legs WHERE session_id = ? ORDER BY id",
                             (session_id,))
        return [LegRecord(**{**dict(row), "incoming": bool(row["incoming"])}) for row in rows]

    def records(self, session_id: int) -> list[RecordRecord]:
        rows = self.db.query(f"SELECT {', '.join(RECORD_FIELDS)} FROM call_records WHERE session_id = ? ORDER BY id",
                             (session_id,))
        return [RecordRecord(**dict(row)) for row in rows]
