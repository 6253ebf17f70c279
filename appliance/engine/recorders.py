"""A session's recordings: `call.record()` and `VoxEngine.createRecorder()`.

A call recording taps the call's leg in the media tick: what the leg says and what it hears, mixed
(mono) or one per channel (stereo: left what the call hears, right what it says, as Voximplant),
from the moment the leg has media until it ends; then Call.RecordStopped. A Recorder is a media
unit that records whatever is sent to it until `stop()`. Files are written by the recording thread
(media/recording.py) and served at `<base URL>/records/<file>` (the `url` of the events).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.clock import Clock
from appliance.media.audio import FRAME, SAMPLE, TICK_MS, Frame
from appliance.media.plane import MediaPlane
from appliance.media.recording import RecordingError, RecordingStore, RecordingWriter
from appliance.store.history import RecordRecord

log = logging.getLogger(__name__)

Command = dict[str, Any]
RECORDS_PATH = "/records"  # where the web server serves recordings


@dataclass
class Recordings:
    """Where recordings go, and the URL prefix they are served under; one for the whole engine."""

    store: RecordingStore
    base_url: str

    def url(self, writer: RecordingWriter) -> str:
        return f"{self.base_url}{RECORDS_PATH}/{writer.path.name}"


class Recording:
    """One file being written, fed a tick at a time; counts its own duration."""

    def __init__(self, writer: RecordingWriter, url: str, stereo: bool, started: float) -> None:
        self.writer = writer
        self.url = url
        self.started = started
        self.stereo = stereo
        self.muted = False
        self.ticks = 0

    def tap(self, said: Frame, heard: Frame) -> None:
        """A call recording's tick: left what the call hears, right what it says (or both mixed)."""
        self.ticks += 1
        if self.muted:
            said = heard = _SILENCE
        if self.stereo:
            self.writer.write(heard, said)
        else:
            mixed = np.clip(said.astype(np.int32) + heard, -32768, 32767).astype(np.int16)
            self.writer.write(mixed)

    @property
    def duration(self) -> float:
        return self.ticks * TICK_MS / 1000


class RecorderUnit:
    """A Recorder: a media unit that keeps what it hears (silence while nothing is sent to it)."""

    def __init__(self, unit_id: str, recording: Recording) -> None:
        self.id = unit_id
        self.recording = recording

    def output(self) -> Frame | None:
        return None

    def input(self, frame: Frame) -> None:
        recording = self.recording
        recording.ticks += 1
        recording.writer.write(_SILENCE if recording.muted else frame)


_SILENCE = np.zeros(FRAME, dtype=SAMPLE)


class SessionRecorders:
    def __init__(self, session_id: int, plane: MediaPlane | None, recordings: Recordings | None, clock: Clock,
                 deliver: Callable[[Command], None], unit_of_call: Callable[[str], str | None],
                 finished: Callable[[RecordRecord], None]) -> None:
        self._session_id = session_id
        self._plane = plane
        self._recordings = recordings
        self._clock = clock
        self._deliver = deliver
        self._unit_of_call = unit_of_call
        self._finished = finished  # into the call history
        self._calls: dict[str, tuple[str, Recording, str | None]] = {}  # id -> (call, recording, tapped unit)
        self._units: dict[str, RecorderUnit] = {}  # Recorders by JS id

    def unit_of(self, js_id: str) -> str | None:
        unit = self._units.get(js_id)
        return unit.id if unit is not None else None

    def apply(self, cmd: Command) -> None:
        js_id, action = str(cmd["id"]), cmd.get("action")
        if action == "create":
            self._create(js_id, cmd)
        elif action == "mute":
            recording = self._recording(js_id)
            if recording is not None:
                recording.muted = bool(cmd.get("mute", True))
        elif action == "stop":
            self._stop(js_id)

    def _recording(self, js_id: str) -> Recording | None:
        if js_id in self._calls:
            return self._calls[js_id][1]
        unit = self._units.get(js_id)
        return unit.recording if unit is not None else None

    def _open(self, js_id: str, cmd: Command, on_error: Callable[[str], None]) -> Recording | None:
        if self._plane is None or self._recordings is None:
            on_error("recording is not available in this engine")
            return None
        stereo = bool(cmd.get("stereo"))
        try:
            writer = self._recordings.store.open(
                f"s{self._session_id}-{js_id}", "wav" if cmd.get("lossless") else "mp3", 2 if stereo else 1,
                now=self._clock.time(), expire=str(cmd.get("expire") or "") or None, on_error=on_error)
        except RecordingError as exc:
            on_error(str(exc))
            return None
        return Recording(writer, self._recordings.url(writer), stereo, self._clock.time())

    def _create(self, js_id: str, cmd: Command) -> None:
        if cmd.get("kind") == "call":
            call_id = str(cmd.get("call", ""))

            def call_error(error: str) -> None:
                self._deliver({"type": "call", "id": call_id, "name": "Call.RecordError", "data": {"error": error}})

            recording = self._open(js_id, cmd, call_error)
            if recording is not None:
                self._calls[js_id] = (call_id, recording, None)
                self._deliver({"type": "call", "id": call_id, "name": "Call.RecordStarted",
                               "data": {"url": recording.url}})
                self.sync()
            return

        def recorder_error(error: str) -> None:
            self._event(js_id, "Error", {"error": error})

        recording = self._open(js_id, cmd, recorder_error)
        if recording is None:
            return
        assert self._plane is not None
        unit = RecorderUnit(f"s{self._session_id}-{js_id}", recording)
        self._units[js_id] = unit
        self._plane.graph.add(unit)
        self._event(js_id, "Started", {"url": recording.url})

    def _event(self, js_id: str, name: str, data: dict[str, Any]) -> None:
        self._deliver({"type": "recorder", "id": js_id, "name": f"Recorder.{name}", "data": data})

    def sync(self) -> None:
        """Tap call recordings onto legs that got media; end those whose leg is gone."""
        if self._plane is None:
            return
        taps = self._plane.mixer.taps
        for js_id, (call_id, recording, tapped) in list(self._calls.items()):
            unit = self._unit_of_call(call_id)
            if tapped is None and unit is not None:
                taps.setdefault(unit, []).append(recording.tap)
                self._calls[js_id] = (call_id, recording, unit)
            elif tapped is not None and (unit is None or tapped not in self._plane.graph):
                self._stop(js_id)

    def _stop(self, js_id: str) -> None:
        entry = self._calls.pop(js_id, None)
        if entry is not None:
            call_id, recording, tapped = entry
            if tapped is not None and self._plane is not None:
                listeners = self._plane.mixer.taps.get(tapped, [])
                if recording.tap in listeners:
                    listeners.remove(recording.tap)
            self._close(recording, call_id)
            self._deliver({"type": "call", "id": call_id, "name": "Call.RecordStopped",
                           "data": {"url": recording.url, "cost": 0, "duration": round(recording.duration)}})
            return
        unit = self._units.pop(js_id, None)
        if unit is not None:
            if self._plane is not None:
                self._plane.release(unit)
            self._close(unit.recording, None)
            self._event(js_id, "Stopped", {"cost": 0, "duration": round(unit.recording.duration)})

    def _close(self, recording: Recording, call_id: str | None) -> None:
        recording.writer.close()
        self._finished(RecordRecord(self._session_id, call_id, recording.url, recording.writer.path.name,
                                    recording.started, recording.duration))

    def close(self) -> None:
        """The session ended: every recording is finished and kept."""
        for js_id in [*self._calls, *self._units]:
            self._stop(js_id)
