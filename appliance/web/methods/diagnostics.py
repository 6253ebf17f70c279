"""What the panel's Logs page shows: the daemon's own log (GetSystemLog) and the SIP messages of a call
(GetSipTrace). Both read what the box keeps in memory (appliance/logs.py, appliance/sip/trace.py),
so they cover the recent past only, and they run on the event loop.
"""

from __future__ import annotations

from typing import Any

from appliance.logs import LEVELS, SYSTEM_LOG_LINES
from appliance.sip.trace import TracedMessage
from appliance.web.api import ERR_NOT_FOUND, Api, ApiError, Method, Params, invalid, not_found

SYSTEM_LOG_COUNT = 200  # records per GetSystemLog answer unless `count` says otherwise


async def get_system_log(api: Api, p: Params) -> dict[str, Any]:
    """The daemon's latest log records after sequence number `after`, oldest first; poll with after=last."""
    after = p.integer("after", minimum=0) or 0
    count = p.integer("count", minimum=1, maximum=SYSTEM_LOG_LINES) or SYSTEM_LOG_COUNT
    level_name = p.text("level").strip().lower()
    if level_name and level_name not in LEVELS:
        raise invalid("level", f"one of {', '.join(LEVELS)}, not {level_name[:40]!r}")
    if api.system_log is None:
        return {"result": [], "last": 0, "missed": 0, "more": False}
    tail = api.system_log.read(after, count, LEVELS.get(level_name, 0))
    return {"result": [r.as_dict() for r in tail.records], "last": tail.last, "missed": tail.missed,
            "more": tail.more}


def _message_info(m: TracedMessage) -> dict[str, Any]:
    host = f"[{m.peer.host}]" if ":" in m.peer.host else m.peer.host
    return {"time": m.time, "direction": "out" if m.outgoing else "in", "remote": f"{host}:{m.peer.port}",
            "transport": m.peer.transport, "sip_call_id": m.call_id, "first_line": m.first_line, "text": m.text}


async def get_sip_trace(api: Api, p: Params) -> dict[str, Any]:
    """The SIP messages of one dialog (`sip_call_id`), or of every SIP leg of a session
    (`call_session_history_id`, live or ended), in the order they were sent and received."""
    session_id, sip_call_id = p.one_of("call_session_history_id", "sip_call_id")
    if session_id is not None:
        call_ids = await _session_call_ids(api, session_id)
        what = f"session {session_id}"
    else:
        assert sip_call_id is not None
        call_ids = [sip_call_id]
        what = f"Call-ID {sip_call_id}"
    messages = api.sip_trace.messages(call_ids) if api.sip_trace is not None else []
    if not messages:
        raise ApiError(404, ERR_NOT_FOUND, f"no SIP messages of {what} are kept (the box keeps those of recent "
                       "calls only)")
    assert api.sip_trace is not None
    return {"result": [_message_info(m) for m in messages], "sip_call_ids": list(dict.fromkeys(call_ids)),
            "missed": api.sip_trace.dropped(call_ids)}


async def _session_call_ids(api: Api, session_id: int) -> list[str]:
    """The SIP Call-IDs of a session's legs: those that ended (call history) and those that live."""
    def recorded() -> tuple[bool, list[str]]:
        known = api.history.session(session_id) is not None
        return known, [leg.sip_call_id for leg in api.history.legs(session_id) if leg.sip_call_id]

    known, call_ids = await api.db.call(recorded)
    live = api.engine.sessions.get(session_id)
    if live is not None:
        call_ids += live.legs.sip_call_ids()
    elif not known:
        raise not_found("session", session_id)
    return list(dict.fromkeys(call_ids))


METHODS = [
    Method("GetSystemLog", get_system_log),
    Method("GetSipTrace", get_sip_trace),
]
