"""A call that never leaves the box: two legs wired to each other, signalling and audio.

`callConference` joins a session to a conference session this way, and the offline harness puts its
virtual phones on the far leg. The outgoing leg (`LocalCall.caller`) is what the calling side holds;
the incoming leg (`LocalCall.callee`) alerts whoever receives the call. Each leg is a media unit:
what is sent into one leg comes out of the other one tick later, once the callee has started early
media (callee to caller only) or answered (both ways), as on a real line.
"""

from __future__ import annotations

import functools

from appliance.clock import Clock
from appliance.legs.leg import (
    Connected,
    Disconnected,
    Dtmf,
    EarlyMedia,
    Failed,
    HeldEvents,
    Info,
    LegState,
    Message,
    Party,
    Ringing,
    TransferRequested,
    TransferResult,
    new_leg_id,
)
from appliance.media.audio import Frame
from appliance.media.plane import MediaPlane

KEY_SECONDS = 0.25  # one key of sendDigits, tone and gap, as a phone sends it
PAUSE_SECONDS = 1.0  # 'p' in sendDigits


class LocalMedia:
    """A local leg's media unit: it hears what its session sends and says what the other leg heard."""

    def __init__(self, unit_id: str, leg: LocalLeg) -> None:
        self.id = unit_id
        self._leg = leg
        self.heard: Frame | None = None

    def output(self) -> Frame | None:
        far = self._leg.far
        if far is None or not self._leg.hears_far():
            return None
        return far.media.heard

    def input(self, frame: Frame) -> None:
        self.heard = frame.copy()  # the mixer's row is overwritten next tick


class LocalLeg(HeldEvents):
    """One end of a `LocalCall` (the `Leg` interface)."""

    def __init__(self, call: LocalCall, incoming: bool, kind: str) -> None:
        super().__init__()
        self.id = new_leg_id()
        self.incoming = incoming
        self.kind = kind
        self.line = "local"
        self.state = LegState.ALERTING if incoming else LegState.PROGRESSING
        self.caller = call.caller_party
        self.callee = call.callee_party
        self.headers = dict(call.headers)
        self.connected_at: float | None = None
        self.far: LocalLeg | None = None
        self._call = call
        self._early = False
        self._rung = False
        self.media = LocalMedia(f"local-{self.id}", self)
        call.plane.graph.add(self.media)

    def hears_far(self) -> bool:
        """Does audio from the other leg reach this one? The caller hears early media; nobody hears the
        caller before the answer."""
        if self.state is LegState.CONNECTED:
            return True
        return not self.incoming and self.far is not None and self.far._early and self.state is LegState.PROGRESSING

    @property
    def duration(self) -> float:
        return 0.0 if self.connected_at is None else self._call.clock.monotonic() - self.connected_at

    def _end(self, event: Disconnected | Failed) -> None:
        if self.state is LegState.TERMINATED:
            return
        self.state = LegState.TERMINATED
        self._call.plane.release(self.media)
        self._emit(event)

    # The callee's answers.

    def ring(self, headers: dict[str, str] | None = None) -> None:
        if self.incoming and self.state is LegState.ALERTING and self.far is not None and not self._rung:
            self._rung = True
            self.far._emit(Ringing(dict(headers or {})))

    def early_media(self, headers: dict[str, str] | None = None) -> None:
        if self.incoming and self.state is LegState.ALERTING and self.far is not None and not self._early:
            self.ring(headers)
            self._early = True
            self.far._emit(EarlyMedia(dict(headers or {})))

    def answer(self, headers: dict[str, str] | None = None) -> None:
        far = self.far
        if not self.incoming or self.state is not LegState.ALERTING or far is None:
            return
        now = self._call.clock.monotonic()
        for leg in (self, far):
            leg.state = LegState.CONNECTED
            leg.connected_at = now
        self._emit(Connected())
        far._emit(Connected(dict(headers or {})))

    def reject(self, code: int, headers: dict[str, str] | None = None) -> None:
        if self.incoming and self.state is LegState.ALERTING:
            code = code if 300 <= code <= 699 else 486
            self._close(code, REASONS.get(code, "Rejected"), headers, by_remote=False)

    # Either side.

    def hangup(self, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.ALERTING:
            self.reject(603, headers)
        elif self.state is LegState.PROGRESSING:
            self._close(487, "Request Terminated", headers, by_remote=False)
        elif self.state is LegState.CONNECTED:
            self._close(200, "Normal call clearing", headers, by_remote=False)

    def give_up(self, code: int, reason: str) -> None:
        """An unanswered leg ends with `code` (the session's no-answer rule)."""
        if self.state in (LegState.ALERTING, LegState.PROGRESSING):
            self._close(code, reason, None, by_remote=False)

    def _close(self, code: int, reason: str, headers: dict[str, str] | None, by_remote: bool) -> None:
        """End this leg and the other: Failed for an outgoing leg that never connected, else Disconnected."""
        headers = dict(headers or {})
        far = self.far
        for leg, remote in ((self, by_remote), (far, not by_remote)):
            if leg is None or leg.state is LegState.TERMINATED:
                continue
            if leg.state is LegState.PROGRESSING:
                leg._end(Failed(code, reason, headers if remote else {}))
            else:
                leg._end(Disconnected(headers if remote else {}, code, reason, by_remote=remote))

    # In the call.

    def send_dtmf(self, digits: str) -> None:
        """The keys reach the other leg as RFC 4733-style events, paced as a phone sends them."""
        if self.state is not LegState.CONNECTED:
            return
        delay = 0.0
        for key in digits:
            if key in "pP":
                delay += PAUSE_SECONDS
                continue
            delay += KEY_SECONDS
            self._call.clock.call_later(delay, functools.partial(self._key_arrives, key.upper()))

    def _key_arrives(self, key: str) -> None:
        far = self.far
        if self.state is LegState.CONNECTED and far is not None:
            far._emit(Dtmf(key, "rfc2833"))

    def send_info(self, mime_type: str, body: str, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.CONNECTED and self.far is not None:
            self.far._emit(Info(mime_type, body, dict(headers or {})))

    def send_message(self, text: str, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.CONNECTED and self.far is not None:
            self.far._emit(Message(text, dict(headers or {})))

    def transfer(self, target: str, headers: dict[str, str] | None = None) -> None:
        if self.state is LegState.CONNECTED and self.far is not None:
            self.far._emit(TransferRequested(target, dict(headers or {})))

    def transfer_outcome(self, ok: bool, code: int, reason: str) -> None:
        far = self.far
        if self.state is LegState.CONNECTED and far is not None:
            far._emit(TransferResult(ok, code, reason))
            if ok:
                far.hangup()  # the transferor leaves once the transfer is done, as Voximplant does


REASONS = {
    403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 480: "Temporarily Unavailable", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 503: "Service Unavailable", 603: "Decline",
}


class LocalCall:
    """Both legs of one local call; `caller_kind`/`callee_kind` are what VoxEngine's clientType shows."""

    def __init__(self, plane: MediaPlane, clock: Clock, caller: Party, callee: Party,
                 headers: dict[str, str] | None = None, caller_kind: str = "sip", callee_kind: str = "sip") -> None:
        self.plane = plane
        self.clock = clock
        self.caller_party = caller
        self.callee_party = callee
        self.headers = dict(headers or {})
        self.caller = LocalLeg(self, incoming=False, kind=caller_kind)
        self.callee = LocalLeg(self, incoming=True, kind=callee_kind)
        self.caller.far, self.callee.far = self.callee, self.caller
