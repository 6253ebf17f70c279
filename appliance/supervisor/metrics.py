"""The box's vital figures over time, for the panel's dashboard: one sample every `SAMPLE_SECONDS`.

A sample holds the process's CPU use over its interval (100 = one core busy), its resident memory and
the system's, the event loop's worst lag in the interval, the media tick's overruns in the interval,
and the calls: legs of live sessions, live sessions, and calls started in the interval. The last hour
is kept (`HISTORY_SECONDS`), oldest first.

Loop lag is how late a scheduled wake-up fires. A probe sleeps `PROBE_SECONDS` over and over and keeps
the worst lateness, so a stall of half a second between two samples is seen, not only one at the
sampling instant. The probe runs on the loop it measures: a loop that is stalled reports the stall
when it wakes.

Everything the sampler reads comes through injectable functions (clock, CPU time, memory, counts), so
tests drive `probe()` and `sample()` directly with made-up figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.tasks import TaskSet

if TYPE_CHECKING:
    from appliance.engine.engine import Engine
    from appliance.media.plane import MediaPlane

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 10.0
HISTORY_SECONDS = 3600.0  # kept: 360 samples at the default interval
PROBE_SECONDS = 0.5  # how often the loop's lag is probed between samples
MIN_SAMPLE_SECONDS = 0.05  # [monitor] sample_seconds below this is refused
MIN_CPU_WINDOW = 1.0  # seconds: `current()` measures CPU live over at least this, else takes the last sample's
MEMINFO = Path("/proc/meminfo")
STATM = Path("/proc/self/statm")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class Counts:
    """What the box is doing right now, as the sampler reads it."""

    calls: int  # legs of live sessions
    sessions: int  # live sessions
    calls_started: int  # legs sessions took since start (a running total)
    tick_overruns: int  # media ticks that overran or were skipped since start (a running total)


@dataclass(frozen=True)
class Memory:
    rss: int  # bytes resident of this process
    used: int  # bytes of the system's memory in use (total less available)
    total: int  # bytes of the system's memory


@dataclass(frozen=True)
class Sample:
    time: float  # Unix seconds at the end of the interval
    cpu_percent: float  # process CPU over the interval; 100 = one core
    rss: int
    memory_used: int
    memory_total: int
    loop_lag_ms: float  # the worst lateness of a wake-up in the interval
    tick_overruns: int  # in the interval
    calls: int  # at the sample
    sessions: int  # at the sample
    calls_started: int  # in the interval


def cpu_seconds() -> float:
    """CPU time this process has used (user and system, all threads)."""
    times = os.times()
    return times.user + times.system


def read_memory() -> Memory:
    """This process's resident memory and the system's, from /proc (zeros where it is not there)."""
    rss = 0
    with contextlib.suppress(OSError, IndexError, ValueError):
        rss = int(STATM.read_text().split()[1]) * PAGE_SIZE
    fields: dict[str, int] = {}
    try:
        for line in MEMINFO.read_text().splitlines():
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    total = fields.get("MemTotal", 0)
    available = fields.get("MemAvailable", fields.get("MemFree", total))
    return Memory(rss, max(0, total - available), total)


def engine_counts(engine: Engine, plane: MediaPlane) -> Callable[[], Counts]:
    """The counts of a running box: its engine's sessions and their legs, its media tick."""

    def counts() -> Counts:
        live = [s for s in engine.sessions.values() if s.live]
        stats = plane.stats
        return Counts(calls=sum(len(s.legs) for s in live), sessions=len(live),
                      calls_started=engine.calls_started, tick_overruns=stats.overruns + stats.skipped)

    return counts


