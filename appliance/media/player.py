"""A player: a media unit that plays audio into whatever it is routed to (VoxEngine's Player).

Its audio comes from a `Source` handed over once loaded (decoded file or TTS prompt: `Samples`; a
ToneScript: a `ToneGenerator`). The media tick pulls one frame per tick through `output()`; the
player tells its owner what happened through `on_event(name, data)` with VoxEngine's event names
(Started with the duration, PlaybackMarkerReached with the offset, PlaybackFinished), all from the
tick, in order. `pause()` holds the position; `stop()` ends it without PlaybackFinished.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from appliance.media.audio import FRAME, RATE, SAMPLE, TICK_MS, Frame
from appliance.media.tones import ToneGenerator

EventSink = Callable[[str, dict[str, Any]], None]


class Source(Protocol):
    duration_ms: int | None  # None: endless

    def next_frame(self) -> Frame | None:
        """The next tick of audio, or None at the end."""

    def rewind(self) -> None:
        """Back to the start (looping)."""


class Samples:
    """Audio already in memory (a decoded file, a rendered prompt)."""

    def __init__(self, samples: npt.NDArray[np.int16]) -> None:
        self.samples = samples
        tail = -len(samples) % FRAME  # whole frames: the last one padded with silence
        self._audio = np.concatenate((samples, np.zeros(tail, dtype=SAMPLE))) if tail else samples
        self.duration_ms: int | None = len(samples) * 1000 // RATE
        self._at = 0

    def next_frame(self) -> Frame | None:
        if self._at >= len(self._audio):
            return None
        frame = self._audio[self._at:self._at + FRAME]
        self._at += FRAME
        return frame

    def rewind(self) -> None:
        self._at = 0


class Tones:
    """A ToneScript, generated as it plays (progress tones are endless)."""

    def __init__(self, generator: ToneGenerator) -> None:
        self._generator = generator
        self.duration_ms: int | None = generator.duration_ms

    def next_frame(self) -> Frame | None:
        return self._generator.next_frame()

    def rewind(self) -> None:
        self._generator = ToneGenerator(self._generator.script, self._generator.loop)


class Player:
    def __init__(self, unit_id: str, on_event: EventSink, loop: bool = False, paused: bool = False) -> None:
        self.id = unit_id
        self.on_event = on_event
        self.loop = loop
        self.paused = paused
        self.finished = False
        self._source: Source | None = None
        self._started = False
        self._position_ms = 0
        self._markers: list[tuple[int, int]] = []  # (offset: negative from the end, offset reported)

    def load(self, source: Source) -> None:
        """The audio is ready: it plays from the next tick (unless paused)."""
        if self.finished:
            return
        self._source = source
        self.on_event("PlaybackReady", {})

    def fail(self, error: str) -> None:
        """Loading failed: PlaybackFinished with the error, as Voximplant reports it."""
        if self.finished:
            return
        self.finished = True
        self.on_event("PlaybackFinished", {"error": error})

    def add_marker(self, offset_ms: int, reported: int | None = None) -> None:
        """PlaybackMarkerReached when play reaches `offset_ms` (from the end if negative), reporting
        `reported` (a sequence's markers count within their segment)."""
        self._markers.append((int(offset_ms), int(offset_ms if reported is None else reported)))

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def stop(self) -> None:
        """Ends playing for good; no PlaybackFinished (the owner reports Stopped)."""
        self.finished = True
        self._source = None

    def output(self) -> Frame | None:
        source = self._source
        if source is None or self.paused or self.finished:
            return None
        if not self._started:
            self._started = True
            self.on_event("Started", {"duration": source.duration_ms if source.duration_ms is not None else -1})
        frame = source.next_frame()
        if frame is None and self.loop:
            source.rewind()
            self._position_ms = 0
            frame = source.next_frame()
        if frame is None:
            self.finished = True
            self._source = None
            self.on_event("PlaybackFinished", {})
            return None
        self._reached(source.duration_ms)
        self._position_ms += TICK_MS
        return frame

    def _reached(self, duration_ms: int | None) -> None:
        """Markers whose offset falls in the tick about to play."""
        if not self._markers:
            return
        start, end = self._position_ms, self._position_ms + TICK_MS
        for marker in list(self._markers):
            offset, reported = marker
            at = offset if offset >= 0 or duration_ms is None else duration_ms + offset
            if start <= at < end or (offset < 0 and at < start == 0):
                self._markers.remove(marker)
                self.on_event("PlaybackMarkerReached", {"offset": reported})

    def input(self, frame: Frame) -> None:
        """A player has no input: what is sent to it is not heard anywhere."""
