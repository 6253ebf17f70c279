"""A session's call legs: commands from its `Call` objects to legs, leg events back as `CallEvents`.

The session owns its legs: it counts them for the idle rule (a session without calls ends after
60 s), and hangs them all up when it ends. Legs come from two places: an incoming leg routed to the
session (`attach_incoming`, which fires AppEvents.CallAlerting) and `VoxEngine.callSIP/callUser/
callPSTN` (`dial`, through the engine's `Dialer`) or `callConference` (through its `Conferences`).
Each leg leaves a record in the call history when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from appliance.clock import Timer
from appliance.engine import limits
from appliance.errors import ApplianceError
from appliance.legs.leg import (
    Connected,
    Disconnected,
    Dtmf,
    EarlyMedia,
    Failed,
    Hold,
    Info,
    Leg,
    LegEvent,
    LegState,
    MediaNotice,
    Message,
    Ringing,
    TransferRequested,
    TransferResult,
    Unhold,
)
from appliance.lines.line import Originate
from appliance.media.endpoint import RtpEndpoint
from appliance.store.history import LegRecord

if TYPE_CHECKING:
    from appliance.engine.session import Session as CallOwner

log = logging.getLogger(__name__)

Command = dict[str, Any]
DTMF_KIND = {"rfc2833": "1", "inband": "2", "info": "3"}  # Call.ToneReceived's `type`
MEDIA_ERROR = "MediaError"  # bad input on a leg's media: a session log line, no CallEvents member


class DialError(ApplianceError):
    """A leg could not be created; `code` and `reason` go into Call.Failed."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


class Dialer(Protocol):
    """Where outgoing legs come from: SIP users, trunks and URIs, and outbound routes to the lines."""

    def dial(self, kind: str, to: str, options: Originate, out_proxy: str) -> Leg:
        """A new outgoing leg of `kind` ("sip", "user" or "pstn") to `to`; DialError when impossible."""


class Conferences(Protocol):
    """Standalone conference sessions (reference section 4.7): `callConference` joins one."""

    def join(self, application_id: int | None, conference_id: str, options: Originate) -> Leg:
        """The outgoing leg of a call into the conference session for `conference_id` (started from the
        rule matching the id if it is not running); DialError when no rule matches."""


@dataclass
class _Tracked:
    """What the session keeps of a leg while it lives: for the rules and the call history."""

    leg: Leg
    started: float  # wall time
    answered: float | None = None
    no_answer: Timer | None = None


