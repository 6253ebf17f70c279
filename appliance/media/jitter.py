"""The adaptive jitter buffer of one incoming RTP stream.

Payloads are kept by RTP timestamp in a byte ring: every codec we carry (PCMU, PCMA, G.722) spends one
payload byte per tick of its 8000 Hz RTP clock, so a packet's bytes land at `timestamp mod CAPACITY`
whatever its ptime, and each media tick reads one tick's worth of bytes from the play-out point.

Play-out delay adapts from what arrivals show. For every packet the buffer notes its *margin*: how
long before the tick that will play it the packet arrived. Over each window (1 s):
- a packet that arrives after its frame was played is dropped as late, and the delay grows by one
  tick at once (the next read plays a concealed frame instead of advancing): a jitter spike costs
  one frame and is absorbed afterwards;
- `TIGHT_WINDOWS` windows in a row whose smallest margin kept below `SAFETY_MS` grow the delay by a
  tick before anything is late (a peer whose clock runs slow against ours; one packet held up once
  is not a reason);
- `CALM_WINDOWS` windows in a row whose smallest margin left room for a whole tick plus `SPARE_MS`
  shrink the delay by one tick, dropping a frame (the jitter has calmed down, or the peer's clock
  runs fast); a window with two ticks to spare shrinks at once, so even fast drift never piles up.
  SPARE_MS above SAFETY_MS is the hysteresis that keeps a stream whose margin hovers near a
  threshold from growing and shrinking in turn: growing costs no audio, shrinking costs a frame.
Play-out starts one tick behind the first packet (`start_ms`): a steady LAN stream then never
needs a frame dropped, and a jittery one grows to what it needs within its first packets.
Clock drift therefore costs one dropped or inserted frame every so often and never grows the delay;
the delay stays between one tick (20 ms) and `max_ms`.
A window in which nothing arrived (an outage, silence suppression) changes nothing. A timestamp jump
the ring cannot hold re-synchronises play-out on the new timestamps: at once forwards, after
`FAR_BEHIND` packets in a row backwards (a single stray packet from long ago is only late).
"""

from __future__ import annotations

from appliance.media.audio import TICK_MS

CAPACITY = 1 << 14  # RTP clock units the ring holds: 2.048 s at 8000 Hz, power of two for masking
WINDOW_TICKS = 50  # one adaptation decision per second
SAFETY_MS = 5.0  # the least margin we want for the latest packet of a window
SPARE_MS = 15.0  # the margin a shrink must leave (well above SAFETY_MS: hysteresis against timing noise)
CALM_WINDOWS = 3  # windows in a row with a tick to spare before the delay shrinks
TIGHT_WINDOWS = 2  # windows in a row with less than SAFETY_MS to spare before the delay grows early
FAR_BEHIND = 3  # packets in a row from further back than the ring holds: the stream jumped back, resync

# What `put` did with a packet.
STORED, LATE, DUPLICATE, RESYNC = "stored", "late", "duplicate", "resync"

_ZEROS = bytes(CAPACITY)
_ONES = b"\x01" * CAPACITY
INF = float("inf")


