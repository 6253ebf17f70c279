"""A session's players: created by JS, loaded off the loop, played by the media tick.

`{op: "player", action: "create"}` makes a media unit at once (so scripts can route it straight
away) and starts loading its audio: a URL through the fetcher and decoder, a TTS prompt through
espeak-ng's cache, a ToneScript at once. What the player reports (PlaybackReady, Started,
PlaybackMarkerReached, PlaybackFinished, and Stopped after stop()) goes to JS as `Player.*` events.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.clock import Clock
from appliance.media import audiofile, tones, tts
from appliance.media.audio import RATE
from appliance.media.fetch import FetchError, MediaFetcher
from appliance.media.plane import MediaPlane
from appliance.media.player import Player, Samples, Source, Tones
from appliance.tasks import TaskSet

log = logging.getLogger(__name__)

Command = dict[str, Any]
# TTSOptions words (SSML prosody values) as factors of espeak-ng's defaults.
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.3, "x-fast": 1.7}
PITCHES = {"x-low": 0.6, "low": 0.8, "medium": 1.0, "default": 1.0, "high": 1.25, "x-high": 1.5}
VOLUMES = {"silent": 0.0, "x-soft": 0.4, "soft": 0.7, "medium": 1.0, "default": 1.0, "loud": 1.3, "x-loud": 1.6}


@dataclass
class MediaSources:
    """Where players get their audio from; one for the whole engine (the caches are shared)."""

    fetcher: MediaFetcher
    tts: tts.TtsCache


def _factor(value: object, words: dict[str, float]) -> float:
    """A TTSOptions value: one of `words`, a number, or "150%"; 1.0 when absent or not understood."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value or "").strip().lower()
    if text in words:
        return words[text]
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return 1.0


class SessionPlayers:
    def __init__(self, session_id: int, plane: MediaPlane | None, sources: MediaSources | None, clock: Clock,
                 deliver: Callable[[Command], None]) -> None:
        self._session_id = session_id
        self._plane = plane
        self._sources = sources
        self._clock = clock
        self._deliver = deliver
        self._players: dict[str, Player] = {}  # by JS id
        self._segment_markers: dict[str, list[tuple[int, int]]] = {}  # sequence players: (segment, offset)
        self._loads = TaskSet(f"session {session_id} players")

    def unit_of(self, js_id: str) -> str | None:
        player = self._players.get(js_id)
        return player.id if player is not None else None

    def apply(self, cmd: Command) -> None:
        js_id, action = str(cmd["id"]), cmd.get("action")
        if action == "create":
            self._create(js_id, cmd)
            return
        player = self._players.get(js_id)
        if player is None:
            return
        if action == "pause":
            player.pause()
        elif action == "resume":
            player.resume()
        elif action == "marker":
            segment = cmd.get("segment")
            if segment is None:
                player.add_marker(int(cmd.get("offset", 0)))
            else:  # a sequence's marker: placed once the segments' lengths are known
                self._segment_markers.setdefault(js_id, []).append((int(segment), int(cmd.get("offset", 0))))
        elif action == "stop":
            self._drop(js_id)
            self._event(js_id, "Stopped", {})

    def _event(self, js_id: str, name: str, data: dict[str, Any]) -> None:
        self._deliver({"type": "player", "id": js_id, "name": f"Player.{name}", "data": data})

    def _create(self, js_id: str, cmd: Command) -> None:
        if js_id in self._players:
            return
        player = Player(f"s{self._session_id}-{js_id}", lambda name, data: self._event(js_id, name, data),
                        loop=bool(cmd.get("loop")), paused=bool(cmd.get("paused")))
        self._players[js_id] = player
        if self._plane is None or self._sources is None:
            player.fail("media is not available in this engine")
            return
        self._plane.graph.add(player)
        self._loads.spawn(self._load(js_id, player, cmd))

    async def _load(self, js_id: str, player: Player, cmd: Command) -> None:
        self._clock.hold()  # a virtual clock waits for the audio, as a real call would
        try:
            if cmd.get("kind") == "sequence":
                source: Source = await self._sequence(js_id, player, list(cmd.get("segments") or []))
            else:
                source = await self._source(cmd)
        except (FetchError, audiofile.AudioFileError, tts.TtsError, tones.ToneError, ValueError) as exc:
            player.fail(str(exc))
        else:
            player.load(source)
        finally:
            self._clock.release()

    async def _sequence(self, js_id: str, player: Player, segments: list[Command]) -> Source:
        """The segments one after the other (each loaded as a player of its own would be)."""
        if not segments:
            raise ValueError("a sequence player needs at least one segment")
        parts = []
        for segment in segments:
            source = await self._source(segment)
            if not isinstance(source, Samples):
                raise ValueError("sequence segments are TTS or URL segments")
            parts.append(source.samples)
        starts = [0]
        for part in parts:
            starts.append(starts[-1] + len(part) * 1000 // RATE)
        for index, offset in self._segment_markers.pop(js_id, []):
            if 0 <= index < len(parts):
                player.add_marker(starts[index] + offset if offset >= 0 else starts[index + 1] + offset, offset)
        return Samples(np.concatenate(parts))

    async def _source(self, cmd: Command) -> Source:
        assert self._sources is not None
        kind = cmd.get("kind")
        if kind == "tone":
            return Tones(tones.ToneGenerator(tones.ToneScript.parse(str(cmd.get("script", ""))), bool(cmd.get("loop"))))
        if kind == "progress":
            script = tones.progress_tone(str(cmd.get("country", "US")))
            return Tones(tones.ToneGenerator(script, loop=True))
        if kind == "tts":
            options = cmd.get("options") or {}
            requested = str(cmd.get("voice") or "en")
            voice = tts.voice_for(requested)
            if voice.fallback_used and not requested.startswith("VoiceList."):  # not a voice at all
                raise tts.UnknownVoice(f"unknown voice {requested!r}: use a VoiceList constant or a language (en-US)")
            if voice.fallback_used:
                log.info("session %d: %s has no local voice; speaking %s", self._session_id, requested, voice.espeak)
            rendered = await self._sources.tts.get_or_render(
                str(cmd.get("text", "")), voice, rate=_factor(options.get("rate"), RATES),
                pitch=_factor(options.get("pitch"), PITCHES), volume=_factor(options.get("volume"), VOLUMES))
            return Samples(rendered.samples)
        if kind == "url":
            body = cmd.get("body")
            data = await self._sources.fetcher.get(
                str(cmd.get("url", "")), str(cmd.get("method", "GET")).upper(),
                [(str(h.get("name", "")), str(h.get("value", ""))) for h in cmd.get("headers") or []],
                base64.b64decode(body["binary"]) if isinstance(body, dict) and "binary" in body
                else str(body["text"]).encode() if isinstance(body, dict) and "text" in body else None)
            return Samples((await audiofile.decode_async(data, str(cmd.get("url", "")))).samples)
        raise ValueError(f"unknown player kind {kind!r}")

    def _drop(self, js_id: str) -> None:
        player = self._players.pop(js_id, None)
        self._segment_markers.pop(js_id, None)
        if player is None:
            return
        player.stop()
        if self._plane is not None:
            self._plane.release(player)

    def close(self) -> None:
        """The session ended: every player stops (no events) and leaves the graph; loading is abandoned."""
        for js_id in list(self._players):
            self._drop(js_id)
        self._loads.cancel()
