"""The media graph and the mixer: routing by reference section 4.4, measured in the audio each unit hears.

Units here are probes: each plays its own tone (or nothing) and keeps what it is given, so a test
routes them like a scenario would and then measures, per probe, the level of every frequency in
what it heard.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from appliance.media.audio import FRAME, RATE, Frame
from appliance.media.graph import Conference, Graph, GraphError
from appliance.media.mixer import Mixer

TICKS = 50  # one second
LEVEL = 3000.0


class Probe:
    """A unit that sends a tone of `freq` (None: silence) and records what it hears."""

    def __init__(self, unit_id: str, freq: float | None) -> None:
        self.id = unit_id
        self.freq = freq
        self._n = 0
        self.heard: list[Frame] = []

    def output(self) -> Frame | None:
        if self.freq is None:
            return None
        t = (self._n + np.arange(FRAME)) / RATE
        self._n += FRAME
        return (LEVEL * np.sin(2 * np.pi * self.freq * t)).astype(np.int16)

    def input(self, frame: Frame) -> None:
        self.heard.append(frame.copy())

    def levels(self, freqs: list[float], skip: int = 5) -> dict[float, float]:
        """Amplitude of each frequency in what was heard (after `skip` ticks of settling)."""
        audio = np.concatenate(self.heard[skip:]).astype(np.float64)
        spectrum = np.abs(np.fft.rfft(audio)) * 2 / len(audio)
        bins = np.fft.rfftfreq(len(audio), 1 / RATE)
        return {f: float(spectrum[np.argmin(np.abs(bins - f))]) for f in freqs}


def run(graph: Graph, ticks: int = TICKS) -> None:
    mixer = Mixer(graph)
    for n in range(ticks):
        mixer.tick(n * 0.02)


def routed(*probes: Probe) -> Graph:
    graph = Graph()
    for probe in probes:
        graph.add(probe)
    return graph


def heard(probe: Probe, freqs: list[float]) -> set[float]:
    """The frequencies clearly present (> half the sent level)."""
    return {f for f, level in probe.levels(freqs).items() if level > LEVEL / 2}


def test_send_media_to_is_one_way() -> None:
    a, b = Probe("a", 500), Probe("b", 1000)
    graph = routed(a, b)
    graph.send("a", "b")
    run(graph)
    assert heard(b, [500, 1000]) == {500}
    assert heard(a, [500, 1000]) == set()  # a's own input is untouched
    assert b.levels([500])[500] == pytest.approx(LEVEL, rel=0.01)


def test_a_new_source_replaces_the_old_one() -> None:
    a, b, c = Probe("a", 500), Probe("b", 1000), Probe("c", None)
    graph = routed(a, b, c)
    graph.send("a", "c")
    graph.send("b", "c")  # c hears b now, not a mix
    run(graph)
    assert heard(c, [500, 1000]) == {1000}


def test_stop_media_to_undoes_only_that_edge() -> None:
    a, b, c = Probe("a", 500), Probe("b", 1000), Probe("c", None)
    graph = routed(a, b, c)
    graph.send("a", "c")
    graph.stop("b", "c")  # b was never c's source: nothing changes
    assert graph.source_of("c") == "a"
    graph.stop("a", "c")
    assert graph.source_of("c") is None
    run(graph)
    assert heard(c, [500, 1000]) == set()
    assert np.all(np.concatenate(c.heard) == 0)


def test_a_unit_sends_to_many() -> None:
    a, b, c = Probe("a", 700), Probe("b", None), Probe("c", None)
    graph = routed(a, b, c)
    graph.send("a", "b")
    graph.send("a", "c")
    run(graph)
    assert heard(b, [700]) == heard(c, [700]) == {700}


def test_bad_routes_are_refused() -> None:
    a = Probe("a", 500)
    graph = routed(a)
    with pytest.raises(GraphError, match="itself"):
        graph.send("a", "a")
    with pytest.raises(GraphError, match="no media unit"):
        graph.send("a", "ghost")
    graph.remove("a")
    graph.remove("a")  # safe twice


def test_removing_a_unit_removes_its_edges() -> None:
    a, b = Probe("a", 500), Probe("b", None)
    graph = routed(a, b)
    graph.send("a", "b")
    graph.remove("a")
    assert graph.source_of("b") is None
    run(graph)
    assert np.all(np.concatenate(b.heard) == 0)


FREQS = [400.0, 700.0, 1100.0, 1700.0]


def conference(members: list[Probe], listeners: list[Probe] = ()) -> Graph:  # type: ignore[assignment]
    graph = routed(*members, *listeners)
    graph.add(Conference("conf"))
    for member in members:  # VoxEngine.sendMediaBetween(call, conf)
        graph.send(member.id, "conf")
        graph.send("conf", member.id)
    for listener in listeners:
        graph.send("conf", listener.id)
    return graph


def test_conference_gives_each_member_everyone_but_itself() -> None:
    members = [Probe(f"m{i}", f) for i, f in enumerate(FREQS[:3])]
    listener = Probe("recorder", None)
    run(conference(members, [listener]))
    print()
    for member in members:
        levels = member.levels(FREQS)
        print(f"  {member.id} sends {member.freq:.0f} Hz, hears " +
              ", ".join(f"{f:.0f} Hz {20 * np.log10(max(v, 1e-3) / LEVEL):+.1f} dB" for f, v in levels.items()))
        others = {p.freq for p in members if p is not member and p.freq is not None}
        assert heard(member, FREQS) == others
        assert member.freq is not None
        assert levels[member.freq] < LEVEL * 1e-3  # its own voice is removed exactly (< -60 dB)
        for freq in others:
            assert levels[freq] == pytest.approx(LEVEL, rel=0.01)  # the others at their own level
    # A unit that only listens gets the whole mix.
    assert heard(listener, FREQS) == set(FREQS[:3])


def test_muting_a_member_keeps_it_listening() -> None:
    members = [Probe(f"m{i}", f) for i, f in enumerate(FREQS[:3])]
    graph = conference(members)
    graph.stop("m0", "conf")  # call.stopMediaTo(conf): muted
    run(graph)
    assert heard(members[0], FREQS) == {FREQS[1], FREQS[2]}
    assert heard(members[1], FREQS) == {FREQS[2]}
    assert heard(members[2], FREQS) == {FREQS[1]}


def test_conference_mix_is_clipped_not_wrapped() -> None:
    loud = [Probe(f"m{i}", 500) for i in range(4)]  # in phase: the sum reaches 4 x 3000 x 3 at least
    for probe in loud:
        probe.freq = 500
    global LEVEL
    saved, LEVEL = LEVEL, 15000.0
    try:
        listener = Probe("l", None)
        run(conference(loud, [listener]), ticks=10)
    finally:
        LEVEL = saved
    mix = np.concatenate(listener.heard).astype(np.int32)
    assert mix.max() == 32767 and mix.min() == -32768  # saturated, never wrapped around to the other sign
    wave = np.sin(2 * np.pi * 500 * np.arange(FRAME) / RATE)
    clear = np.abs(wave) > 0.1  # away from the zero crossings
    assert np.all(np.sign(mix[:FRAME][clear]) == np.sign(wave[clear]))


def test_conferences_can_feed_each_other() -> None:
    a, b = Probe("a", 400), Probe("b", 1100)
    graph = routed(a, b)
    graph.add(Conference("left"))
    graph.add(Conference("right"))
    graph.send("a", "left")
    graph.send("left", "a")
    graph.send("b", "right")
    graph.send("right", "b")
    graph.send("left", "right")
    graph.send("right", "left")
    run(graph)
    assert heard(a, FREQS) == {1100}  # b through two conferences, a's own voice still removed
    assert heard(b, FREQS) == {400}


def test_empty_and_stopped_conferences_are_silent() -> None:
    m = Probe("m", 400)
    graph = routed(m)
    graph.add(Conference("conf"))
    graph.send("conf", "m")
    run(graph, ticks=5)
    graph.send("m", "conf")
    graph.remove("conf")
    run(graph, ticks=5)
    assert np.all(np.concatenate(m.heard) == 0)


def test_routing_changes_between_ticks_take_effect_at_once() -> None:
    a, b, c = Probe("a", 500), Probe("b", 1000), Probe("c", None)
    graph = routed(a, b, c)
    mixer = Mixer(graph)
    graph.send("a", "c")
    mixer.tick(0.0)
    graph.send("b", "c")
    mixer.tick(0.02)
    first, second = (np.abs(np.fft.rfft(f.astype(np.float64))) for f in c.heard)
    bins = np.fft.rfftfreq(FRAME, 1 / RATE)
    assert bins[np.argmax(first)] == 500
    assert bins[np.argmax(second)] == 1000


def spectrum_peak(frames: list[npt.NDArray[np.int16]]) -> float:
    audio = np.concatenate(frames).astype(np.float64)
    return float(np.fft.rfftfreq(len(audio), 1 / RATE)[np.argmax(np.abs(np.fft.rfft(audio)))])
