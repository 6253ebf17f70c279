"""The adaptive jitter buffer, driven by a simulated sender, network and media tick on exact time.

Nothing sleeps: a sender makes packets on its own clock (possibly drifting), a network model gives each
copy of a packet an arrival time (or none: lost), and the reader calls `get` every 20.000 ms, handing the
buffer every packet that arrived since. Payloads carry the stream's position in every 4-byte word, so
each tick read back names the tick of audio it holds and proves it was assembled from the right bytes.

Proven: a perfect network loses nothing after start-up and never grows the delay; with random loss
exactly the lost packets come out concealed; reordering and jitter (0-60 ms, then 0-150 ms) are absorbed
after adaptation with under 2 % late-loss and the delay never above 200 ms, shrinking back once the
jitter stops; a 300 ms stall costs a bounded number of frames; duplicates are counted, never played
twice; 1 % and 100 ppm clock drift cost one dropped or inserted frame per drift tick and never grow the
delay; a timestamp jump either way re-synchronises, a wrap at 2**32 is seamless, 10 and 30 ms packets
assemble into 20 ms ticks; packets behind the play-out point are dropped as late; an outage or silence
leaves the delay as it was; and for any arrival order within bounded jitter, output is in order and no
tick comes out twice. Each scenario prints one line of figures (run with -s).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.media.jitter import DUPLICATE, LATE, RESYNC, STORED, JitterBuffer

TICK = 0.020  # the media tick, seconds
TICK_UNITS = 160  # RTP clock units (= payload bytes) per tick
WORD = 4  # payload bytes per position word
TICK_WORDS = TICK_UNITS // WORD
MAX_DELAY_MS = 200.0
SAFETY_MS = 5.0

# One packet: its index, and the arrival time of each copy the network delivers ([] = lost).
Network = Callable[[int, float], Sequence[float]]


def payload(k: int, units: int) -> bytes:
    """Packet `k` of a stream of `units`-byte packets: each 4-byte word holds its position in the stream."""
    first = k * units // WORD
    return np.arange(first, first + units // WORD, dtype=">u4").tobytes()


def decode(tick: bytes) -> int:
    """The stream position (in words) these bytes start at, checking they are one tick of consecutive audio."""
    words = np.frombuffer(tick, dtype=">u4").astype(np.int64)
    assert len(words) == TICK_WORDS, len(tick)
    assert bool(np.all(np.diff(words) == 1)), f"tick mixes stream positions: {words[:3]}...{words[-3:]}"
    return int(words[0])


def perfect(delay: float = 0.002) -> Network:
    return lambda k, sent: [sent + delay]


def losing(lost: set[int], delay: float = 0.002) -> Network:
    return lambda k, sent: [] if k in lost else [sent + delay]


def doubling(rng: random.Random, spread: float, delay: float = 0.012) -> Network:
    """Every packet twice, the second copy up to `spread` after the first."""
    return lambda k, sent: [sent + delay, sent + delay + rng.uniform(0, spread)]


@dataclass
class Run:
    """What the reader saw: per tick its time, the tick played (None: concealed) and the buffer's state."""

    jb: JitterBuffer
    sent: int  # packets sent
    ptime: float  # seconds of audio per packet
    times: list[float] = field(default_factory=list)
    out: list[int | None] = field(default_factory=list)  # stream tick (start word // TICK_WORDS)
    starts: list[int] = field(default_factory=list)  # stream position (word) of each tick played
    delays: list[float] = field(default_factory=list)
    grown: list[int] = field(default_factory=list)
    shrunk: list[int] = field(default_factory=list)
    results: dict[int, list[str]] = field(default_factory=dict)  # put() results per packet index

    def played(self) -> list[int]:
        return [k for k in self.out if k is not None]

    def window(self, start: float, end: float) -> list[int | None]:
        return [k for t, k in zip(self.times, self.out, strict=True) if start <= t < end]

    def delay_at(self, t: float) -> float:
        return next(d for tt, d in zip(self.times, self.delays, strict=True) if tt >= t)

    def counter_at(self, name: str, t: float) -> int:
        values = self.grown if name == "grown" else self.shrunk
        return next(v for tt, v in zip(self.times, values, strict=True) if tt >= t)

    def missing(self, first_tick: int, end_tick: int) -> set[int]:
        """Ticks of audio in [first_tick, end_tick) that never came out."""
        return set(range(first_tick, end_tick)) - set(self.played())

    def count(self, result: str) -> int:
        return sum(r.count(result) for r in self.results.values())

    def check_order(self) -> None:
        """Every tick came out at most once and in stream order: no two ticks share or reverse audio."""
        starts = self.starts
        assert all(b - a >= TICK_WORDS for a, b in itertools.pairwise(starts)), "out of order or repeated"

    def figure(self, name: str) -> str:
        ticks = round(self.sent * self.ptime / TICK)
        lost = len(self.missing(0, ticks))
        line = (
            f"{name:<34} delay {self.jb.delay_ms:6.1f} ms  lost {100 * lost / ticks:5.2f} % ({lost}/{ticks})  "
            f"late {self.jb.late:3d}  dup {self.jb.duplicates:4d}  grown {self.jb.grown:3d}  "
            f"shrunk {self.jb.shrunk:3d}  resyncs {self.jb.resyncs}  max delay {max(self.delays):5.1f} ms"
        )
        print(line)
        return line


