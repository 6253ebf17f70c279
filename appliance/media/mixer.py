"""One media tick: every unit's frame in, routed and mixed in one vectorised step, every sink's frame out.

Frames live in one matrix, a row per unit. A tick
1. fills the rows of everything that produces audio: legs' payloads from their jitter buffers,
   decoded per codec in one table lookup for all G.711 legs at once (stateful codecs one by one),
   lost ticks concealed by repeating the last good frame, fading; players and the like by `output()`;
2. mixes each conference as a sum of its members' rows (int32). A conference fed by another hears
   that one's mix of the previous tick, less what it sent there itself (N-1 between conferences,
   so two conferences linked both ways do not echo), which also means chains need no ordering;
3. gives every sink its input: the source's row, or for a conference member the mix minus its own
   row (N-1), clipped back to 16 bits;
4. encodes and sends, again one lookup per G.711 codec for all legs.
Python only loops over legs to move bytes in and out of sockets; the arithmetic is numpy's. The
plan (which rows go where) is rebuilt only when the graph or a leg's negotiation changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from appliance.media import codecs
from appliance.media.audio import FRAME, SAMPLE, Frame
from appliance.media.dtmf_tones import DtmfDetector, DtmfGenerator
from appliance.media.endpoint import RtpEndpoint
from appliance.media.graph import Conference, Graph, MediaUnit

log = logging.getLogger(__name__)

Rows = npt.NDArray[np.intp]
FADE_PER_TICK = 0.5  # each concealed tick is 6 dB quieter than the one before; silent after ~8 ticks
CONCEALED_TICKS = 8
# Gain ramps for concealed ticks 1..CONCEALED_TICKS: smooth within a tick, continuous across ticks.
_FADE = np.array([np.linspace(FADE_PER_TICK ** k, FADE_PER_TICK ** (k + 1), FRAME, endpoint=False)
                  for k in range(CONCEALED_TICKS)], dtype=np.float32)
_BATCH = {"PCMU": (codecs.ulaw_decode, codecs.ulaw_encode), "PCMA": (codecs.alaw_decode, codecs.alaw_encode)}


@dataclass
class _Plan:
    rows: dict[str, int]
    batch: dict[str, list[tuple[RtpEndpoint, int]]]  # G.711 legs by codec
    stateful: list[tuple[RtpEndpoint, int, codecs.Decoder, codecs.Encoder]]
    producers: list[tuple[MediaUnit, int]]
    sinks: list[tuple[MediaUnit, int]]
    conf_rows: Rows  # rows of conferences with members, and their members' rows grouped by conference
    member_rows: Rows
    member_starts: Rows
    link_rows: Rows  # what a conference sends into another: a row per link, fed from the sender's mix ...
    link_mix: Rows  # ... (by index into conf_rows) ...
    link_back: Rows  # ... less the row of the link the other way (the silent row when there is none)
    plain_sinks: Rows  # sink rows fed from one row
    plain_sources: Rows
    n1_sinks: Rows  # conference members hearing that conference: mix (by index into conf_rows) minus own row
    n1_mix: Rows
    n1_own: Rows
    quiet_rows: Rows  # rows of sinks with no source: silence
    batch_rows: dict[str, Rows] = field(default_factory=dict)


def _rows(values: list[int]) -> Rows:
    return np.array(values, dtype=np.intp)


class Mixer:
    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self._version = -1
        self._dirty = True
        self._plan: _Plan | None = None
        self._frames = np.zeros((0, FRAME), dtype=SAMPLE)  # this tick's output of every unit
        self._inputs = np.zeros((0, FRAME), dtype=SAMPLE)  # what every unit hears this tick
        self._concealing: dict[str, tuple[Frame, int]] = {}  # leg -> (last good frame, ticks concealed)
        self.detectors: dict[str, tuple[RtpEndpoint, DtmfDetector]] = {}  # legs listening for in-band keys
        self.generators: dict[str, DtmfGenerator] = {}  # legs being sent in-band keys
        # Listeners on a unit's both directions (a call recording): (what it says, what it hears) per tick.
        self.taps: dict[str, list[Callable[[Frame, Frame], None]]] = {}
        self.on_key: Callable[[RtpEndpoint, str], None] = lambda endpoint, key: None

    def changed(self) -> None:
        """A leg's codec or direction changed: re-plan before the next tick."""
        self._dirty = True

    def tick(self, now: float) -> None:
        if self._dirty or self._version != self._graph.version:
            self._replan()
        plan = self._plan
        assert plan is not None
        frames = self._frames
        inputs = self._inputs
        # 1. Everything that produces audio.
        for name, legs in plan.batch.items():
            self._decode_batch(name, legs, frames, now)
        for endpoint, row, decoder, _ in plan.stateful:
            payload = endpoint.pull(now)
            if payload is None:
                self._conceal(endpoint, row, frames)
            else:
                frames[row] = decoder.decode(payload)
                self._concealing.pop(endpoint.id, None)
        for unit, row in plan.producers:
            frame = unit.output()
            frames[row] = 0 if frame is None else frame
        if self.detectors:
            self._detect(plan, frames)
        # 2. Conferences.
        mixes: npt.NDArray[np.int32] | None = None
        if len(plan.conf_rows):
            mixes = np.add.reduceat(frames[plan.member_rows].astype(np.int32), plan.member_starts, axis=0)
            frames[plan.conf_rows] = np.clip(mixes, -32768, 32767)
            if len(plan.link_rows):
                frames[plan.link_rows] = np.clip(mixes[plan.link_mix] - frames[plan.link_back], -32768, 32767)
        # 3. Every sink's input.
        inputs[plan.plain_sinks] = frames[plan.plain_sources]
        if mixes is not None and len(plan.n1_sinks):
            inputs[plan.n1_sinks] = np.clip(mixes[plan.n1_mix] - frames[plan.n1_own], -32768, 32767)
        if self.generators:
            inputs[plan.quiet_rows] = 0  # a finished key must not linger in a row nothing else writes
            self._play_keys(plan, inputs)
        for unit_id, taps in self.taps.items():
            tapped = plan.rows.get(unit_id)
            if tapped is not None:
                for tap in taps:
                    tap(frames[tapped], inputs[tapped])
        # 4. Out.
        for name, legs in plan.batch.items():
            encode = _BATCH[name][1]
            data = encode(inputs[plan.batch_rows[name]]).tobytes()
            at = 0
            for endpoint, _ in legs:
                endpoint.push(data[at:at + FRAME], now)
                at += FRAME
        for endpoint, row, _, encoder in plan.stateful:
            endpoint.push(encoder.encode(inputs[row]), now)
        for unit, row in plan.sinks:
            unit.input(inputs[row])

    def _decode_batch(self, name: str, legs: list[tuple[RtpEndpoint, int]], frames: npt.NDArray[np.int16],
                      now: float) -> None:
        payloads: list[bytes] = []
        rows: list[int] = []
        concealing = self._concealing
        for endpoint, row in legs:
            payload = endpoint.pull(now)
            if payload is None:
                self._conceal(endpoint, row, frames)
                continue
            payloads.append(payload)
            rows.append(row)
            if concealing:
                concealing.pop(endpoint.id, None)
        if payloads:
            coded = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), FRAME)
            frames[rows] = _BATCH[name][0](coded)

    def _conceal(self, endpoint: RtpEndpoint, row: int, frames: npt.NDArray[np.int16]) -> None:
        """A tick with nothing to play: comfort noise if the peer asked for it, else the last frame fading out."""
        if endpoint.comfort_noise is not None:
            frames[row] = _noise(endpoint.comfort_noise)
            return
        last, ticks = self._concealing.get(endpoint.id, (frames[row].copy(), 0))
        if ticks >= CONCEALED_TICKS:
            frames[row] = 0
            return
        frames[row] = (last * _FADE[ticks]).astype(SAMPLE)
        self._concealing[endpoint.id] = (last, ticks + 1)

    def _detect(self, plan: _Plan, frames: npt.NDArray[np.int16]) -> None:
        for unit_id, (endpoint, detector) in self.detectors.items():
            row = plan.rows.get(unit_id)
            if row is not None:
                for key in detector.feed(frames[row]):
                    self.on_key(endpoint, key)

    def _play_keys(self, plan: _Plan, inputs: npt.NDArray[np.int16]) -> None:
        for unit_id, generator in list(self.generators.items()):
            frame = generator.next_frame()
            if frame is None:
                del self.generators[unit_id]
                continue
            row = plan.rows.get(unit_id)
            if row is not None:
                inputs[row] = frame

    def forget(self, unit_id: str) -> None:
        """A unit left the graph: drop its per-unit state."""
        self._concealing.pop(unit_id, None)
        self.detectors.pop(unit_id, None)
        self.generators.pop(unit_id, None)
        self.taps.pop(unit_id, None)

    def _replan(self) -> None:
        graph = self._graph
        old_rows = self._plan.rows if self._plan is not None else {}
        units = list(graph.units())
        rows = {unit.id: row for row, unit in enumerate(units)}
        is_conference = {unit.id for unit in units if isinstance(unit, Conference)}
        links = [(source, sink) for sink in sorted(is_conference) for source in sorted(graph.mixed_into(sink))
                 if source in is_conference]
        for source, sink in links:  # a row per conference-to-conference link, named "source>sink"
            rows[f"{source}>{sink}"] = len(rows)
        silent = len(rows)  # a row that stays zero
        frames = np.zeros((silent + 1, FRAME), dtype=SAMPLE)
        for unit_id, row in rows.items():  # keep last frames: concealment and conference links read them
            old = old_rows.get(unit_id)
            if old is not None:
                frames[row] = self._frames[old]
        batch: dict[str, list[tuple[RtpEndpoint, int]]] = {name: [] for name in _BATCH}
        stateful: list[tuple[RtpEndpoint, int, codecs.Decoder, codecs.Encoder]] = []
        old_stateful = {e.id: (d, c) for e, _, d, c in self._plan.stateful} if self._plan is not None else {}
        producers: list[tuple[MediaUnit, int]] = []
        sinks: list[tuple[MediaUnit, int]] = []
        conferences: list[Conference] = []
        for unit in units:
            row = rows[unit.id]
            if isinstance(unit, RtpEndpoint):
                if unit.codec is None:
                    continue
                if unit.codec in batch:
                    batch[unit.codec].append((unit, row))
                else:
                    coders = old_stateful.get(unit.id)
                    if coders is None or coders[0].name != unit.codec:
                        coders = (codecs.decoder(unit.codec), codecs.encoder(unit.codec))
                    stateful.append((unit, row, *coders))
            elif isinstance(unit, Conference):
                conferences.append(unit)
            else:
                producers.append((cast(MediaUnit, unit), row))
                sinks.append((cast(MediaUnit, unit), row))
        conf_rows: list[int] = []
        member_rows: list[int] = []
        member_starts: list[int] = []
        conf_index: dict[str, int] = {}
        for conference in conferences:
            members = sorted(rows[f"{m}>{conference.id}" if m in is_conference else m]
                             for m in graph.mixed_into(conference.id))
            if not members:
                continue
            conf_index[conference.id] = len(conf_rows)
            conf_rows.append(rows[conference.id])
            member_starts.append(len(member_rows))
            member_rows.extend(members)
        live = [(source, sink) for source, sink in links if source in conf_index]
        link_rows = [rows[f"{source}>{sink}"] for source, sink in live]
        link_mix = [conf_index[source] for source, _ in live]
        link_back = [rows.get(f"{sink}>{source}", silent) for source, sink in live]
        plain_sinks: list[int] = []
        plain_sources: list[int] = []
        n1_sinks: list[int] = []
        n1_mix: list[int] = []
        n1_own: list[int] = []
        quiet: list[int] = []
        for unit in units:
            if isinstance(unit, Conference):
                continue
            unit_id = unit.id
            feed = graph.source_of(unit_id)
            if feed is None:
                quiet.append(rows[unit_id])
            elif feed in conf_index and unit_id in graph.mixed_into(feed):
                n1_sinks.append(rows[unit_id])
                n1_mix.append(conf_index[feed])
                n1_own.append(rows[unit_id])
            else:
                plain_sinks.append(rows[unit_id])
                plain_sources.append(rows[feed])
        self._frames = frames
        self._inputs = np.zeros_like(frames)
        for conference in conferences:  # an empty conference is silent, and so is what it sends on
            if conference.id not in conf_index:
                frames[rows[conference.id]] = 0
        for source, sink in links:
            if source not in conf_index:
                frames[rows[f"{source}>{sink}"]] = 0
        self._plan = _Plan(
            rows=rows, batch={name: legs for name, legs in batch.items() if legs}, stateful=stateful,
            producers=producers, sinks=sinks, conf_rows=_rows(conf_rows), member_rows=_rows(member_rows),
            member_starts=_rows(member_starts), link_rows=_rows(link_rows), link_mix=_rows(link_mix),
            link_back=_rows(link_back), plain_sinks=_rows(plain_sinks), plain_sources=_rows(plain_sources),
            n1_sinks=_rows(n1_sinks), n1_mix=_rows(n1_mix), n1_own=_rows(n1_own), quiet_rows=_rows(quiet),
        )
        self._plan.batch_rows = {name: _rows([row for _, row in legs]) for name, legs in self._plan.batch.items()}
        self._version = graph.version
        self._dirty = False


_rng = np.random.default_rng()


def _noise(level_dbov: int) -> Frame:
    """Comfort noise (RFC 3389) at -`level_dbov` dBov: white noise of that RMS."""
    rms = 32767 * 10 ** (-level_dbov / 20)
    return np.clip(_rng.normal(0, rms, FRAME), -32768, 32767).astype(SAMPLE)
