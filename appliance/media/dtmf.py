"""DTMF as RFC 4733 telephone events: the payload format, and a receiver that reports each key once.

A key press is one event: every packet of it carries the same RTP timestamp (its start), the last
three carry the E bit, and any of them may be lost, repeated or reordered. The receiver reports a key
on the first packet of a new event (the earliest moment, as users expect a menu to react) and
ignores all further packets of it, including the retransmitted ends.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENTS = "0123456789*#ABCD"  # event codes 0-15 (RFC 4733 section 3.2)
PAYLOAD = struct.Struct("!BBH")
REMEMBERED = 16  # recent events per sender, enough for any reordering within a jitter buffer


class DtmfError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int  # -dBm0, 0..63
    duration: int  # timestamp units since the event's start

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < PAYLOAD.size:
            raise DtmfError(f"a telephone event is 4 bytes, not {len(payload)}")
        event, flags, duration = PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def serialize(self) -> bytes:
        return PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @property
    def key(self) -> str | None:
        return EVENTS[self.event] if self.event < len(EVENTS) else None


class DtmfReceiver:
    """Turns a sender's telephone-event packets into keys, each reported once."""

    def __init__(self) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=REMEMBERED)  # (ssrc, timestamp) of recent events

    def receive(self, ssrc: int, timestamp: int, payload: bytes) -> str | None:
        """The key a packet starts, or None (a later packet of a known event, or not a key)."""
        event = TelephoneEvent.parse(payload)
        if (ssrc, timestamp) in self._seen:
            return None
        self._seen.append((ssrc, timestamp))
        return event.key
