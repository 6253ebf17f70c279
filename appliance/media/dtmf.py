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


class DtmfSender:
    """Sends queued keys as RFC 4733 events, one media tick at a time.

    Each key is an event of `on_ms` (updates every tick, the first with the marker bit), whose end
    packet goes out three times, one tick apart (RFC 4733 section 2.5.1.4, so one lost packet does
    not lose the key's end); then `gap_ms` of audio before the next key.
    """

    VOLUME = 10  # -dBm0, the usual generation level

    def __init__(self, on_ms: int = 100, gap_ms: int = 60, clock_rate: int = 8000) -> None:
        self._on_units = clock_rate * on_ms // 1000
        self._gap_units = clock_rate * gap_ms // 1000
        self._queue: deque[int] = deque()
        self._event: int | None = None
        self._start = 0
        self._duration = 0
        self._ends_left = 0
        self._gap = 0

    def queue(self, keys: str) -> None:
        self._queue.extend(EVENTS.index(key) for key in keys)

    @property
    def busy(self) -> bool:
        return bool(self._queue) or self._event is not None or self._gap > 0

    def tick(self, timestamp: int, units: int) -> list[tuple[bool, int, bytes]] | None:
        """This tick's event packets as (marker, RTP timestamp, payload); None while audio flows."""
        if self._event is None:
            if self._gap > 0:
                self._gap = max(0, self._gap - units)
                return None
            if not self._queue:
                return None
            self._event = self._queue.popleft()
            self._start = timestamp
            self._duration = units
            self._ends_left = 3
            return [(True, self._start, TelephoneEvent(self._event, False, self.VOLUME, units).serialize())]
        if self._duration < self._on_units:
            self._duration = min(self._duration + units, 0xFFFF)
            end = self._duration >= self._on_units
            if not end:
                update = TelephoneEvent(self._event, False, self.VOLUME, self._duration)
                return [(False, self._start, update.serialize())]
        packet = TelephoneEvent(self._event, True, self.VOLUME, self._duration).serialize()
        self._ends_left -= 1
        if self._ends_left == 0:
            self._event = None
            self._gap = self._gap_units
        return [(False, self._start, packet)]
