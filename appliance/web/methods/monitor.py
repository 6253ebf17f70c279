"""The dashboard's methods (the box's own, not Voximplant's): its health now and over the last hour, the
calls in progress with their quality, and hanging them up. The web panel calls these same methods.

GetHealth, GetHealthHistory, GetActiveCalls, HangupCall.
"""

from __future__ import annotations

from typing import Any

from appliance.engine.calls import _Tracked
from appliance.engine.session import FINISH_ADMIN, Session
from appliance.media.endpoint import RtpEndpoint
from appliance.supervisor.metrics import Sample
from appliance.web.api import Api, Method, Params, api_date, listing, not_found

HEALTH_FIGURES = ("cpu_percent", "memory", "loop_lag_ms", "tick_overruns", "uptime_seconds", "calls_started")


async def get_health(api: Api, p: Params) -> dict[str, Any]:
    """The box's vital figures: sessions, their calls, lines' calls, the media plane; CPU (100 = one core),
    memory (rss, used, total bytes), event-loop lag, media tick overruns since start, uptime."""
    figures = api.metrics.current()
    return {"result": {**api.health(), **{name: figures[name] for name in HEALTH_FIGURES}}}


def _sample_info(sample: Sample) -> dict[str, Any]:
    return {
        "time": api_date(sample.time), "timestamp": round(sample.time, 3),
        "cpu_percent": round(sample.cpu_percent, 1), "loop_lag_ms": round(sample.loop_lag_ms, 3),
        "tick_overruns": sample.tick_overruns, "calls": sample.calls, "sessions": sample.sessions,
        "calls_started": sample.calls_started, "rss": sample.rss, "memory_used": sample.memory_used,
    }


async def get_health_history(api: Api, p: Params) -> dict[str, Any]:
    """The last hour's samples, oldest first (one every `sample_seconds`)."""
    samples = [_sample_info(s) for s in api.metrics.history()]
    return {**listing(samples, len(samples), 0), "sample_seconds": api.metrics.sample_seconds}


def _leg_info(call_id: str, tracked: _Tracked) -> dict[str, Any]:
    leg = tracked.leg
    remote, local = (leg.caller, leg.callee) if leg.incoming else (leg.callee, leg.caller)
    media = leg.media
    return {
        "call_id": call_id, "direction": "incoming" if leg.incoming else "outgoing", "kind": leg.kind,
        "remote_number": remote.number, "display_name": remote.display_name, "local_number": local.number,
        "line": leg.line, "state": leg.state.value,
        "start_date": api_date(tracked.started), "start_timestamp": round(tracked.started, 3),
        "connect_date": api_date(tracked.answered),
        "connect_timestamp": None if tracked.answered is None else round(tracked.answered, 3),
        "duration": round(leg.duration, 1),
        "quality": media.quality if isinstance(media, RtpEndpoint) else None,
    }


def _session_info(session: Session) -> dict[str, Any]:
    spec = session.spec
    return {
        "call_session_history_id": session.id,
        "application_id": spec.application_id, "application_name": spec.application_name,
        "rule_id": spec.rule_id, "rule_name": spec.rule_name,
        "start_date": api_date(session.started_at), "start_timestamp": round(session.started_at, 3),
        "calls": [_leg_info(call_id, tracked) for call_id, tracked in session.legs.live()],
    }


async def get_active_calls(api: Api, p: Params) -> dict[str, Any]:
    """Every live session (or the one named by call_session_history_id) with each of its call legs: who,
    which line, state, times, and RTCP quality both ways (`local`: measured here on what the peer sends;
    `remote`: what the peer's reports say of what we send)."""
    wanted = p.integer("call_session_history_id")
    sessions = [s for s in list(api.engine.sessions.values()) if s.live and wanted in (None, s.id)]
    found = [_session_info(s) for s in sorted(sessions, key=lambda s: s.id)]
    return listing(found, len(found), 0)


def _session(api: Api, p: Params) -> Session:
    session_id = p.integer("call_session_history_id", required=True)
    session = api.engine.sessions.get(session_id or 0)
    if session is None or not session.live:
        raise not_found("live session", session_id)
    return session


async def hangup_call(api: Api, p: Params) -> dict[str, Any]:
    """With call_id: that leg hangs up as if its far end had (the scenario gets CallEvents.Disconnected and
    decides what follows). Without: the whole session ends, as VoxEngine.terminate() would end it."""
    session = _session(api, p)
    call_id = p.optional_text("call_id", max_chars=200)
    if not call_id:
        session.terminate(reason=FINISH_ADMIN)
        return {"result": 1}
    tracked = dict(session.legs.live()).get(call_id)
    if tracked is None:
        raise not_found("call", f"{call_id} in session {session.id}")
    tracked.leg.hangup()
    return {"result": 1}


METHODS = [
    Method("GetHealth", get_health),
    Method("GetHealthHistory", get_health_history),
    Method("GetActiveCalls", get_active_calls),
    Method("HangupCall", hangup_call, writes=True),
]