class JitterBuffer:
    """Payloads in, one tick of payload (or None: conceal) out, per media tick."""

    __slots__ = (
        "_behind", "_calm", "_grow", "_high", "_last_read", "_mask", "_max_units", "_rate", "_read_ts", "_ring",
        "_safety", "_spare", "_start_units", "_started", "_tight", "_window", "_window_high", "_window_low",
        "duplicates", "grown", "late", "lost", "resyncs", "shrunk", "tick_units",
    )

    def __init__(self, clock_rate: int = 8000, max_ms: int = 200, start_ms: int = 20) -> None:
        self._rate = clock_rate
        self.tick_units = clock_rate * TICK_MS // 1000
        self._max_units = clock_rate * max_ms // 1000
        self._start_units = clock_rate * start_ms // 1000
        self._safety = clock_rate * SAFETY_MS / 1000
        self._spare = clock_rate * SPARE_MS / 1000
        self._calm = 0  # windows in a row with a tick to spare
        self._tight = 0  # windows in a row cutting it fine
        self._ring = bytearray(CAPACITY)
        self._mask = bytearray(CAPACITY)  # 1 where the ring holds a byte not yet played
        self._started = False
        self._read_ts = 0  # RTP timestamp of the next tick to play
        self._last_read = 0.0  # when the last tick was read (monotonic seconds)
        self._grow = False
        self._behind = 0  # packets in a row from further back than the ring holds
        self._window = 0
        self._window_low = INF  # smallest and largest margin of this window, in RTP clock units
        self._window_high = -INF
        self._high = float(self._start_units - self.tick_units)  # the largest margin of the last window
        self.late = 0
        self.duplicates = 0
        self.lost = 0  # ticks played with nothing to play (concealed)
        self.grown = 0
        self.shrunk = 0
        self.resyncs = 0

    @property
    def delay_ms(self) -> float:
        """The buffer's size: audio queued ahead of play-out when the earliest packet of a window arrived."""
        return (max(self._high, 0.0) + self.tick_units) * 1000 / self._rate

    def reset(self) -> None:
        """Forget the stream (a new SSRC): the next packet starts play-out afresh."""
        self._mask[:] = _ZEROS
        self._started = False

    def put(self, timestamp: int, payload: bytes, now: float) -> str:
        """File one packet's payload; `now` is its arrival time (monotonic seconds)."""
        size = len(payload)
        if not self._started:
            self._start(timestamp, size, now)
        ahead = (timestamp - self._read_ts) & 0xFFFFFFFF
        resync = False
        if ahead >= 0x80000000:  # before the play-out point: its tick has been played
            if 0x100000000 - ahead <= CAPACITY:
                self.late += 1
                self._grow = True
                return LATE
            # Further back than the ring holds: a stray packet (late, without growing for it), or, when
            # FAR_BEHIND come in a row, the stream jumped back (a restart): start again from here.
            self._behind += 1
            if self._behind < FAR_BEHIND:
                self.late += 1
                return LATE
            resync = True
        elif ahead + size > CAPACITY - self.tick_units:  # a jump no jitter explains: start again from here
            resync = True
        self._behind = 0
        if resync:
            self.resyncs += 1
            self._mask[:] = _ZEROS
            self._start(timestamp, size, now)
            ahead = (timestamp - self._read_ts) & 0xFFFFFFFF
        at = timestamp & (CAPACITY - 1)
        if self._mask[at]:
            self.duplicates += 1
            return DUPLICATE
        end = at + size
        if end <= CAPACITY:
            self._ring[at:end] = payload
            self._mask[at:end] = _ONES[:size]
        else:  # wraps around the ring's end
            split = CAPACITY - at
            self._ring[at:] = payload[:split]
            self._ring[: end - CAPACITY] = payload[split:]
            self._mask[at:] = _ONES[:split]
            self._mask[: end - CAPACITY] = _ONES[: size - split]
        # Time left before the tick that plays this packet's first byte (read one tick after the last read);
        # that tick may start before the byte when packets are not one tick long.
        tick = self.tick_units
        margin = ahead - ahead % tick + tick - (now - self._last_read) * self._rate
        self._window_low = min(self._window_low, margin)
        self._window_high = max(self._window_high, margin)
        return RESYNC if resync else STORED

    def _start(self, timestamp: int, size: int, now: float) -> None:
        """Play `timestamp` once `start_ms` of audio is queued; packets that are not one tick long
        (10 or 30 ms ptime) need a tick more, so the first tick is whole when it is played."""
        tick = self.tick_units
        start = self._start_units if size == tick else self._start_units + tick * -(-size // tick)
        self._started = True
        self._read_ts = (timestamp - start + tick) & 0xFFFFFFFF
        self._last_read = now
        self._high = float(start - tick)
        self._window = 0
        self._window_low = INF
        self._window_high = -INF
        self._grow = False

    def get(self, now: float) -> bytes | None:
        """The payload of the next tick, or None when it is missing (the caller conceals it)."""
        if not self._started:
            return None
        self._last_read = now
        tick = self.tick_units
        if self._grow:  # a packet came too late: from now on play everything a tick later
            self._grow = False
            if self._can_grow():
                self._hold()
                return None
        self._window += 1
        if self._window >= WINDOW_TICKS:
            low = self._end_window()
            self._tight = self._tight + 1 if low < self._safety else 0
            # Cutting it fine two windows running (a slow peer clock, not one packet held up): grow early.
            if self._tight >= TIGHT_WINDOWS and self._can_grow():
                self._tight = 0
                self._hold()
                return None
            spare = (low - self._spare) // tick if low < INF else 0  # whole ticks to spare
            if spare >= 1:  # calmer network, or a peer clock running fast
                self._calm += 1
                if self._calm >= CALM_WINDOWS or spare >= 2:  # a lot to spare (fast drift): no waiting
                    self._calm = 0
                    self._shrink()
            elif low < INF:
                self._calm = 0
        at = self._read_ts & (CAPACITY - 1)
        self._read_ts = (self._read_ts + tick) & 0xFFFFFFFF
        payload = self._take(at, tick)
        if payload is None:
            self.lost += 1
        return payload

    def _can_grow(self) -> bool:
        return self._high + 2 * self.tick_units <= self._max_units

    def _hold(self) -> None:
        """Play a concealed tick without advancing: the delay grows by a tick."""
        self.grown += 1
        self.lost += 1
        self._high += self.tick_units
        self._window_low += self.tick_units
        self._window_high += self.tick_units

    def _shrink(self) -> None:
        """Skip the next tick: the delay shrinks by a tick."""
        self.shrunk += 1
        self._high -= self.tick_units
        at = self._read_ts & (CAPACITY - 1)
        self._read_ts = (self._read_ts + self.tick_units) & 0xFFFFFFFF
        self._take(at, self.tick_units)

    def _end_window(self) -> float:
        """Close the adaptation window; its smallest margin (INF when nothing arrived: keep as is)."""
        low = self._window_low
        if self._window_high > -INF:
            self._high = self._window_high
        self._window = 0
        self._window_low = INF
        self._window_high = -INF
        return low

    def _take(self, at: int, tick: int) -> bytes | None:
        """The tick at ring position `at` if all of it arrived; its place is freed either way."""
        end = at + tick
        mask = self._mask
        if end <= CAPACITY:
            whole = mask.find(0, at, end) < 0
            payload = bytes(self._ring[at:end]) if whole else None
            mask[at:end] = _ZEROS[:tick]
            return payload
        whole = mask.find(0, at) < 0 and mask.find(0, 0, end - CAPACITY) < 0
        payload = bytes(self._ring[at:] + self._ring[: end - CAPACITY]) if whole else None
        mask[at:] = _ZEROS[: CAPACITY - at]
        mask[: end - CAPACITY] = _ZEROS[: end - CAPACITY]
        return payload