class Metrics:
    """Samples the box's figures on the event loop; `start()` once, `close()` (safe twice) to stop."""

    def __init__(
        self,
        counts: Callable[[], Counts],
        *,
        sample_seconds: float = SAMPLE_SECONDS,
        probe_seconds: float = PROBE_SECONDS,
        history_seconds: float = HISTORY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        cpu: Callable[[], float] = cpu_seconds,
        memory: Callable[[], Memory] = read_memory,
    ) -> None:
        if sample_seconds < MIN_SAMPLE_SECONDS:
            raise ValueError(f"sample interval {sample_seconds} s is below {MIN_SAMPLE_SECONDS} s")
        self.sample_seconds = sample_seconds
        self.probe_seconds = min(probe_seconds, sample_seconds)
        self._counts = counts
        self._monotonic = monotonic
        self._wall = wall
        self._cpu = cpu
        self._memory = memory
        self._samples: deque[Sample] = deque(maxlen=max(1, round(history_seconds / sample_seconds)))
        self._tasks = TaskSet("metrics")
        self.started = monotonic()
        # Where the running interval began.
        self._at = self.started
        self._cpu_at = cpu()
        first = counts()
        self._overruns_at = first.tick_overruns
        self._started_at = first.calls_started
        self._lag = 0.0  # the worst lateness of the running interval, seconds

    @property
    def history_size(self) -> int:
        """How many samples are kept."""
        return self._samples.maxlen or 0

    def start(self) -> None:
        """Probe and sample on the running loop until `close()`."""
        if not len(self._tasks):
            self._tasks.spawn(self._run())

    async def close(self) -> None:
        await self._tasks.close()

    async def _run(self) -> None:
        next_sample = self._monotonic() + self.sample_seconds
        while True:
            due = self._monotonic() + self.probe_seconds
            await asyncio.sleep(self.probe_seconds)
            woke = self._monotonic()
            self.probe(woke - due)
            if woke >= next_sample:
                self.sample()
                # On a grid, but never a burst of samples after a long stall.
                next_sample = max(next_sample + self.sample_seconds, woke + self.sample_seconds / 2)

    def probe(self, lateness: float) -> None:
        """One wake-up came `lateness` seconds after it was due."""
        self._lag = max(self._lag, lateness)

    def sample(self) -> Sample:
        """Close the running interval: its sample is kept (the oldest beyond the hour dropped) and returned."""
        now = self._monotonic()
        cpu = self._cpu()
        counts = self._counts()
        memory = self._memory()
        sample = Sample(
            time=self._wall(), cpu_percent=self._cpu_percent(cpu, now), rss=memory.rss, memory_used=memory.used,
            memory_total=memory.total, loop_lag_ms=self._lag * 1000,
            tick_overruns=max(0, counts.tick_overruns - self._overruns_at), calls=counts.calls,
            sessions=counts.sessions, calls_started=max(0, counts.calls_started - self._started_at),
        )
        self._samples.append(sample)
        self._at, self._cpu_at, self._lag = now, cpu, 0.0
        self._overruns_at, self._started_at = counts.tick_overruns, counts.calls_started
        return sample

    def _cpu_percent(self, cpu: float, now: float) -> float:
        elapsed = now - self._at
        return max(0.0, (cpu - self._cpu_at) * 100 / elapsed) if elapsed > 0 else 0.0

    def history(self) -> list[Sample]:
        """The kept samples, oldest first."""
        return list(self._samples)

    def current(self) -> dict[str, object]:
        """The figures now: CPU over the running interval (the last sample's while that is under a second
        old), the worst loop lag of the running and the last interval, memory, totals and uptime."""
        now = self._monotonic()
        counts = self._counts()
        memory = self._memory()
        last = self._samples[-1] if self._samples else None
        if now - self._at >= MIN_CPU_WINDOW or last is None:
            cpu_percent = self._cpu_percent(self._cpu(), now)
        else:
            cpu_percent = last.cpu_percent
        lag_ms = max(self._lag * 1000, last.loop_lag_ms if last is not None else 0.0)
        return {
            "cpu_percent": round(cpu_percent, 1),
            "memory": {"rss": memory.rss, "used": memory.used, "total": memory.total},
            "loop_lag_ms": round(lag_ms, 3),
            "tick_overruns": counts.tick_overruns,
            "uptime_seconds": round(now - self.started, 1),
            "calls": counts.calls,
            "active_sessions": counts.sessions,
            "calls_started": counts.calls_started,
        }
