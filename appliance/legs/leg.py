"""A call leg, whatever technology carries it (DESIGN section 3a): its state, operations and events.

SIP, GSM and analog lines each implement `Leg`; the session engine drives legs only through it and
turns its events into VoxEngine `CallEvents`. Operations never raise for a leg that has ended: a
late `hangup()` after the far end hung up is a no-op, as scripts expect.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from appliance.media.graph import Routable


class LegState(enum.Enum):
    ALERTING = "ALERTING"  # incoming, not answered
    PROGRESSING = "PROGRESSING"  # outgoing, not answered
    CONNECTED = "CONNECTED"
    TERMINATED = "TERMINATED"


@dataclass(frozen=True)
class Party:
    """One end of a leg as VoxEngine shows it: a number or user name, a display name, the URI."""

    number: str
    display_name: str = ""
    uri: str = ""


# Events, in the order VoxEngine names them.


@dataclass(frozen=True)
class Ringing:
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyMedia:
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Connected:
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Disconnected:
    """A connected leg ended (or an incoming one was rejected); `by_remote` says who ended it."""

    headers: dict[str, str] = field(default_factory=dict)
    code: int = 200
    reason: str = "Normal call clearing"
    by_remote: bool = True


@dataclass(frozen=True)
class Failed:
    """An outgoing leg ended before it connected."""

    code: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dtmf:
    tone: str
    kind: str  # "rfc2833" (RFC 4733 events), "info" (SIP INFO) or "inband"


@dataclass(frozen=True)
class Info:
    mime_type: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    text: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hold:
    pass


@dataclass(frozen=True)
class Unhold:
    pass


@dataclass(frozen=True)
class TransferRequested:
    target: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferResult:
    """How a transfer we asked for (transferTo) ended: the far end reports the new call's outcome."""

    ok: bool
    code: int = 200
    reason: str = "OK"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaNotice:
    """News from the leg's media: FirstAudioPacketReceived, RtpStopped, RtpResumed, or MediaError (bad input)."""

    name: str
    detail: str = ""


LegEvent = (Ringing | EarlyMedia | Connected | Disconnected | Failed | Dtmf | Info | Message | Hold | Unhold
            | TransferRequested | TransferResult | MediaNotice)
EventSink = Callable[[LegEvent], None]

class HeldEvents:
    """A leg's event outlet: events before anyone listens are kept, and delivered in order once
    `on_event` is set (an incoming leg emits before its session exists)."""

    def __init__(self) -> None:
        self._on_event: EventSink | None = None
        self._held: list[LegEvent] = []

    @property
    def on_event(self) -> EventSink | None:
        return self._on_event

    @on_event.setter
    def on_event(self, sink: EventSink | None) -> None:
        self._on_event = sink
        held, self._held = self._held, []
        if sink is not None:
            for event in held:
                sink(event)

    def _emit(self, event: LegEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)
        else:
            self._held.append(event)


_ids = itertools.count(1)


def new_leg_id() -> str:
    return f"leg-{next(_ids)}"


class Leg(Protocol):
    id: str
    incoming: bool
    state: LegState
    caller: Party
    callee: Party
    headers: dict[str, str]  # of the call's first message: X- headers and the like
    kind: str  # VoxEngine's clientType: "sip", "user", "pstn"
    line: str  # the name of the line it came in on or went out through, for the call history
    on_event: EventSink | None  # set by whoever drives the leg; events before that are kept

    @property
    def duration(self) -> float:
        """Seconds since it connected (0 if it never did)."""

    @property
    def media(self) -> Routable | None:
        """The leg's media unit in the media plane's graph, once it has one."""

    def ring(self, headers: dict[str, str] | None = None) -> None: ...

    def early_media(self, headers: dict[str, str] | None = None) -> None: ...

    def answer(self, headers: dict[str, str] | None = None) -> None: ...

    def reject(self, code: int, headers: dict[str, str] | None = None) -> None: ...

    def hangup(self, headers: dict[str, str] | None = None) -> None: ...

    def give_up(self, code: int, reason: str) -> None:
        """End an unanswered leg with `code`: an incoming one is refused (Disconnected), an outgoing one
        cancelled (Failed). The session's 60 s no-answer rule; nothing happens to an answered leg."""

    def send_dtmf(self, digits: str) -> None: ...

    def send_info(self, mime_type: str, body: str, headers: dict[str, str] | None = None) -> None: ...

    def send_message(self, text: str, headers: dict[str, str] | None = None) -> None: ...

    def transfer(self, target: str, headers: dict[str, str] | None = None) -> None:
        """Ask the far end to call `target` (a blind transfer); TransferResult follows."""

    def transfer_outcome(self, ok: bool, code: int, reason: str) -> None:
        """Tell the far end how the transfer it asked us for went (after TransferRequested)."""