class SessionCalls:
    """A session's legs under VoxEngine's rules (reference sections 4.2 and 4.8): at most 50 call attempts
    and 10 unanswered outgoing calls, and 60 s for any leg to be answered."""

    def __init__(self, session: CallOwner, deliver: Callable[[Command], None],
                 count_changed: Callable[[int], None], note: Callable[[str], None]) -> None:
        self._session = session
        self._deliver = deliver  # an event into the session's JS
        self._count_changed = count_changed
        self._note = note  # a system line in the session log
        self._legs: dict[str, _Tracked] = {}  # live legs, by the id JS knows the call by
        self._attempts = 0

    def __len__(self) -> int:
        return len(self._legs)

    def live(self) -> list[tuple[str, _Tracked]]:
        """Every live leg with the id its JS Call has, and when it started and was answered (for the panel)."""
        return list(self._legs.items())

    def unit_of(self, call_id: str) -> str | None:
        """The media unit of a call's leg, once the leg has one."""
        tracked = self._legs.get(call_id)
        media = tracked.leg.media if tracked is not None else None
        return media.id if media is not None else None

    def sip_call_ids(self) -> list[str]:
        """The SIP Call-IDs of its live legs (for the SIP trace); legs of other kinds have none."""
        return [found for tracked in self._legs.values() if (found := sip_call_id(tracked.leg))]

    def attach_incoming(self, leg: Leg) -> None:
        self._attempts += 1
        self._adopt(leg.id, leg)
        self._deliver({
            "type": "call", "event": "alerting", "id": leg.id,
            "info": {
                "callerid": leg.caller.number, "displayName": leg.caller.display_name, "number": leg.callee.number,
                "toURI": leg.callee.uri, "fromURI": leg.caller.uri, "headers": leg.headers,
                "clientType": leg.kind,
            },
        })

    def _adopt(self, call_id: str, leg: Leg, no_answer_seconds: float = limits.NO_ANSWER_SECONDS) -> None:
        clock = self._session.engine.clock
        tracked = _Tracked(leg, clock.time())
        if leg.state in (LegState.ALERTING, LegState.PROGRESSING):
            tracked.no_answer = clock.call_later(no_answer_seconds, leg_gives_up(leg))
        self._legs[call_id] = tracked
        self._session.engine.calls_started += 1
        leg.on_event = lambda event: self._on_event(call_id, tracked, event)
        self._count_changed(len(self._legs))

    def dial(self, cmd: Command) -> None:
        call_id = str(cmd["id"])
        kind, to = str(cmd["kind"]), str(cmd["to"])
        options = Originate(
            caller=str(cmd.get("callerid", "")), display_name=str(cmd.get("displayName", "")),
            headers=tuple((str(k), str(v)) for k, v in dict(cmd.get("headers") or {}).items()),
            auth_user=str(cmd.get("authUser", "")), password=str(cmd.get("password", "")),
        )
        engine = self._session.engine
        try:
            self._within_limits()
            self._attempts += 1
            if kind == "conference":
                if engine.conferences is None:
                    raise DialError(503, "conferences are not available here")
                leg = engine.conferences.join(self._session.spec.application_id, to, options)
            else:
                if engine.dialer is None:
                    raise DialError(503, "no lines to call through")
                leg = engine.dialer.dial(kind, to, options, str(cmd.get("outProxy", "")))
        except DialError as exc:
            self._note(f"call {call_id} to {to} failed at once: {exc.code} {exc.reason}")
            self._deliver({"type": "call", "id": call_id, "name": "Call.Failed",
                           "data": {"code": exc.code, "reason": exc.reason, "headers": {}}})
            return
        self._adopt(call_id, leg, float(cmd.get("noAnswerSeconds") or limits.NO_ANSWER_SECONDS))

    def _within_limits(self) -> None:
        if self._attempts >= limits.CALL_ATTEMPTS:
            raise DialError(403, f"Call limit reached ({limits.CALL_ATTEMPTS} call attempts per session)")
        progressing = sum(1 for t in self._legs.values() if t.leg.state is LegState.PROGRESSING)
        if progressing >= limits.PROGRESSING_CALLS:
            raise DialError(403, f"Call limit reached ({limits.PROGRESSING_CALLS} unanswered calls at once)")

    def apply(self, cmd: Command) -> None:
        tracked = self._legs.get(str(cmd["id"]))
        if tracked is None:
            return
        leg = tracked.leg
        action = cmd.get("action")
        headers = {str(k): str(v) for k, v in dict(cmd.get("headers") or {}).items()}
        if action == "answer":
            leg.answer(headers)
        elif action == "ring":
            leg.ring(headers)
        elif action == "earlyMedia":
            leg.early_media(headers)
        elif action == "reject":
            leg.reject(int(cmd.get("code", 486)), headers)
        elif action == "hangup":
            leg.hangup(headers)
        elif action == "dtmf":
            leg.send_dtmf(str(cmd.get("digits", "")))
        elif action == "info":
            leg.send_info(str(cmd.get("mimeType", "")), str(cmd.get("body", "")), headers)
        elif action == "message":
            leg.send_message(str(cmd.get("text", "")))
        elif action == "transfer":
            leg.transfer(str(cmd.get("to", "")), headers)
        elif action == "transferOutcome":
            leg.transfer_outcome(bool(cmd.get("ok")), int(cmd.get("code", 200)), str(cmd.get("reason", "")))
        else:
            log.warning("session %d: unknown call action %r", self._session.id, action)

    def hangup_all(self) -> None:
        for tracked in list(self._legs.values()):
            if tracked.leg.state is not LegState.TERMINATED:
                tracked.leg.hangup()

    def _on_event(self, call_id: str, tracked: _Tracked, event: LegEvent) -> None:
        if isinstance(event, MediaNotice) and event.name == MEDIA_ERROR:
            self._note(f"call {call_id}: bad media: {event.detail}")
        if isinstance(event, (Connected, Disconnected, Failed)) and tracked.no_answer is not None:
            tracked.no_answer.cancel()
            tracked.no_answer = None
        if isinstance(event, Connected):
            tracked.answered = self._session.engine.clock.time()
        for name, data in _call_events(tracked.leg, event):
            self._deliver({"type": "call", "id": call_id, "name": name, "data": data})
        if isinstance(event, (Disconnected, Failed)) and self._legs.pop(call_id, None) is not None:
            self._record(call_id, tracked, event)
            self._count_changed(len(self._legs))

    def _record(self, call_id: str, tracked: _Tracked, event: Disconnected | Failed) -> None:
        leg = tracked.leg
        media = leg.media.summary if isinstance(leg.media, RtpEndpoint) else {}
        self._session.engine.record_leg(LegRecord(
            session_id=self._session.id, call_id=call_id, incoming=leg.incoming, kind=leg.kind, line=leg.line,
            caller=leg.caller.number, destination=leg.callee.number, start_date=tracked.started,
            answer_date=tracked.answered, end_date=self._session.engine.clock.time(),
            duration=round(leg.duration), code=event.code, reason=event.reason,
            codec=str(media.get("codec") or ""), lost_percent=_number(media.get("lost_percent")),
            jitter_ms=_number(media.get("jitter_ms")), remote_lost_percent=_number(media.get("remote_lost_percent")),
            remote_jitter_ms=_number(media.get("remote_jitter_ms")), sip_call_id=sip_call_id(leg),
        ))


