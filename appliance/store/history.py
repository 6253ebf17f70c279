"""Call history: a record per session (written when it starts and when it ends), per call leg and per
recording (written when they end)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

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
    sip_call_id: str = ""  # a SIP leg's dialog, to find its SIP trace


@dataclass(frozen=True)
class RecordRecord:
    """A finished recording: of a call (`call_id`) or of a Recorder unit."""

    session_id: int
    call_id: str | None
    url: str
    file_name: str
    start_date: float
    duration: float


@dataclass
class SessionQuery:
    """Which sessions GetCallHistory lists: started between two times, and optional filters."""

    since: float
    until: float
    session_ids: list[int] = field(default_factory=list)
    application_id: int | None = None
    rule_name: str | None = None
    custom_data: str | None = None
    remote_numbers: list[str] = field(default_factory=list)  # a leg's far end is one of these
    local_number: str | None = None  # a leg's near end
    line: str | None = None  # a leg went through this line (a SIP user's name, a trunk)
    min_duration: int | None = None
    max_duration: int | None = None
    desc: bool = False


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
        return _session(rows[0]) if rows else None

    def sessions(self, q: SessionQuery, count: int, offset: int) -> tuple[list[SessionRecord], int]:
        """A page of sessions matching the query, by start time, and how many match in all."""
        where = ["s.start_date >= ?", "s.start_date <= ?"]
        args: list[object] = [q.since, q.until]
        if q.session_ids:
            where.append(f"s.id IN ({', '.join('?' * len(q.session_ids))})")
            args.extend(q.session_ids)
        for column, value in (("s.application_id", q.application_id),
                              ("s.rule_name", q.rule_name), ("s.custom_data", q.custom_data)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        duration = "(COALESCE(s.end_date, s.start_date) - s.start_date)"
        if q.min_duration is not None:
            where.append(f"{duration} >= ?")
            args.append(q.min_duration)
        if q.max_duration is not None:
            where.append(f"{duration} <= ?")
            args.append(q.max_duration)
        leg_conditions = []
        if q.remote_numbers:
            marks = ", ".join("?" * len(q.remote_numbers))
            leg_conditions.append(f"(CASE WHEN l.incoming THEN l.caller ELSE l.destination END) IN ({marks})")
            args.extend(q.remote_numbers)
        if q.local_number is not None:
            leg_conditions.append("(CASE WHEN l.incoming THEN l.destination ELSE l.caller END) = ?")
            args.append(q.local_number)
        if q.line is not None:
            leg_conditions.append("l.line = ?")
            args.append(q.line)
        if leg_conditions:
            where.append(f"EXISTS (SELECT 1 FROM call_legs l WHERE l.session_id = s.id AND "
                         f"{' AND '.join(leg_conditions)})")
        clause = " AND ".join(where)
        total = int(self.db.query(f"SELECT COUNT(*) AS n FROM call_sessions s WHERE {clause}", tuple(args))[0]["n"])
        rows = self.db.query(f"SELECT s.* FROM call_sessions s WHERE {clause} "
                             f"ORDER BY s.start_date {'DESC' if q.desc else 'ASC'}, s.id LIMIT ? OFFSET ?",
                             (*args, count, offset))
        return [_session(r) for r in rows], total

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

    def records_with_ids(self, session_id: int) -> list[tuple[int, RecordRecord]]:
        """The session's recordings with their record ids (what DeleteRecord takes)."""
        rows = self.db.query(f"SELECT id, {', '.join(RECORD_FIELDS)} FROM call_records WHERE session_id = ? "
                             "ORDER BY id", (session_id,))
        return [(row["id"], RecordRecord(**{k: row[k] for k in RECORD_FIELDS})) for row in rows]

    def secure_records(self, session_id: int) -> bool:
        """Whether the session's recordings are for key holders only (its application's secure_record_storage)."""
        rows = self.db.query("SELECT a.secure_record_storage FROM call_sessions s JOIN applications a "
                             "ON a.id = s.application_id WHERE s.id = ?", (session_id,))
        return bool(rows and rows[0]["secure_record_storage"])

    def record_row(self, *, record_id: int | None = None, url: str | None = None) -> tuple[int, str] | None:
        """(record id, file name) of a recording by id or URL."""
        rows = self.db.query("SELECT id, file_name FROM call_records WHERE id = ? OR url = ?", (record_id, url))
        return (int(rows[0]["id"]), str(rows[0]["file_name"])) if rows else None

    def delete_record(self, record_id: int) -> None:
        self.db.execute("DELETE FROM call_records WHERE id = ?", (record_id,))

    def records(self, session_id: int) -> list[RecordRecord]:
        return [record for _, record in self.records_with_ids(session_id)]


def _session(r: sqlite3.Row) -> SessionRecord:
    return SessionRecord(
        r["id"], r["application_id"], r["application_name"], r["rule_id"], r["rule_name"], r["start_date"],
        r["custom_data"], r["initiator"], r["log_file"], r["log_secret"], r["end_date"], r["finish_reason"],
    )
