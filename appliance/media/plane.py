"""The media plane: its units, their routing, and the tick that runs the mixer every 20 ms.

The tick runs on a fixed grid (start + k x 20 ms), not "20 ms after the last one", so timing errors
never accumulate. It measures its own lateness (how long after its grid time it started) and counts
overruns (ticks whose work ended after the next grid time). When the loop was stalled for several
ticks, the missed ones run back to back, up to `CATCH_UP` of them, so streams keep their timing;
beyond that the grid moves on and the skipped ticks are counted as overruns too.

Everything media flows through here: legs take an RTP endpoint (`endpoint`), scenarios make
conferences (`conference`), and `send`/`stop` route audio between units by id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from appliance.clock import Clock, Timer
from appliance.media.audio import TICK_MS
from appliance.media.dtmf_tones import DtmfDetector, DtmfGenerator
from appliance.media.endpoint import Owner, RtpEndpoint
from appliance.media.graph import Conference, Graph, Routable
from appliance.media.mixer import Mixer
from appliance.media.ports import RtpPorts

log = logging.getLogger(__name__)

TICK = TICK_MS / 1000
CATCH_UP = 5  # missed ticks run late rather than skipped, up to 100 ms of them
LATENESS_KEPT = 3000  # the last minute of tick start lateness, for percentiles


class TickStats:
    """How well the tick keeps time: lateness of recent ticks, overruns, and the work per tick."""

    def __init__(self) -> None:
        self.ticks = 0
        self.overruns = 0
        self.skipped = 0
        self.max_lateness = 0.0
        self.busy = 0.0  # seconds spent in ticks
        self._lateness = np.zeros(LATENESS_KEPT)
        self._at = 0

    def record(self, lateness: float, busy: float) -> None:
        self._lateness[self._at % LATENESS_KEPT] = lateness
        self._at += 1
        self.ticks += 1
        self.busy += busy
        self.max_lateness = max(self.max_lateness, lateness)

    def lateness_ms(self, percentile: float) -> float:
        kept = self._lateness[: min(self._at, LATENESS_KEPT)]
        return float(np.percentile(kept, percentile) * 1000) if len(kept) else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "ticks": self.ticks, "overruns": self.overruns, "skipped": self.skipped,
            "lateness_p50_ms": round(self.lateness_ms(50), 3), "lateness_p99_ms": round(self.lateness_ms(99), 3),
            "lateness_max_ms": round(self.max_lateness * 1000, 3),
            "busy_ms_per_tick": round(self.busy * 1000 / self.ticks, 3) if self.ticks else 0.0,
        }


class MediaPlane:
    def __init__(self, clock: Clock, ports: RtpPorts) -> None:
        self._clock = clock
        self.ports = ports
        self.graph = Graph()
        self.mixer = Mixer(self.graph)
        self.mixer.on_key = lambda endpoint, key: endpoint.owner.key_received(key, "inband")
        self.stats = TickStats()
        # Media time: the precise monotonic clock (the loop's has 1 ms steps), or a virtual one in tests.
        self.now: Callable[[], float] = time.monotonic if clock.runs_during_work else clock.monotonic
        self._timer: Timer | None = None
        self._next = 0.0
        self._ids = 0
        self._ran = 0  # ticks run since start
        self._seen = 0  # ... when `ticking()` last looked

    # Units.

    def _new_id(self, kind: str) -> str:
        self._ids += 1
        return f"{kind}-{self._ids}"

    def endpoint(self, host: str, owner: Owner) -> RtpEndpoint:
        """A new RTP endpoint on `host` for a leg; NoPortsLeft when the range is used up."""
        port, rtp_sock, rtcp_sock = self.ports.take(host)
        endpoint = RtpEndpoint(self._new_id("rtp"), port, rtp_sock, rtcp_sock, owner, self.now)
        endpoint.on_change = self.mixer.changed
        self.graph.add(endpoint)
        return endpoint

    def conference(self) -> Conference:
        conference = Conference(self._new_id("conference"))
        self.graph.add(conference)
        return conference

    def release(self, unit: Routable) -> None:
        """The unit is gone: out of the graph, and an endpoint's ports back in the pool. Safe twice."""
        unit_id = unit.id
        self.graph.remove(unit_id)
        self.mixer.forget(unit_id)
        if isinstance(unit, RtpEndpoint):
            unit.close()
            self.ports.give_back(unit.port)

    # Routing and per-leg features.

    def send(self, source: str, sink: str) -> None:
        self.graph.send(source, sink)

    def stop(self, source: str, sink: str) -> None:
        self.graph.stop(source, sink)

    def listen_for_tones(self, endpoint: RtpEndpoint, listen: bool) -> None:
        """In-band DTMF detection on what the leg's peer sends (when it cannot send RFC 4733 events)."""
        if listen:
            self.mixer.detectors.setdefault(endpoint.id, (endpoint, DtmfDetector()))
        else:
            self.mixer.detectors.pop(endpoint.id, None)

    def send_digits(self, endpoint: RtpEndpoint, digits: str) -> None:
        """Keys to the leg's peer: RFC 4733 events when negotiated, else tones in its audio."""
        if not endpoint.send_digits(digits):
            self.mixer.generators[endpoint.id] = DtmfGenerator(digits)

    # The tick.


    def start(self) -> None:
        self._next = self.now() + TICK
        self._schedule()

    def _schedule(self) -> None:
        self._timer = self._clock.call_later(self._next - self.now(), self._on_timer)

    def _on_timer(self) -> None:
        start = self.now()
        ran = 0
        while self._next <= start + 0.0005 and ran < CATCH_UP:  # the timer may fire a hair early
            began = self.now()
            self.mixer.tick(began)
            done = self.now()
            self.stats.record(max(0.0, began - self._next), done - began)
            self._next += TICK
            self._ran += 1
            if done > self._next:
                self.stats.overruns += 1
            ran += 1
        behind = int((self.now() - self._next) // TICK) + 1
        if behind > 0 and ran >= CATCH_UP:
            self.stats.skipped += behind
            self._next += behind * TICK
            log.warning("media tick %d ticks behind: skipped them", behind)
        self._schedule()

    def ticking(self) -> bool:
        """Has the tick run since the last time this was asked? (The watchdog's health check.)"""
        seen, self._seen = self._seen, self._ran
        return self._ran > seen

    def close(self) -> None:
        """Stop ticking and release every endpoint. Safe twice."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for unit in list(self.graph.units()):
            self.release(unit)

    @property
    def health(self) -> dict[str, float]:
        return {"units": len(self.graph), "ports_in_use": self.ports.in_use, **self.stats.summary()}

