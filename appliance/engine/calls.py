"""A session's call legs: commands from its `Call` objects to legs, leg events back as `CallEvents`.

The session owns its legs: it counts them for the idle rule (a session without calls ends after
60 s), and hangs them all up when it ends. Legs come from two places: an incoming leg routed to the
session (`attach_incoming`, which fires AppEvents.CallAlerting) and `VoxEngine.callSIP/callUser`
(`dial`, through the engine's `Dialer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

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
    Unhold,
)
from appliance.lines.line import Originate

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
    """Where outgoing legs come from (the SIP user agent and, later, the other lines)."""

    def dial(self, kind: str, to: str, options: Originate, out_proxy: str) -> Leg:
        """A new outgoing leg of `kind` ("sip" or "user") to `to`; DialError when impossible."""


class SessionCalls:
    def __init__(self, session_id: int, dialer: Dialer | None, deliver: Callable[[Command], None],
                 count_changed: Callable[[int], None], note: Callable[[str], None]) -> None:
        self._session_id = session_id
        self._dialer = dialer
        self._deliver = deliver  # an event into the session's JS
        self._count_changed = count_changed
        self._note = note  # a system line in the session log
        self._legs: dict[str, Leg] = {}  # by the id JS knows the call by
        self._since: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._legs)

    def unit_of(self, call_id: str) -> str | None:
        """The media unit of a call's leg, once the leg has one."""
        leg = self._legs.get(call_id)
        media = leg.media if leg is not None else None
        return media.id if media is not None else None

    def attach_incoming(self, leg: Leg) -> None:
        self._adopt(leg.id, leg)
        self._deliver({
            "type": "call", "event": "alerting", "id": leg.id,
            "info": {
                "callerid": leg.caller.number, "displayName": leg.caller.display_name, "number": leg.callee.number,
                "toURI": leg.callee.uri, "fromURI": leg.caller.uri, "headers": leg.headers,
                "clientType": leg.kind,
            },
        })

    def _adopt(self, call_id: str, leg: Leg) -> None:
        self._legs[call_id] = leg
        leg.on_event = lambda event: self._on_event(call_id, leg, event)
        self._count_changed(len(self._legs))

    def dial(self, cmd: Command) -> None:
        call_id = str(cmd["id"])
        options = Originate(
            caller=str(cmd.get("callerid", "")), display_name=str(cmd.get("displayName", "")),
            headers=tuple((str(k), str(v)) for k, v in dict(cmd.get("headers") or {}).items()),
            auth_user=str(cmd.get("authUser", "")), password=str(cmd.get("password", "")),
        )
        try:
            if self._dialer is None:
                raise DialError(503, "no lines to call through")
            leg = self._dialer.dial(str(cmd["kind"]), str(cmd["to"]), options, str(cmd.get("outProxy", "")))
        except DialError as exc:
            self._deliver({"type": "call", "id": call_id, "name": "Call.Failed",
                           "data": {"code": exc.code, "reason": exc.reason, "headers": {}}})
            return
        self._adopt(call_id, leg)

    def apply(self, cmd: Command) -> None:
        leg = self._legs.get(str(cmd["id"]))
        if leg is None:
            return
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
        else:
            log.warning("session %d: unknown call action %r", self._session_id, action)

    def hangup_all(self) -> None:
        for leg in list(self._legs.values()):
            if leg.state is not LegState.TERMINATED:
                leg.hangup()

    def _on_event(self, call_id: str, leg: Leg, event: LegEvent) -> None:
        if isinstance(event, MediaNotice) and event.name == MEDIA_ERROR:
            self._note(f"call {call_id}: bad media: {event.detail}")
        for name, data in _call_events(leg, event):
            self._deliver({"type": "call", "id": call_id, "name": name, "data": data})
        if isinstance(event, (Disconnected, Failed)):
            self._legs.pop(call_id, None)
            self._count_changed(len(self._legs))


def _call_events(leg: Leg, event: LegEvent) -> list[tuple[str, dict[str, Any]]]:
    """The CallEvents one leg event becomes, with their payloads (reference section 2.3)."""
    if isinstance(event, Ringing):
        return [("Call.Ringing", {"headers": event.headers})]
    if isinstance(event, EarlyMedia):
        return [("Call.AudioStarted", {"headers": event.headers, "scheme": ""})]
    if isinstance(event, Connected):
        return [("Call.Connected", {"headers": event.headers, "scheme": ""}),
                ("Call.AudioStarted", {"headers": event.headers, "scheme": ""})]
    if isinstance(event, Disconnected):
        return [("Call.Disconnected", {
            "headers": event.headers, "internalCode": event.code, "reason": event.reason,
            "duration": round(getattr(leg, "duration", 0.0)), "cost": 0,
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
    assert isinstance(event, TransferRequested)
    return [("Call.BlindTransferRequested", {"headers": event.headers, "transferTo": event.target})]
