"""The player unit: what it plays per tick and the events it reports, on the tick's clock."""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.media.audio import FRAME, RATE, SAMPLE, Frame
from appliance.media.player import Player, Samples, Tones
from appliance.media.tones import ToneGenerator, ToneScript


def ramp(ms: int) -> Frame:
    """Audio whose every sample says where it is (sample n has value n % 30000 + 1)."""
    return (np.arange(ms * RATE // 1000) % 30000 + 1).astype(SAMPLE)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str, dict[str, Any]]] = []
        self.tick = 0

    def __call__(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((self.tick, name, data))

    def names(self) -> list[str]:
        return [name for _, name, _ in self.events]


def run(player: Player, events: Recorder, ticks: int) -> list[Frame | None]:
    out = []
    for n in range(ticks):
        events.tick = n
        frame = player.output()
        out.append(None if frame is None else frame.copy())
    return out


def test_plays_every_sample_once_then_finishes() -> None:
    events = Recorder()
    player = Player("p", events)
    audio = ramp(1010)  # not a whole number of ticks: the last one is padded with silence
    player.load(Samples(audio))
    frames = run(player, events, 60)
    played = [f for f in frames if f is not None]
    assert len(played) == 51
    joined = np.concatenate(played)
    assert np.array_equal(joined[: len(audio)], audio) and not joined[len(audio):].any()
    assert events.names() == ["PlaybackReady", "Started", "PlaybackFinished"]
    assert events.events[1][2] == {"duration": 1010}
    assert events.events[2][0] == 51  # the tick after the last frame
    assert player.finished


def test_loop_restarts_without_a_gap_and_never_finishes() -> None:
    events = Recorder()
    player = Player("p", events, loop=True)
    player.load(Samples(ramp(100)))
    frames = run(player, events, 20)
    played = [f for f in frames if f is not None]
    assert len(played) == 20
    assert np.array_equal(played[5], played[0])  # 100 ms = 5 ticks
    assert "PlaybackFinished" not in events.names()


def test_pause_holds_the_position() -> None:
    events = Recorder()
    player = Player("p", events)
    audio = ramp(200)
    player.load(Samples(audio))
    first = run(player, events, 3)
    player.pause()
    held = run(player, events, 5)
    player.resume()
    rest = run(player, events, 10)
    assert all(f is None for f in held)
    played = [f for f in first + rest if f is not None]
    assert np.array_equal(np.concatenate(played), audio)


def test_starting_paused_waits_for_resume() -> None:
    events = Recorder()
    player = Player("p", events, paused=True)
    player.load(Samples(ramp(100)))
    assert run(player, events, 5) == [None] * 5
    assert events.names() == ["PlaybackReady"]  # no Started while paused (onPause)
    player.resume()
    run(player, events, 1)
    assert events.names() == ["PlaybackReady", "Started"]


def test_markers_fire_at_their_offsets_from_either_end() -> None:
    events = Recorder()
    player = Player("p", events)
    player.add_marker(100)
    player.add_marker(-200)  # 200 ms before the end of a 1000 ms prompt: 800 ms
    player.add_marker(5000)  # beyond the end: never
    player.load(Samples(ramp(1000)))
    run(player, events, 60)
    reached = [(tick, data["offset"]) for tick, name, data in events.events if name == "PlaybackMarkerReached"]
    assert reached == [(100 // 20, 100), (800 // 20, -200)]


def test_stop_ends_without_playback_finished() -> None:
    events = Recorder()
    player = Player("p", events)
    player.load(Samples(ramp(1000)))
    run(player, events, 3)
    player.stop()
    assert run(player, events, 3) == [None] * 3
    assert "PlaybackFinished" not in events.names()


def test_a_failed_load_reports_playback_finished_with_the_error() -> None:
    events = Recorder()
    player = Player("p", events)
    player.fail("http status 404")
    player.load(Samples(ramp(100)))  # too late: it already finished
    assert events.names() == ["PlaybackFinished"] and events.events[0][2] == {"error": "http status 404"}
    assert run(player, events, 3) == [None] * 3


def test_a_tone_script_plays_its_cadence() -> None:
    events = Recorder()
    player = Player("p", events)
    player.load(Tones(ToneGenerator(ToneScript.parse("440@-19;1(.1/.1/1)"))))
    frames = run(player, events, 60)
    audio = np.concatenate([f for f in frames if f is not None]).astype(np.float64)
    assert len(audio) == RATE  # one second
    on = np.abs(audio.reshape(-1, FRAME)).max(axis=1) > 1000
    assert list(on[:10]) == [True] * 5 + [False] * 5  # 100 ms on, 100 ms off
    assert events.names()[-1] == "PlaybackFinished"