def leg_gives_up(leg: Leg) -> Callable[[], None]:
    return lambda: leg.give_up(408, "Request Timeout")


def sip_call_id(leg: Leg) -> str:
    """A SIP leg's dialog Call-ID, '' for other legs (the engine does not otherwise look at SIP)."""
    found = getattr(leg, "sip_call_id", "")
    return found if isinstance(found, str) else ""


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _call_events(leg: Leg, event: LegEvent) -> list[tuple[str, dict[str, Any]]]:
    """The CallEvents one leg event becomes, with their payloads (reference section 2.3)."""
    if isinstance(event, Ringing):
        return [("Call.Ringing", {"headers": event.headers})]
    if isinstance(event, EarlyMedia):
        return [("Call.AudioStarted", {"headers": event.headers, "scheme": ""})]
    if isinstance(event, Connected):  # audio starts with the answer (reference 4.2: AudioStarted, then Connected)
        return [("Call.AudioStarted", {"headers": event.headers, "scheme": ""}),
                ("Call.Connected", {"headers": event.headers, "scheme": ""})]
    if isinstance(event, Disconnected):
        return [("Call.Disconnected", {
            "headers": event.headers, "internalCode": event.code, "reason": event.reason,
            "duration": round(leg.duration), "cost": 0,
            "direction": "incoming" if leg.incoming else "outgoing",
        })]
    if isinstance(event, Failed):
        return [("Call.Failed", {"headers": event.headers, "code": event.code, "reason": event.reason})]
    if isinstance(event, Dtmf):
        return [("Call.ToneReceived", {"tone": event.tone, "type": DTMF_KIND.get(event.kind, "1")})]
    if isinstance(event, Info):
        return [("Call.InfoReceived", {"headers": event.headers, "mimeType": event.mime_type, "body": event.body})]
    if isinstance(event, Message):
        return [("Call.MessageReceived", {"headers": event.headers, "text": event.text})]
    if isinstance(event, Hold):
        return [("Call.OnHold", {})]
    if isinstance(event, Unhold):
        return [("Call.OffHold", {})]
    if isinstance(event, MediaNotice):
        return [] if event.name == MEDIA_ERROR else [(f"Call.{event.name}", {})]
    if isinstance(event, TransferResult):
        if event.ok:
            return [("Call.TransferComplete", {"headers": event.headers, "role": "transferor"})]
        return [("Call.TransferFailed", {"headers": event.headers, "role": "transferor", "code": event.code,
                                         "reason": event.reason})]
    assert isinstance(event, TransferRequested)
    return [("Call.BlindTransferRequested", {"headers": event.headers, "transferTo": event.target})]
