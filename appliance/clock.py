"""All time the appliance reads: one module, so tests and the harness can run on a virtual clock.

`RealClock` follows the event loop and the system clock. `VirtualClock` stands still while work is
in progress and jumps to the next timer when nothing else is pending, so a 60 s idle timeout costs no
wall time. Work in progress is announced with `hold()` / `release()` (an engine job on a worker
thread, an HTTP request in flight); the real clock ignores those calls.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable


class Timer:
    """A scheduled callback; `cancel()` is safe twice and after it fired."""

    __slots__ = ("_cancelled", "_handle", "callback", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback: Callable[[], None] | None = callback
        self._cancelled = False
        self._handle: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self._cancelled = True
        self.callback = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled


class Clock(ABC):
    """Wall time, monotonic time and timers."""

    runs_during_work = True  # False: time stands still while code runs (it moves only between events)

    @abstractmethod
    def time(self) -> float:
        """Seconds since the Unix epoch (UTC)."""

    @abstractmethod
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    @abstractmethod
    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` on the event loop after `delay` seconds of this clock."""

    @abstractmethod
    def hold(self) -> None:
        """Work is in progress: a virtual clock must not jump ahead."""

    @abstractmethod
    def release(self) -> None:
        """The work announced by `hold()` is done."""


class RealClock(Clock):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return self._loop.time()

    def hold(self) -> None:
        pass  # real time passes anyway

    def release(self) -> None:
        pass

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self._loop.time() + max(0.0, delay), callback)

        def fire() -> None:
            cb = timer.callback
            timer.callback = None
            if cb is not None:
                cb()

        timer._handle = self._loop.call_later(max(0.0, delay), fire)
        return timer


class VirtualClock(Clock):
    """A clock that advances only when `run()` finds nothing else to do."""

    runs_during_work = False

    def __init__(self, start: float | None = None) -> None:
        # On a whole millisecond, so scripts see exact whole-millisecond steps (Date has ms precision).
        self._now = round(time.time(), 3) if start is None else start
        self._epoch_offset = self._now
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._holds = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now - self._epoch_offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        return timer

    def hold(self) -> None:
        self._holds += 1
        self._idle.clear()

    def release(self) -> None:
        self._holds -= 1
        if self._holds <= 0:
            self._holds = 0
            self._idle.set()

    def jump_to(self, when: float) -> None:
        """Move time forward without firing timers (a deadline was reached)."""
        self._now = max(self._now, when)

    def next_time(self) -> float | None:
        """When the next live timer fires, or None."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def settle(self) -> None:
        """Wait until no work is held and the loop has run what was scheduled meanwhile."""
        while True:
            await self._idle.wait()
            # Callbacks queued with call_soon(_threadsafe) may hold the clock again: let them run.
            for _ in range(3):
                await asyncio.sleep(0)
            if self._holds == 0:
                return

    async def advance(self) -> bool:
        """Settle, then jump to the next timer and fire it; False when no timer is left."""
        await self.settle()
        while self._heap:
            when, _, timer = heapq.heappop(self._heap)
            if timer.cancelled or timer.callback is None:
                continue
            self._now = max(self._now, when)
            callback = timer.callback
            timer.callback = None
            callback()
            return True
        return False
