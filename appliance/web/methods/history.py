"""Call history: GetCallHistory, with each session's calls (legs), recordings and log link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.store.history import LegRecord, RecordRecord, SessionQuery, SessionRecord
from appliance.web.api import ERR_PARAMETER, Api, ApiError, Method, Params, api_date, listing

MAX_OFFSET = 10_000  # as Voximplant's


def _call_info(leg: LegRecord) -> dict[str, Any]:
    local, remote = (leg.destination, leg.caller) if leg.incoming else (leg.caller, leg.destination)
    return {
        "call_id": leg.call_id, "start_time": api_date(leg.start_date), "duration": leg.duration,
        "local_number": local, "remote_number": remote, "remote_number_type": leg.kind, "incoming": leg.incoming,
        "successful": leg.answer_date is not None, "media_server_address": "", "cost": 0, "custom_data": "",
        "end_reason": {"code": leg.code, "description": leg.reason},
        # Appliance fields: the line, the codec and what the RTP statistics and RTCP reports said.
        "line": leg.line, "codec": leg.codec, "lost_percent": leg.lost_percent, "jitter_ms": leg.jitter_ms,
        "remote_lost_percent": leg.remote_lost_percent, "remote_jitter_ms": leg.remote_jitter_ms,
    }


def _record_info(record_id: int, record: RecordRecord, directory: Path | None) -> dict[str, Any]:
    path = directory / record.file_name if directory is not None else None
    size = path.stat().st_size if path is not None and path.is_file() else 0
    return {
        "record_id": record_id, "record_name": record.file_name, "start_time": api_date(record.start_date),
        "duration": round(record.duration), "record_url": record.url, "file_size": size, "cost": 0,
        "transcription_url": "", "call_id": record.call_id or "",
    }


def _session_info(api: Api, p: Params, s: SessionRecord, with_calls: bool, with_records: bool) -> dict[str, Any]:
    end = s.end_date
    info: dict[str, Any] = {
        "call_session_history_id": s.id, "account_id": 1, "application_id": s.application_id,
        "application_name": s.application_name, "rule_name": s.rule_name, "start_date": api_date(s.start_date),
        "duration": None if end is None else round(end - s.start_date), "initiator_address": s.initiator,
        "media_server_address": api.account_name, "custom_data": s.custom_data,
        "finish_reason": s.finish_reason or ("" if end is not None else "in progress"),
        "log_file_url": f"{p.base_url}/logs/session/{s.id}/{s.log_secret}" if s.log_secret else "",
    }
    if with_calls:
        info["calls"] = [_call_info(leg) for leg in api.history.legs(s.id)]
    if with_records:
        directory = api.recordings.directory if api.recordings is not None else None
        info["records"] = [_record_info(record_id, r, directory) for record_id, r in api.history.records_with_ids(s.id)]
    info["other_resource_usage"] = []
    return info


def get_call_history(api: Api, p: Params) -> dict[str, Any]:
    since, until = p.date("from_date", required=True), p.date("to_date", required=True)
    assert since is not None and until is not None
    if until < since:
        raise ApiError(400, ERR_PARAMETER, "to_date is before from_date")
    count, offset = p.page(max_offset=MAX_OFFSET)
    matched, app = api.application_filter(p)
    if not matched:
        return listing([], 0, offset)
    remote = (p.names("remote_number_list") or []) + (p.names("remote_number") or [])
    user_id = p.integer("user_id")
    line = None
    if user_id is not None:
        user = next((u for u in api.sip_lines.users() if u.id == user_id), None)
        line = user.name if user is not None else f"no user {user_id}"
    query = SessionQuery(
        since, until, session_ids=p.ids("call_session_history_id") or [],
        application_id=None if app is None else app.id,
        rule_name=p.optional_text("rule_name"), custom_data=p.optional_text("call_session_history_custom_data"),
        remote_numbers=remote, local_number=p.optional_text("local_number"), line=line,
        min_duration=p.integer("min_duration", minimum=0), max_duration=p.integer("max_duration", minimum=0),
        desc=p.boolean("desc_order"))
    sessions, total = api.history.sessions(query, count, offset)
    with_calls, with_records = p.boolean("with_calls"), p.boolean("with_records")
    page = [_session_info(api, p, s, with_calls, with_records) for s in sessions]
    answer = listing(page, total, offset)
    if not p.boolean("with_total_count", default=True):
        del answer["total_count"]
    return answer


METHODS = [
    Method("GetCallHistory", get_call_history),
]