def simulate(
    seconds: float,
    network: Network,
    *,
    ptime_ms: int = 20,
    drift: float = 0.0,
    base_ts: int = 0x1234_5678,
    jumps: Sequence[tuple[int, int]] = (),
    phase: float = 0.010,
    tail: float = 0.5,
    aligned: bool = True,
) -> Run:
    """Send `seconds` of audio; read every 20 ms (first read at `phase`) until `tail` after the last send.

    `drift` is how fast the sender's clock runs against ours (0.01: 1 % fast); `jumps` are
    (packet index, timestamp offset) from which on the sender's timestamps jump. When `aligned`, every
    tick must start on a 20 ms boundary of the stream (true unless the first packets of 10 or 30 ms are lost).
    """
    units = 8 * ptime_ms
    ptime = ptime_ms / 1000
    count = round(seconds / ptime)
    arrivals: list[tuple[float, int, int]] = []
    for k in range(count):
        sent = k * ptime / (1 + drift)
        ts = base_ts + k * units + sum(offset for at, offset in jumps if k >= at)
        for at in network(k, sent):
            arrivals.append((at, k, ts & 0xFFFFFFFF))
    heapq.heapify(arrivals)
    jb = JitterBuffer()
    run = Run(jb, count, ptime)
    end = (count - 1) * ptime / (1 + drift) + tail
    tick = 0
    while (now := phase + tick * TICK) <= end:
        while arrivals and arrivals[0][0] <= now:
            at, k, ts = heapq.heappop(arrivals)
            run.results.setdefault(k, []).append(jb.put(ts, payload(k, units), at))
        got = jb.get(now)
        run.times.append(now)
        if got is None:
            run.out.append(None)
        else:
            start = decode(got)
            assert not aligned or start % TICK_WORDS == 0, f"tick starts mid-tick at word {start}"
            run.out.append(start // TICK_WORDS)
            run.starts.append(start)
        run.delays.append(jb.delay_ms)
        run.grown.append(jb.grown)
        run.shrunk.append(jb.shrunk)
        tick += 1
    run.check_order()
    return run


def steady(run: Run, start: float, end: float) -> tuple[list[int | None], int]:
    """The output of [start, end) and the stream tick its first slot should hold, from its first played tick."""
    out = run.window(start, end)
    first = next(i for i, k in enumerate(out) if k is not None)
    base = out[first]
    assert base is not None
    return out, base - first


# ---------------------------------------------------------------------------------------------- network


def test_perfect_network_loses_nothing_and_never_grows() -> None:
    for phase in (0.002, 0.010, 0.019):
        run = simulate(30, perfect(), phase=phase)
        run.figure(f"perfect network, tick phase {phase * 1000:.0f} ms")
        jb = run.jb
        assert jb.late == 0 and jb.resyncs == 0 and jb.shrunk == 0
        assert jb.grown <= 1  # a first packet that came just before a tick: one tick more, nothing lost
        assert len(run.missing(0, 1490)) == 0
        out, base = steady(run, 2.0, 29.0)
        assert out == list(range(base, base + len(out)))  # no gap, no concealment
        # A packet's 20 ms plus the tick phase; within SAFETY_MS of a tick it keeps one more tick.
        assert 20.0 <= jb.delay_ms <= 40.0 + SAFETY_MS
        assert max(run.delays[100:]) <= 40.0 + SAFETY_MS


def test_random_loss_conceals_exactly_the_lost_packets() -> None:
    for rate in (0.05, 0.20):
        rng = random.Random(int(rate * 100))
        lost = {k for k in range(1500) if rng.random() < rate}
        run = simulate(30, losing(lost))
        run.figure(f"random loss {rate:.0%}")
        out, base = steady(run, 2.0, 29.5)
        assert out == [None if base + i in lost else base + i for i in range(len(out))]
        assert len(run.missing(0, 1490) - lost) <= run.jb.shrunk  # plus the start-up shrink's frame
        assert run.jb.grown == 0 and run.jb.late == 0


def test_reordering_is_absorbed() -> None:
    rng = random.Random(7)
    swapped: dict[int, float] = {}
    for k in range(1499):
        if k - 1 not in swapped and rng.random() < 0.10:
            swapped[k] = rng.uniform(0.0, 0.010)  # arrives this long after packet k + 1

    def network(k: int, sent: float) -> list[float]:
        if k in swapped:
            return [sent + TICK + 0.005 + swapped[k]]
        return [sent + 0.005]

    run = simulate(30, network)
    run.figure("reordering 10 % within 10 ms")
    assert len(swapped) > 100
    adapted = 3.0
    late_after = [k for k, results in run.results.items() if LATE in results and k * TICK >= adapted]
    assert late_after == []
    out, base = steady(run, adapted, 29.5)
    assert None not in out and out == list(range(base, base + len(out)))
    assert run.jb.delay_ms <= 40.0 + 30.0 + SAFETY_MS  # the 20-30 ms extra of a swapped packet, absorbed


def test_jitter_adapts_up_within_limits_and_back_down() -> None:
    rng = random.Random(3)
    phases = ((0.0, 20.0, 0.060), (20.0, 45.0, 0.150), (45.0, 90.0, 0.0))

    def network(k: int, sent: float) -> list[float]:
        jitter = next(j for start, end, j in phases if start <= sent < end)
        return [sent + 0.005 + rng.uniform(0.0, jitter)]

    run = simulate(90, network)
    run.figure("jitter 0-60 ms, 0-150 ms, then none")
    for start, end, jitter in phases[:2]:
        ticks = range(int((start + 2) / TICK), int(end / TICK))
        missing = run.missing(ticks.start, ticks.stop)
        late = sum(1 for k in ticks if LATE in run.results[k])
        peak = max(run.delays[ticks.start : ticks.stop])
        print(
            f"  jitter 0-{jitter * 1000:.0f} ms after 2 s: late-loss {100 * len(missing) / len(ticks):.2f} % "
            f"(late {late}), delay {run.delay_at(end - 0.1):.1f} ms, max {peak:.1f}"
        )
        assert len(missing) < 0.02 * len(ticks)
    assert max(run.delays) <= MAX_DELAY_MS
    assert run.delay_at(19.9) > 60.0  # it did adapt upward
    assert run.delay_at(44.9) > run.delay_at(19.9)
    calm = next(t for t, d in zip(run.times, run.delays, strict=True) if t >= 45.0 and d < 60.0)
    print(f"  jitter stopped at 45 s: delay under 60 ms at {calm:.1f} s, {run.jb.delay_ms:.1f} ms at the end")
    assert calm < 45.0 + 30.0
    assert max(d for t, d in zip(run.times, run.delays, strict=True) if t >= calm + 2) < 60.0


def test_a_stall_then_burst_costs_bounded_loss_and_recovers() -> None:
    def network(k: int, sent: float) -> list[float]:
        if 10.0 <= sent < 10.3:
            return [10.3 + 0.005]  # a 300 ms stall, then everything queued at once
        return [sent + 0.005]

    run = simulate(40, network)
    run.figure("300 ms stall then burst")
    stall = set(range(int(9.9 / TICK), int(10.5 / TICK)))
    missing = run.missing(0, 1990)
    assert len(missing - stall) <= run.jb.shrunk  # a frame dropped by each shrink (start-up, recovery)
    assert len(missing & stall) <= 300 // 20 + 2
    assert max(run.delays) <= MAX_DELAY_MS
    out, base = steady(run, 16.0, 39.5)  # after the shrinks that give back the ticks grown (CALM_WINDOWS each)
    assert None not in out and out == list(range(base, base + len(out)))
    assert run.jb.delay_ms < 60.0


def test_duplicates_are_counted_and_never_played_twice() -> None:
    rng = random.Random(11)
    for spread in (0.0, 0.004):
        run = simulate(20, doubling(rng, spread))
        run.figure(f"every packet twice, {spread * 1000:.0f} ms apart")
        assert run.jb.duplicates + run.jb.late == 1000
        assert run.jb.duplicates >= 990
        out, base = steady(run, 2.0, 19.5)
        assert None not in out and out == list(range(base, base + len(out)))
        assert all(results[0] in (STORED, RESYNC) for results in run.results.values())


# ---------------------------------------------------------------------------------------------- clocks


def _drift(seconds: float, drift: float, label: str) -> None:
    run = simulate(seconds, perfect(0.005), drift=drift)
    run.figure(label)
    jb = run.jb
    drift_ticks = abs(drift) * seconds / TICK
    adjusted, other = (jb.shrunk, jb.grown) if drift > 0 else (jb.grown, jb.shrunk)
    assert 0.7 * drift_ticks - 2 <= adjusted <= 1.3 * drift_ticks + 2, (adjusted, drift_ticks)
    assert other <= 2
    assert max(run.delays) <= MAX_DELAY_MS
    minute = min(60.0, seconds / 6)
    assert run.jb.delay_ms <= run.delay_at(minute) + 20.0  # does not grow without limit
    # At most a tick, SPARE_MS and two ticks of drift before a shrink.
    assert max(run.delays[int(minute / TICK) :]) <= 90.0
    # Output order was checked by simulate; the audio keeps flowing, losing only the dropped frames.
    lost = run.missing(int(minute / TICK), int((seconds - 1) / TICK))
    assert len(lost) <= 2 * adjusted + 2


def test_sender_clock_one_percent_fast() -> None:
    _drift(60, 0.01, "sender clock 1 % fast, 60 s")


def test_sender_clock_one_percent_slow() -> None:
    _drift(60, -0.01, "sender clock 1 % slow, 60 s")


def test_sender_clock_100_ppm_fast_for_10_minutes() -> None:
    _drift(600, 1e-4, "sender clock 100 ppm fast, 10 min")


def test_sender_clock_100_ppm_slow_for_10_minutes() -> None:
    _drift(600, -1e-4, "sender clock 100 ppm slow, 10 min")


# ---------------------------------------------------------------------------------------------- timestamps


def test_timestamp_jump_forward_resyncs() -> None:
    run = simulate(10, perfect(), jumps=[(250, 10 * 8000)])
    run.figure("timestamp jump +10 s")
    assert run.jb.resyncs == 1 and run.results[250] == [RESYNC] and run.count(RESYNC) == 1
    after = run.window(5.0, 9.9)
    first = next(i for i, k in enumerate(after) if k is not None)
    assert first <= 3 and after[first] == 250
    assert len(run.missing(250, 499)) <= 1  # the start-up shrink after re-synchronising, at most


def test_timestamp_jump_backward_resyncs() -> None:
    run = simulate(10, perfect(), jumps=[(250, -10 * 8000)])
    run.figure("timestamp jump -10 s")
    # Two packets from so far back are late strays; the third in a row proves the stream jumped back.
    assert run.jb.resyncs == 1 and [run.results[k] for k in (250, 251, 252)] == [[LATE], [LATE], [RESYNC]]
    after = run.window(5.0, 9.9)
    first = next(i for i, k in enumerate(after) if k is not None)
    assert first <= 5 and after[first] == 252
    assert len(run.missing(252, 499)) <= 1


def test_a_stray_packet_from_long_ago_is_only_late() -> None:
    run = simulate(10, lambda k, sent: [sent + (2.5 if k == 100 else 0.002)])
    run.figure("one packet 2.5 s late")
    assert run.results[100] == [LATE] and run.jb.late == 1 and run.jb.resyncs == 0 and run.jb.grown == 0
    assert run.missing(60, 499) == {100}


def test_timestamp_wraps_seamlessly() -> None:
    run = simulate(10, perfect(), base_ts=(1 << 32) - 100 * TICK_UNITS - 37)  # wraps inside packet 99
    run.figure("timestamp wrap at 2**32")
    assert run.jb.resyncs == 0 and run.jb.late == 0 and run.jb.grown == 0
    out, base = steady(run, 1.5, 9.9)
    assert base < 99 and None not in out and out == list(range(base, base + len(out)))


def test_ptime_10_and_30_assemble_into_ticks() -> None:
    for ptime_ms in (10, 30):
        for phase in (0.003, 0.013):
            run = simulate(30, perfect(), ptime_ms=ptime_ms, phase=phase)
            run.figure(f"ptime {ptime_ms} ms, tick phase {phase * 1000:.0f} ms")
            assert run.jb.late == 0 and run.jb.grown == 0
            out, base = steady(run, 5.0, 29.5)  # after the start-up delay (a tick more) has been trimmed
            assert None not in out and out == list(range(base, base + len(out)))


def test_packets_behind_the_playout_point_are_late() -> None:
    held = {300: 0.100, 500: 0.500, 700: 1.900}

    def network(k: int, sent: float) -> list[float]:
        return [sent + 0.002 + held.get(k, 0.0)]

    run = simulate(20, network)
    run.figure("3 packets held back past play-out")
    assert run.jb.late == 3 and all(run.results[k] == [LATE] for k in held)
    # Each late packet grows the delay a tick (a concealed frame); calm again, a shrink drops a frame.
    assert run.jb.grown == 3 and run.jb.resyncs == 0
    missing = run.missing(60, 990)
    assert set(held) <= missing and len(missing - set(held)) <= run.jb.grown
    assert run.window(2.0, 19.5).count(None) == 3 + run.jb.grown


def test_outage_or_silence_keeps_the_delay() -> None:
    """Five seconds with no packets (an outage, or silence suppression) must not move the play-out point."""
    run = simulate(20, lambda k, sent: [] if 5.0 <= sent < 10.0 else [sent + 0.002])
    run.figure("5 s without packets")
    assert run.jb.late == 0 and run.jb.grown == 0
    assert run.counter_at("shrunk", 19.0) == run.counter_at("shrunk", 4.9)
    out, base = steady(run, 10.0, 19.5)
    assert out[0] is not None and base == 500
    assert None not in out and out == list(range(base, base + len(out)))


# ---------------------------------------------------------------------------------------------- property


@settings(max_examples=150, deadline=None)
@given(
    ptime_ms=st.sampled_from([10, 20, 30]),
    phase=st.floats(min_value=0.0, max_value=TICK, exclude_max=True),
    jitter=st.lists(st.integers(min_value=0, max_value=120), min_size=5, max_size=80),
    copies=st.lists(st.integers(min_value=0, max_value=2), min_size=80, max_size=80),
)
def test_any_arrival_order_within_bounded_jitter_plays_in_order_once(
    ptime_ms: int, phase: float, jitter: list[int], copies: list[int]
) -> None:
    """Each packet arrives 0-120 ms late (whole ms, so ties and every permutation are reachable), 0-2 times."""

    def network(k: int, sent: float) -> list[float]:
        return [sent + jitter[k % len(jitter)] / 1000] * copies[k % len(copies)]

    run = simulate(len(jitter) * TICK, network, ptime_ms=ptime_ms, phase=phase, tail=0.3, aligned=False)
    run.check_order()  # never out of order, never the same tick twice (and every tick whole: decode)
    jb = run.jb
    assert jb.delay_ms <= MAX_DELAY_MS
    for results in run.results.values():
        assert results.count(STORED) + results.count(RESYNC) <= 1
        assert set(results) <= {STORED, LATE, DUPLICATE, RESYNC}
